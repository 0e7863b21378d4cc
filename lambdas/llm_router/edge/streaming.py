"""``POST /ask/stream``: the routing decision at once, then the answer as the model writes it, as
server-sent events (``text/event-stream``).

Events, each ``event: <name>`` and one ``data:`` line of JSON:

* ``routing`` first: the decision (category, first answer target, declined, degraded, request id);
* ``delta`` with ``{"text": ...}`` per piece of the answer;
* ``done`` last: what ``/ask`` returns except the answer text (usage with ``cost_usd``, timings,
  the routing summary);
* ``error`` instead of ``done`` when the answer fails after the stream began, with ``/ask``'s
  error body (stable ``code``; ``answer_interrupted`` when text had already been sent).

A request refused before routing (bad input, over budget, unknown category) is not a stream: it
is ``/ask``'s JSON error with ``/ask``'s status, since no byte of the stream has been sent.

The same :class:`StreamingResponse` is written by the Lambda runtime loop
(:mod:`llm_router.edge.stream_runtime`) and by the local API, through :func:`deliver`: a writer
that fails (the client went away) stops writing but the stream is read to its end, so the model's
usage, the spend, the metrics and the audit record are those of the whole answer, abandoned or
not; the audit record says ``stream.abandoned``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import field
from typing import Any

from ..errors import RoutingError
from ..models.request_context import serving
from ..pipeline.service import StreamEvent, UnknownCategory
from ..records import record
from .handler import (
    Admitted,
    Reply,
    RouterHandler,
    Seen,
    error_body,
    logger,
    metrics,
    request_id_of,
)
from .http_api import CORS_HEADERS, allowed_origins, encodable, with_cors

SSE_CONTENT_TYPE = "text/event-stream"
SSE_HEADERS = {
    "Content-Type": SSE_CONTENT_TYPE,
    "Cache-Control": "no-cache",
    **CORS_HEADERS,
}


def sse(name: str, data: dict[str, Any]) -> bytes:
    """One server-sent event; the JSON has no newline, so one ``data:`` line carries it."""
    text = encodable(json.dumps(data, ensure_ascii=False))
    return f"event: {name}\ndata: {text}\n\n".encode()


@record
class StreamState:
    """What the writer tells the stream: whether the client is gone."""

    abandoned: bool = False


@record
class StreamingResponse:
    """Status and headers (sent first), then the body's chunks as they come."""

    status: int
    headers: dict[str, str]
    body: Iterator[bytes]
    state: StreamState = field(default_factory=StreamState)

    def prelude(self) -> dict[str, Any]:
        """API Gateway's (and a Lambda function URL's) streamed-response metadata."""
        return {"statusCode": self.status, "headers": self.headers}


def deliver(response: StreamingResponse, write: Callable[[bytes], None]) -> None:
    """Write every chunk; once a write fails, keep reading the stream without writing it."""
    for chunk in response.body:
        if response.state.abandoned:
            continue
        try:
            write(chunk)
        except OSError:
            response.state.abandoned = True
            logger.info("client closed the stream; reading the answer to its end")


def from_reply(reply: Reply) -> StreamingResponse:
    proxy = reply.response()
    return StreamingResponse(proxy["statusCode"], proxy["headers"], iter([proxy["body"].encode()]))


class StreamingRouterHandler(RouterHandler):
    """The router's handler with :meth:`stream` for ``POST /ask/stream`` (never raises)."""

    reads_secret_at_init = False  # a stream's done event carries no feedback token

    def stream(self, event: Any, context: Any) -> StreamingResponse:
        try:
            response = self._open(event, context)
        except Exception:  # the last line of defence: log it, never leak a stack trace
            logger.exception("unhandled error while opening a stream")
            response = from_reply(Reply(500, error_body("internal_error", None)))
        config = self._service.config if self._service is not None else None
        proxy = with_cors(
            {"statusCode": response.status, "headers": response.headers}, event,
            allowed_origins(config),
        )
        response.headers = proxy["headers"]
        return response

    def _open(self, event: Any, context: Any) -> StreamingResponse:
        request_id = request_id_of(event, context)
        logger.append_keys(request_id=request_id)
        started = time.perf_counter()
        seen = Seen()
        admitted = self._admit(
            event, context, request_id, seen, lambda config: config.stream_budget_seconds
        )
        if isinstance(admitted, Reply):
            return self._refused(admitted, request_id, seen, started)
        request = admitted.request
        if request.conversation_id:  # the stream keeps no conversations: say so, never ignore it
            reply = Reply(400, {
                **error_body("bad_request", request_id),
                "error": '"conversation_id" is for POST /ask; /ask/stream takes "history"',
            })
            return self._refused(reply, request_id, seen, started)
        with serving(admitted.context):
            try:
                events = admitted.service.ask_stream(
                    request.question, request.category, tier=seen.tier, history=request.history
                )
                first = next(events)  # the decision: a refusal here is still an HTTP error
            except (UnknownCategory, RoutingError) as exc:
                reply = self.refusal(exc, admitted, request_id)
                return self._refused(reply, request_id, seen, started)
        response = StreamingResponse(200, dict(SSE_HEADERS), iter(()))
        response.body = self._events(first, events, admitted, seen, started, response.state)
        return response

    def _refused(
        self, reply: Reply, request_id: str, seen: Seen, started: float
    ) -> StreamingResponse:
        self._finish(reply, request_id, seen, started, {"stream": {"opened": False}})
        return from_reply(reply)

    def _events(
        self,
        first: StreamEvent,
        events: Iterator[StreamEvent],
        admitted: Admitted,
        seen: Seen,
        started: float,
        state: StreamState,
    ) -> Iterator[bytes]:
        """The stream's bytes; its audit record and metrics once it ends, however it ends."""
        request_id = str(admitted.context.request_id)
        reply = Reply(500, error_body("internal_error", request_id))
        parts: list[str] = []
        first_delta: float | None = None
        try:
            yield sse(first.name, first.data)
            while True:
                with serving(admitted.context):
                    try:
                        event = next(events)
                    except StopIteration:
                        break
                    except (UnknownCategory, RoutingError) as exc:
                        reply = self.refusal(exc, admitted, request_id)
                        yield sse("error", reply.body)
                        break
                    except Exception:
                        logger.exception("unhandled error while streaming")
                        yield sse("error", reply.body)
                        break
                if event.name == "delta":
                    parts.append(event.data["text"])
                    if first_delta is None:
                        first_delta = time.perf_counter() - started
                elif event.name == "done":
                    reply = Reply(200, {**event.data, "answer": "".join(parts)})
                    self._log_attempts(admitted.context)
                yield sse(event.name, event.data)
        finally:
            events_close = getattr(events, "close", None)
            if callable(events_close):
                with serving(admitted.context):
                    events_close()
            info = {
                "opened": True,
                "abandoned": state.abandoned,
                "first_delta_seconds": None if first_delta is None else round(first_delta, 6),
                "deltas": len(parts),
            }
            self._finish(reply, request_id, seen, started, {"stream": info})

    def _finish(
        self,
        reply: Reply,
        request_id: str,
        seen: Seen,
        started: float,
        extra: dict[str, Any],
    ) -> None:
        """The stream's audit record and metrics, flushed now (no handler return flushes them)."""
        try:
            self._publish(reply, request_id, seen, time.perf_counter() - started, extra)
            metrics.flush_metrics()
        except Exception:  # telemetry must never cost the caller the answer
            logger.exception("could not publish the stream's telemetry")
        finally:
            metrics.clear_metrics()
