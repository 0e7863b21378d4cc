"""Make moto's DynamoDB writes atomic, as DynamoDB's are: one write at a time per process.

DynamoDB applies a conditional UpdateItem or PutItem atomically: the condition is evaluated and the
write made as one step, so two concurrent requests can never both pass ``usd <= :ceiling``. moto's
backend reads the item, checks the condition and writes it back in plain Python, without a lock;
its ``ThreadedMotoServer`` serves requests from several threads, so concurrent writes can interleave
and a budget reservation that DynamoDB would refuse can pass. Code that is correct only because of
that leniency must fail here too, so the local run and the tests serialise moto's writes with one
lock. Hand-written because moto has no such option (5.x); the wrap is idempotent.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_LOCK = threading.RLock()
_MARK = "_serialised_by_moto_atomic"


def serialise_dynamodb_writes() -> None:
    """Wrap moto's DynamoDB write operations in one process-wide lock (once)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, _MARK, False):
            continue

        def atomic(*args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with _LOCK:
                return __method(*args, **kwargs)

        wrapped = functools.wraps(method)(atomic)
        setattr(wrapped, _MARK, True)
        setattr(DynamoDBBackend, name, wrapped)
