"""A streamed answer: Bedrock ``ConverseStream`` read as text arrives, with failover up to its first
delta.

Why the first delta is the line: until the model has produced text, nothing has been sent to the
caller, so a failure there (an HTTP error when the stream opens, an exception event before any
text, a read timeout) is an ordinary attempt that can be retried or failed over exactly as
``Converse`` is; :meth:`ResilientClient.converse_stream` opens the stream and reads it up to that
first delta inside its attempt (budget, breaker, retries). After it, the caller holds part of an
answer, and another model would start a different one: a failure ends the stream
(:class:`StreamInterrupted`) instead of switching silently in mid-answer.

botocore parses Bedrock's event stream (``botocore.eventstream``); this module only turns its
events (``messageStart``, ``contentBlockDelta``, ``contentBlockStop``, ``messageStop``,
``metadata`` with ``usage`` and, for a prompt router, ``trace``) into text and an
:class:`~llm_router.models.answering.Answer`-shaped result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from ..records import record
from .bedrock import BedrockFailure, as_failure
from .request_context import Attempt, DeadlineExceeded, current
from .usage import ModelUsage

STAGE = "answer"


class StreamInterrupted(Exception):  # noqa: N818  (reported as such)
    """The stream failed after its first delta; carries the failure for the error event."""

    def __init__(self, failure: BedrockFailure | DeadlineExceeded) -> None:
        super().__init__(str(failure))
        self.failure = failure


def stream_failure(exc: Exception, model_id: str) -> BedrockFailure:
    """What an error raised while reading a stream means: a botocore error (an exception event
    arrives as ``EventStreamError``, whose code is the event's member name, ``throttlingException``)
    or a dropped connection from urllib3 underneath it."""
    if isinstance(exc, ClientError):
        error = exc.response.setdefault("Error", {})
        code = str(error.get("Code") or "")
        if code[:1].islower():  # the stream's member name -> Bedrock's error code
            error["Code"] = code[0].upper() + code[1:]
    if isinstance(exc, ClientError | BotoCoreError | BedrockFailure):
        return as_failure(exc, model_id, STAGE)
    if isinstance(exc, Urllib3Error | OSError):
        return BedrockFailure(503, type(exc).__name__, str(exc), model_id, STAGE,
                              retry_same=True, failover=True)
    raise exc


class OpenedStream:
    """A ConverseStream response read up to its first delta (or to its end, if it has none)."""

    def __init__(
        self,
        model_id: str,
        response: Mapping[str, Any],
        on_failure: Callable[[str], Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self._on_failure = on_failure  # after the first delta: the target's breaker counts it
        self.started = time.perf_counter()
        self._stream = response["stream"]  # botocore's EventStream
        self._events: Iterator[dict[str, Any]] = iter(self._stream)
        self._ahead: list[dict[str, Any]] = []
        try:
            for event in self._events:
                self._ahead.append(event)
                if "contentBlockDelta" in event or "metadata" in event:
                    break
        except Exception as exc:
            self.close()  # the attempt failed before any text: free its connection
            raise stream_failure(exc, model_id) from exc

    def events(self) -> Iterator[dict[str, Any]]:
        """The events read ahead, then the rest; a failure is :class:`StreamInterrupted`."""
        yield from self._ahead
        while True:
            if current().deadline.remaining() <= 0:
                failure = DeadlineExceeded(STAGE, current().deadline.remaining())
                self._record_failure("DeadlineExceeded", str(failure))
                raise StreamInterrupted(failure)
            try:
                event = next(self._events)
            except StopIteration:
                return
            except Exception as exc:
                failure = stream_failure(exc, self.model_id)
                self._record_failure(failure.code, failure.message)
                raise StreamInterrupted(failure) from exc
            yield event

    def text(self) -> Generator[str, None, StreamResult]:
        """Yield each delta's text; return what ``metadata`` and ``messageStop`` reported."""
        stop_reason, usage, invoked = "", {}, self.model_id
        for event in self.events():
            if "contentBlockDelta" in event:
                text = event["contentBlockDelta"].get("delta", {}).get("text")
                if text:
                    yield text
            elif "messageStop" in event:
                stop_reason = event["messageStop"].get("stopReason", "")
            elif "metadata" in event:
                metadata = event["metadata"]
                usage = metadata.get("usage", {})
                router = metadata.get("trace", {}).get("promptRouter", {})
                invoked = router.get("invokedModelId") or invoked
        return StreamResult(
            invoked_model_id=invoked,
            seconds=time.perf_counter() - self.started,
            usage=ModelUsage(
                invoked, int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0))
            ),
            stop_reason=stop_reason,
        )

    def close(self) -> None:
        """Stop reading (the caller is gone or failed): releases the connection."""
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()

    def _record_failure(self, code: str, detail: str) -> None:
        if self._on_failure is not None and code != "DeadlineExceeded":
            self._on_failure(self.model_id)
        current().attempts.append(
            Attempt(self.model_id, STAGE, "failed", code, time.perf_counter() - self.started,
                    detail=detail[:2000])
        )


@record(frozen=True)
class StreamResult:
    """What a finished stream reports besides its text."""

    invoked_model_id: str
    seconds: float
    usage: ModelUsage
    stop_reason: str
