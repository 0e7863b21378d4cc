"""moto's DynamoDB, corrected where it differs from DynamoDB in what the routers rely on.

* Atomic writes. DynamoDB applies a conditional UpdateItem or PutItem as one step: the condition
  is evaluated and the write made together, so two concurrent requests can never both pass
  ``usd <= :ceiling``. moto's backend reads the item, checks the condition and writes it back in
  plain Python without a lock, and its ``ThreadedMotoServer`` serves requests from several
  threads, so concurrent writes can interleave and pass a reservation DynamoDB would refuse. Code
  correct only because of that leniency must fail here too: moto's writes take one lock.
* Number arithmetic. moto adds numbers as ``int`` unless the text has a ".", and writes Decimal
  sums as Python prints them, so ``0.1 + -0.1`` is stored as ``0E-18`` and the next ADD to it
  fails with a 500 (DynamoDB stores ``0`` and carries on). Sums are made in Decimal and stored
  normalised, as DynamoDB returns them.

Hand-written because moto (5.x) has neither option; the patches are idempotent.
:func:`start_server` applies them and starts moto's server, for the local run and the tests
(``backends.local_dynamodb``, in this process or a child of its own).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_LOCK = threading.RLock()
_MARK = "_corrected_by_moto_dynamodb"


def _number(text: str) -> str:
    """A DynamoDB number as DynamoDB stores it: no exponent, no trailing zeros."""
    value = Decimal(text).normalize()
    return format(value, "f") if value != 0 else "0"


def correct_moto_dynamodb() -> None:
    """Apply both corrections (once per process)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DDBType, DynamoType

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

    for name, sign in (("__add__", 1), ("__sub__", -1)):
        method = getattr(DynamoType, name)
        if getattr(method, _MARK, False):
            continue

        def arithmetic(
            self: Any, other: Any, __method: Any = method, __sign: int = sign
        ) -> Any:
            if self.type == other.type == DDBType.NUMBER:
                total = Decimal(self.value) + __sign * Decimal(other.value)
                return DynamoType({DDBType.NUMBER: _number(str(total))})
            return __method(self, other)

        setattr(arithmetic, _MARK, True)
        setattr(DynamoType, name, arithmetic)


def start_server() -> tuple[str, Callable[[], None]]:
    """moto's threaded server on a free loopback port, corrected: its URL and how to stop it."""
    from moto.server import ThreadedMotoServer

    correct_moto_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):  # moto prints a line of its own
        server.start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # and one per request to stderr
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server.stop
