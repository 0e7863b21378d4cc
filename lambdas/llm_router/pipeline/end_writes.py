"""The writes that end a request, made at once rather than one after another.

An answered request ends with up to three independent DynamoDB writes: the budget's settlement
(UpdateItem), the response cache's entry (PutItem, and its semantic candidate) and the
server-kept conversation's turn (PutItem). None reads what another writes, so they run
concurrently and the request waits for the slowest instead of their sum: in AWS each is a network
round trip (milliseconds), on a cold start's first request each of them once more.

Each write runs to its end before the response leaves (a Lambda function is frozen once it
returns, so a write left running would be lost or delayed to the next invocation); each is
bounded by its own client's timeouts, as before. A write already handles its own failures (logs
them and drops the write: the answer stands); one that raises anyway is logged here by its name
and never fails the response. Each runs in a copy of the caller's context, so the request's
context and the X-Ray subsegment its call belongs to are those of the request.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

logger = logging.getLogger(__name__)
Write = tuple[str, Callable[[], object]]  # (name, for the log; the write)
# A Lambda instance serves one request at a time, which hands at most two writes to the pool, so
# it makes two threads and reuses them. The local API serves requests on many threads at once:
# room for all of theirs, so that one request's writes never queue behind another's.
_MAX_WORKERS = 32
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The writers' threads, made at the first request that has two writes; kept for the next."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(_MAX_WORKERS, thread_name_prefix="end-write")
    return _executor


def _logged(name: str, write: Callable[[], object]) -> None:
    try:
        write()
    except Exception:  # noqa: BLE001 - a write must never cost the caller the answer
        logger.exception("the request's %s write failed; the answer stands", name)


def write_together(writes: Sequence[Write]) -> None:
    """Run ``writes`` concurrently and return when every one has ended; the last runs on the
    calling thread. Failures are logged, never raised."""
    if not writes:
        return
    *others, (last_name, last) = writes
    started: list[Future[None]] = []
    for name, write in others:
        context = contextvars.copy_context()  # one per thread: a context runs in one at a time
        try:
            started.append(_pool().submit(context.run, _logged, name, write))
        except RuntimeError:  # the pool is shut down (interpreter exit): write it here instead
            context.run(_logged, name, write)
    _logged(last_name, last)
    for future in started:
        future.result()  # _logged never raises
