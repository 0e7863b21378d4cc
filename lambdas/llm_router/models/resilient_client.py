"""A bedrock-runtime client per routing stage that retries, times out and trips breakers.

:class:`ResilientClient` has the methods the routers call, ``invoke_model``, ``converse`` and
``converse_stream``, with boto3's signatures, so the classifiers and the embedder use it exactly
as they would use boto3's client. Each call:

1. asks the target's circuit breaker; an open breaker skips the call at once (``CircuitOpen``);
2. takes its timeout from the request's budget: the stage's cap (classification and embedding
   share one, an answer attempt has its own) within what remains of the deadline; an attempt that
   cannot get :data:`MIN_ATTEMPT_SECONDS` is not made (:class:`DeadlineExceeded`);
3. is made with that timeout as its read timeout (:class:`ClientPool`), so a hung model costs the
   attempt's share of the budget, not the request;
4. on a transient error waits a jittered exponential back-off, if the budget allows, and tries the
   same target again, up to ``resilience.attempts_per_target`` attempts; a failure that took more
   than half its attempt's time (a hung model) is not retried, so the rest of the budget goes to
   the next target.

Failover between targets is the caller's (the answerer walks its plan; a failed classifier
degrades the decision). Every attempt and skip is logged in the request context for the response.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..config.settings import ResilienceSettings
from ..errors import CIRCUIT_OPEN
from ..observability.tracing import traced_call
from .bedrock import RECIPE_ATTRIBUTE, BedrockFailure, as_failure
from .breaker import BreakerBoard
from .request_context import Attempt, DeadlineExceeded, current
from .streaming import OpenedStream

MIN_ATTEMPT_SECONDS = 0.25  # below this an attempt cannot succeed; stop instead
SLOW_FAILURE_SHARE = 0.5  # a failure after this share of its attempt's time is not retried


MAX_CONNECT_SECONDS = 3.0  # a connection that takes longer is not coming
_read_timeout: ContextVar[float | None] = ContextVar("llm_router_read_timeout", default=None)


def per_request_read_timeouts() -> bool:
    """Whether botocore takes a call's read timeout from its request context (``read_timeout``,
    boto/botocore#3770, made for blocking calls such as Bedrock's ``Converse``); older botocore
    versions, which a Lambda runtime may still ship, only have the client's."""
    try:
        from botocore.httpsession import URLLib3Session
    except ImportError:  # pragma: no cover - botocore is always there
        return False
    return hasattr(URLLib3Session, "_get_request_timeout")


def _apply_read_timeout(context: dict[str, Any], **_kwargs: Any) -> None:
    """botocore's ``before-call`` event: the read timeout of the attempt being made."""
    seconds = _read_timeout.get()
    if seconds is not None:
        context["read_timeout"] = seconds


class ClientPool:
    """Single-attempt clients for the attempts' timeouts, made from one base client's recipe (or
    from a recipe alone, :meth:`from_recipe`).

    Timeouts are rounded down to whole seconds (quarter seconds below 2 s): the step an attempt
    gets as its read timeout, with a connect timeout of at most ``MAX_CONNECT_SECONDS``. Where
    botocore takes a read timeout per call (:func:`per_request_read_timeouts`), attempts whose
    connect timeouts agree share one client, and so one connection to Bedrock: a request's
    classification (5 s) and answer (20 s) use the same client, and the cold start makes one
    client and one TLS connection where it made two (a client costs ~5-10 ms of CPU, a
    connection a round trip or two). Elsewhere there is a client per step, as there used to be.
    A client made elsewhere, without the recipe :func:`llm_router.models.bedrock.runtime_client`
    attaches, is used as it is for every timeout.
    """

    def __init__(
        self,
        base_client: Any,
        recipe: Callable[..., Any] | None = None,
        per_call_timeouts: bool | None = None,
    ) -> None:
        self.base = base_client
        self._recipe: Callable[..., Any] | None = recipe or getattr(
            base_client, RECIPE_ATTRIBUTE, None
        )
        self._per_call = (
            per_request_read_timeouts() if per_call_timeouts is None else per_call_timeouts
        )
        self._clients: dict[float, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_recipe(cls, recipe: Callable[..., Any]) -> ClientPool:
        """A pool with no base client: a client is made at the first call that needs it (and
        kept), so the cold start creates only the clients the first request uses."""
        return cls(None, recipe)

    @staticmethod
    def step(timeout: float) -> float:
        if timeout >= 2:
            return float(math.floor(timeout))
        return max(MIN_ATTEMPT_SECONDS, math.floor(timeout * 4) / 4)

    def get(self, timeout: float) -> Any:
        """The client for an attempt of ``timeout`` seconds; make the call inside
        :meth:`read_timeout` so that a shared client reads with this attempt's timeout."""
        if self._recipe is None:
            return self.base
        step = self.step(timeout)
        connect = min(step, MAX_CONNECT_SECONDS)
        key = connect if self._per_call else step
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._recipe(
                        max_attempts=1, read_timeout=step, connect_timeout=connect
                    )
                    events = getattr(getattr(client, "meta", None), "events", None)
                    if self._per_call and events is not None:
                        events.register("before-call", _apply_read_timeout)
                    self._clients[key] = client
        return client

    @contextmanager
    def read_timeout(self, timeout: float) -> Iterator[None]:
        """Calls made in the block read with ``timeout``'s step (a shared client's override)."""
        token = _read_timeout.set(self.step(timeout))
        try:
            yield
        finally:
            _read_timeout.reset(token)


class ResilientClient:
    """boto3's ``invoke_model``/``converse`` for one stage, with budget, retries and breakers."""

    def __init__(
        self,
        clients: ClientPool,
        breakers: BreakerBoard,
        settings: ResilienceSettings,
        stage: str,
        stage_cap_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._clients = clients
        self._breakers = breakers
        self._settings = settings
        self.stage = stage
        self._cap = stage_cap_seconds
        self._sleep = sleep
        self._rng = rng or random.Random()

    def invoke_model(self, **kwargs: Any) -> Any:
        return self._call("invoke_model", kwargs)

    def converse(self, **kwargs: Any) -> Any:
        return self._call("converse", kwargs)

    def converse_stream(self, **kwargs: Any) -> OpenedStream:
        """ConverseStream, opened and read up to its first delta within the attempt: a failure
        before any text is retried and trips the breaker like a Converse failure
        (:mod:`llm_router.models.streaming`); the caller reads the rest."""
        model_id = str(kwargs.get("modelId"))
        return self._call(
            "converse_stream",
            kwargs,
            lambda response: OpenedStream(model_id, response, self._stream_failed),
        )

    def _stream_failed(self, model_id: str) -> None:
        """A stream that broke after its first delta counts against its target's breaker."""
        if self._breakers.record_failure(model_id):
            current().breaker_opened.append(model_id)

    def _call(
        self,
        operation: str,
        kwargs: dict[str, Any],
        read: Callable[[Any], Any] | None = None,
    ) -> Any:
        context = current()
        model_id = str(kwargs.get("modelId"))
        attempts = self._settings.attempts_per_target
        for attempt in range(1, attempts + 1):
            timeout = context.stage_timeout(self._cap)
            if timeout < MIN_ATTEMPT_SECONDS:
                context.attempts.append(
                    Attempt(model_id, self.stage, "skipped", "DeadlineExceeded")
                )
                raise DeadlineExceeded(self.stage, context.deadline.remaining())
            if not self._breakers.allow(model_id):
                context.attempts.append(Attempt(model_id, self.stage, "skipped", CIRCUIT_OPEN))
                raise BedrockFailure(
                    503, CIRCUIT_OPEN, "circuit breaker open", model_id, self.stage,
                    failover=True,
                    retry_after_seconds=self._breakers.seconds_until_retry(model_id),
                )
            started = time.perf_counter()
            try:
                with self._clients.read_timeout(timeout):
                    response = traced_call(self._clients.get(timeout), operation, kwargs)
                    if read is not None:
                        response = read(response)
            except Exception as exc:
                failure = as_failure(exc, model_id, self.stage)
                elapsed = time.perf_counter() - started
                context.attempts.append(
                    Attempt(model_id, self.stage, "failed", failure.code, elapsed,
                            detail=failure.message[:2000])
                )
                if not failure.failover:
                    self._breakers.record_success(model_id)  # it answered: it is healthy
                    raise failure from exc
                if self._breakers.record_failure(model_id):
                    context.breaker_opened.append(model_id)
                # A slow failure (a read timeout, a model timeout after a long wait) already
                # spent much of the budget: give the rest to the next target, not this one again.
                slow = elapsed > timeout * SLOW_FAILURE_SHARE
                if not failure.retry_same or slow or attempt == attempts:
                    raise failure from exc
                pause = self._backoff(attempt)
                if context.deadline.remaining() - pause < MIN_ATTEMPT_SECONDS:
                    raise failure from exc
                self._sleep(pause)
                continue
            context.attempts.append(
                Attempt(model_id, self.stage, "ok", None, time.perf_counter() - started)
            )
            self._breakers.record_success(model_id)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with jitter, as botocore's standard mode does."""
        ceiling = min(
            self._settings.backoff_max_seconds,
            self._settings.backoff_base_seconds * 2 ** (attempt - 1),
        )
        return ceiling * (0.5 + self._rng.random() / 2)
