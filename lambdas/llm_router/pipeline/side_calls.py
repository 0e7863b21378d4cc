"""Calls a request makes beside its main line: the writes that end it, at once, a call made
while another runs, and independent calls made together.

**The end writes.** An answered request ends with up to four independent DynamoDB writes: the
budget's settlement (UpdateItem), the response cache's entry and its semantic candidate (a PutItem
each) and the server-kept conversation's turn (PutItem). None reads what another writes, so
they run concurrently and the request waits for the slowest instead of their sum: in AWS each is
a network round trip (milliseconds), on a cold start's first request each of them once more.

Each write runs to its end before the response leaves (a Lambda function is frozen once it
returns, so a write left running would be lost or delayed to the next invocation); each is
bounded by its own client's timeouts, as before. A write already handles its own failures (logs
them and drops the write: the answer stands); one that raises anyway is logged here by its name
and never fails the response. Each runs in a copy of the caller's context, so the request's
context and the X-Ray subsegment its call belongs to are those of the request.

**A call beside another** (:func:`beside`): the response cache's exact lookup runs while its
semantic Query does, and the budget's reservation while the decision's model call does (when the
instance's last reading of the budget left room: llm_router.governance.budget). The caller waits
for both, so nothing is left running when the request ends.

**Calls made together** (:func:`together`): the coverage check's classifier calls, one per
segment of what the answer model will read (llm_router.decision.coverage). None depends on
another, so the check takes as long as its slowest call instead of their sum: in AWS, a
classifier call each is hundreds of milliseconds for an LLM.

Hand-written over ``asyncio``: botocore is synchronous, and these are a few blocking calls on a
pool of threads that the function keeps between requests.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")
Write = tuple[str, Callable[[], object]]  # (name, for the log; the write)
# A Lambda instance serves one request at a time, which hands the pool at most three end writes
# at once (the fourth runs on the calling thread), or the coverage check's segments but one
# (routing.max_segments, 12 by default); the threads are made as needed and reused. The local API
# serves requests on many threads at once: room for theirs, so that one request's calls rarely
# queue behind another's.
_MAX_WORKERS = 32
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads, made at the first request that calls beside its main line; kept."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(_MAX_WORKERS, thread_name_prefix="side-call")
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


def beside(call: Callable[[], T]) -> Future[T]:
    """Start ``call`` on the pool, in a copy of the caller's context; its result (or exception)
    is the future's. The caller must wait for it before the request ends."""
    context = contextvars.copy_context()
    try:
        return _pool().submit(context.run, call)
    except RuntimeError:  # the pool is shut down (interpreter exit): call it here instead
        done: Future[T] = Future()
        try:
            done.set_result(context.run(call))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            done.set_exception(exc)
        return done


def together(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run ``calls`` concurrently (the last on the calling thread) and return their results in
    order, once every one has ended; if any raised, the first of them (in order) is raised."""
    if not calls:
        return []
    *others, last = calls
    started = [beside(call) for call in others]
    here: Future[T] = Future()
    try:
        here.set_result(last())
    except BaseException as exc:  # noqa: BLE001 - raised below, once the others have ended
        here.set_exception(exc)
    wait(started)  # nothing is left running, whatever happened here
    return [future.result() for future in (*started, here)]
