"""What one request carries through the core: its deadline, its tier and the log of its calls.

The deadline is one budget for the whole request, below API Gateway's integration timeout: every
Bedrock call, retries and failover included, must fit in what remains of it, and so must the
function's own remaining time. The context travels in a ``ContextVar`` rather than as an argument,
so the classifiers and the embedder keep their plain signatures (``classify(question)``) while the
resilient client they call reads the budget of the request it serves. Code that runs outside a
request (evaluation, fitting) gets a context with no deadline.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import field
from typing import Any

from ..records import record


class DeadlineExceeded(Exception):  # noqa: N818  (the name the response reports)
    """The request's budget cannot fit another attempt."""

    def __init__(self, stage: str, remaining: float) -> None:
        super().__init__(f"{stage}: {remaining:.2f} s left in the request budget")
        self.stage = stage
        self.remaining = remaining


class Deadline:
    """Seconds left of a budget, bounded also by the Lambda context's remaining time."""

    def __init__(
        self,
        budget_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        lambda_remaining: Callable[[], float] | None = None,
        lambda_margin_seconds: float = 0.5,
    ) -> None:
        self._clock = clock
        self._ends = clock() + budget_seconds
        self._lambda_remaining = lambda_remaining
        self._lambda_margin = lambda_margin_seconds
        self.budget_seconds = budget_seconds

    @classmethod
    def unbounded(cls) -> Deadline:
        return cls(math.inf)

    def remaining(self) -> float:
        left = self._ends - self._clock()
        if self._lambda_remaining is not None:
            left = min(left, self._lambda_remaining() - self._lambda_margin)
        return left


@record
class Attempt:
    """One call to a model, or a skip of it, as the response and the audit record list it."""

    model_id: str
    stage: str  # classification | embedding | answer
    result: str  # ok | failed | skipped
    error_code: str | None = None
    seconds: float = 0.0
    detail: str | None = None  # Bedrock's own message: logged, never in a response

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "stage": self.stage,
            "result": self.result,
            "error_code": self.error_code,
            "seconds": round(self.seconds, 6),
        }


@record
class RequestContext:
    deadline: Deadline = field(default_factory=Deadline.unbounded)
    tier: str | None = None
    request_id: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    breaker_opened: list[str] = field(default_factory=list)
    # Seconds a throttled model asked us to wait (the largest seen), for Retry-After.
    throttled_retry_after: float = 0.0
    api_key_id: str | None = None  # API Gateway's id of the caller's key (cache scope api_key)
    cache_control: str | None = None  # the request's Cache-Control header (no-cache bypasses)
    # A streamed answer's client went away before its end (the edge sets it): nothing is kept of
    # an answer the client did not read, neither in the cache nor in its conversation.
    abandoned: bool = False

    def stage_timeout(self, stage_cap: float) -> float:
        """How long the next attempt may take: the stage's cap within the remaining budget."""
        return min(stage_cap, self.deadline.remaining())


_CURRENT: ContextVar[RequestContext | None] = ContextVar("llm_router_request", default=None)


def current() -> RequestContext:
    """The context of the request being served; a throwaway unbounded one outside a request."""
    context = _CURRENT.get()
    return context if context is not None else RequestContext()


@contextlib.contextmanager
def serving(context: RequestContext) -> Iterator[RequestContext]:
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)
