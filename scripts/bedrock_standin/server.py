"""The Bedrock Runtime stand-in: an HTTP server on loopback that speaks bedrock-runtime's REST-JSON.

A boto3 ``bedrock-runtime`` client with ``endpoint_url`` set to :attr:`StandInServer.url` runs the
shipped code unchanged: ``InvokeModel`` is ``POST /model/{modelId}/invoke``, ``Converse`` is
``POST /model/{modelId}/converse`` and ``ConverseStream`` is
``POST /model/{modelId}/converse-stream`` (Bedrock's binary event stream,
:mod:`bedrock_standin.eventstream`, one ``contentBlockDelta`` per word), with the bodies,
responses, error headers and status codes of the real service. Why hand-written: moto does not
implement bedrock-runtime, and the stand-in has to produce real embeddings, validate model-native
bodies and let tests script outputs and faults.

Tests control it in-process (:meth:`script`, :meth:`inject_fault`, :meth:`set_delay`,
:meth:`calls`, :meth:`reset`) or over HTTP under ``/_standin/`` (``POST reset``, ``POST faults``
with an optional ``probability``, or ``after_chunks`` for a fault inside a stream after that many
deltas, ``POST scripts``, ``POST delays`` (``seconds`` before the answer, ``per_chunk_seconds``
between a stream's chunks) / ``GET delays``, ``GET calls``
with the count of calls the bounded log dropped) when it runs in another process.
``python -m bedrock_standin --port 4000`` runs it alone.
"""

from __future__ import annotations

import functools
import json
import random
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

from background_server import BackgroundServer, QuietThreadingServer

from . import bodies, eventstream
from .access import AccessControl
from .errors import ERROR_STATUS, BedrockError
from .minilm import MiniLM, shared_model
from .models import ResolvedModel, resolve
from .text_models import Generation, TextModels
from .titan_space import to_titan

ANY_MODEL = "*"
_ROUTE = re.compile(r"^/model/([^/]+)/(invoke|converse-stream|converse)$")
# ConverseStream's in-stream exceptions (the event stream's members), by Bedrock error code.
STREAM_EXCEPTIONS = {
    "ThrottlingException": "throttlingException",
    "InternalServerException": "internalServerException",
    "ServiceUnavailableException": "serviceUnavailableException",
    "ValidationException": "validationException",
    "ModelErrorException": "modelStreamErrorException",
}
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/bedrock/")
_STRONG_HINTS = re.compile(r"[0-9=^+*/]|\b(prove|derive|explain why|step by step|compare)\b", re.I)


DEFAULT_CALL_LOG_SIZE = 1000
DEFAULT_FAULT_SEED = 0
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass
class _Fault:
    code: str
    remaining: int | None  # failures left; None: no limit
    message: str | None
    probability: float  # the fraction of calls that fail; 1.0: every call
    after_chunks: int | None = None  # a stream fault: sent after this many deltas


class StandInState:
    """Scripted outputs, injected faults and delays, and the call log; shared by request threads.

    The call log is a ring buffer of the last ``call_log_size`` calls that counts what it dropped,
    so a long run (a soak test, a local run left open) stays flat in memory. Faults with a
    probability draw from one ``random.Random(seed)``: the same seed and call order fail the same
    calls. A delay waits on an event that :meth:`reset` and :meth:`cancel_delays` set, so a slow
    model never holds up a reset or the server's shutdown.
    """

    def __init__(
        self, call_log_size: int = DEFAULT_CALL_LOG_SIZE, seed: int = DEFAULT_FAULT_SEED
    ) -> None:
        if call_log_size < 1:
            raise ValueError(f"call_log_size must be at least 1, got {call_log_size}")
        self._lock = threading.Lock()
        self._call_log_size = call_log_size
        self._seed = seed
        self._wake = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Forget scripts, faults, delays and calls; delayed requests answer at once."""
        with self._lock:
            self._scripts: dict[str, deque[str]] = defaultdict(deque)
            self._faults: dict[str, _Fault] = {}
            self._delays: dict[str, float] = {}
            self._chunk_delays: dict[str, float] = {}
            self._stream_faults: dict[str, _Fault] = {}
            self._calls: deque[dict[str, Any]] = deque(maxlen=self._call_log_size)
            self._dropped = 0
            self._rng = random.Random(self._seed)
            self.prompt_routers: dict[str, tuple[str, ...]] = {}
            self._cut_delays_short()

    def _cut_delays_short(self) -> None:
        """Wake every delayed request now; later delays wait on a fresh event."""
        self._wake.set()
        self._wake = threading.Event()

    def cancel_delays(self) -> None:
        with self._lock:
            self._cut_delays_short()

    def script(self, model_id: str, outputs: list[str]) -> None:
        """The next calls to ``model_id`` generate these texts, in order."""
        with self._lock:
            self._scripts[model_id].extend(outputs)

    def inject_fault(
        self,
        model_id: str,
        error: str,
        count: int | None = None,
        message: str | None = None,
        probability: float | None = None,
        after_chunks: int | None = None,
    ) -> None:
        """Calls to ``model_id`` ('*': any) fail with ``error``: each with ``probability``
        (None: every call; drawn from the seeded generator), ``count`` times (None: no limit);
        with ``after_chunks``, ConverseStream calls fail inside the stream after that many
        deltas (0: before the first), as an exception event."""
        if after_chunks is not None:
            if error not in STREAM_EXCEPTIONS:
                raise ValueError(
                    f"{error!r} cannot occur inside a stream; known: {', '.join(STREAM_EXCEPTIONS)}"
                )
            if int(after_chunks) < 0:
                raise ValueError(f"after_chunks must be at least 0, got {after_chunks}")
        if error not in ERROR_STATUS:
            raise ValueError(f"unknown Bedrock error {error!r}; known: {', '.join(ERROR_STATUS)}")
        chance = 1.0 if probability is None else float(probability)
        if not 0.0 < chance <= 1.0:
            raise ValueError(f"a fault's probability must be in (0, 1], got {probability}")
        if count is not None and int(count) < 1:
            raise ValueError(f"a fault's count must be at least 1, got {count}")
        fault = _Fault(
            error, None if count is None else int(count), message, chance,
            None if after_chunks is None else int(after_chunks),
        )
        with self._lock:
            (self._faults if after_chunks is None else self._stream_faults)[model_id] = fault

    def take_fault(self, model_id: str, in_stream: bool = False) -> BedrockError | None:
        """The fault this call meets (``in_stream``: one sent inside a stream), if any."""
        faults = self._stream_faults if in_stream else self._faults
        with self._lock:
            for key in (model_id, ANY_MODEL):
                fault = faults.get(key)
                if fault is None:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    return None  # this call is one of those that succeed
                if fault.remaining is not None:
                    if fault.remaining <= 1:
                        del faults[key]
                    else:
                        fault.remaining -= 1
                return BedrockError(fault.code, fault.message, fault.after_chunks)
        return None

    def set_delay(self, model_id: str, seconds: float | None) -> None:
        """Calls to ``model_id`` ('*': any) wait ``seconds`` before answering; 0 or None: none."""
        self._set_delay(self._delays, model_id, seconds)

    def set_chunk_delay(self, model_id: str, seconds: float | None) -> None:
        """A stream of ``model_id`` ('*': any) waits ``seconds`` before each chunk; 0: none."""
        self._set_delay(self._chunk_delays, model_id, seconds)

    def _set_delay(self, table: dict[str, float], model_id: str, seconds: float | None) -> None:
        """Both kinds of delay are checked and stored alike, each in its own table."""
        if seconds is not None and (seconds < 0 or seconds != seconds):
            raise ValueError(f"a delay must be a number of seconds >= 0, got {seconds}")
        with self._lock:
            if seconds:
                table[model_id] = float(seconds)
            else:
                table.pop(model_id, None)

    def delays(self) -> dict[str, float]:
        with self._lock:
            return dict(self._delays)

    def chunk_delays(self) -> dict[str, float]:
        with self._lock:
            return dict(self._chunk_delays)

    def wait_chunk(self, model_id: str) -> None:
        """Sleep the per-chunk delay of ``model_id``'s streams (cut short by reset/shutdown)."""
        with self._lock:
            seconds = self._chunk_delays.get(model_id, self._chunk_delays.get(ANY_MODEL, 0.0))
            wake = self._wake
        if seconds > 0:
            wake.wait(seconds)

    def wait_delay(self, model_id: str) -> float:
        """Sleep this model's delay unless a reset or shutdown cuts it short; the seconds waited."""
        with self._lock:
            seconds = self._delays.get(model_id, self._delays.get(ANY_MODEL, 0.0))
            wake = self._wake
        if seconds <= 0:
            return 0.0
        started = time.monotonic()
        wake.wait(seconds)
        return time.monotonic() - started

    def take_script(self, model_id: str) -> str | None:
        with self._lock:
            queue = self._scripts.get(model_id)
            return queue.popleft() if queue else None

    def record(self, call: dict[str, Any]) -> None:
        with self._lock:
            if len(self._calls) == self._calls.maxlen:
                self._dropped += 1
            self._calls.append(call)

    def calls(self) -> list[dict[str, Any]]:
        """The last ``call_log_size`` requests: api ('invoke'|'converse'), model_id, status,
        body, error (and delayed_seconds when a delay applied)."""
        with self._lock:
            return [dict(c) for c in self._calls]

    @property
    def dropped_calls(self) -> int:
        """How many calls the ring buffer let go since the last reset."""
        with self._lock:
            return self._dropped

    @property
    def call_log_size(self) -> int:
        return self._call_log_size


class BedrockRuntime:
    """The service logic: resolve the model, validate the body, answer or fail like Bedrock."""

    def __init__(self, state: StandInState, minilm: MiniLM, text: TextModels) -> None:
        self.state = state
        self.minilm = minilm
        self.text = text
        self.access = AccessControl()

    def handle(
        self, api: str, model_id: str, raw: bytes, region: str, authorization: str = ""
    ) -> dict[str, Any]:
        call: dict[str, Any] = {"api": api, "model_id": model_id, "status": 200}
        try:
            model, body = self._admit(call, raw, region, authorization)
            self._delay_then_fault(call)
            if api == "converse":
                return self._converse(model, bodies.converse(body, model), region)
            return self._invoke(model, body)
        except BedrockError as error:
            call["status"] = error.status
            call["error"] = error.code
            raise
        finally:
            self.state.record(call)

    def open_stream(
        self, model_id: str, raw: bytes, region: str, authorization: str = ""
    ) -> Iterator[bytes]:
        """ConverseStream: check the call as Converse does (the caller's role must allow
        InvokeModelWithResponseStream; an error here is an HTTP error response, as Bedrock's
        before its stream starts), then the stream's messages, each delta after the per-chunk
        delay, an injected in-stream fault after its chunk count."""
        call: dict[str, Any] = {"api": "converse-stream", "model_id": model_id, "status": 200}
        try:
            model, body = self._admit(call, raw, region, authorization)
            request = bodies.converse(body, model)
            self._delay_then_fault(call)
        except BedrockError as error:
            call["status"], call["error"] = error.status, error.code
            self.state.record(call)
            raise
        self.state.record(call)
        return self._stream(model, request, region, self.state.take_fault(model_id, True))

    def _admit(
        self, call: dict[str, Any], raw: bytes, region: str, authorization: str
    ) -> tuple[ResolvedModel, Any]:
        """Every call's first steps, streamed or not: the caller's role must allow the call's
        API on its model, the model must resolve, the body must be JSON (kept in ``call``)."""
        self.access.check(authorization, call["api"], call["model_id"], region)
        model = resolve(call["model_id"], self.state.prompt_routers)
        body = bodies.parse_json(raw)
        call["body"] = body
        return model, body

    def _delay_then_fault(self, call: dict[str, Any]) -> None:
        """Then the model's delay (its seconds kept in ``call``) and its injected fault, raised."""
        waited = self.state.wait_delay(call["model_id"])
        if waited:
            call["delayed_seconds"] = round(waited, 3)
        fault = self.state.take_fault(call["model_id"])
        if fault:
            raise fault

    def _stream(
        self,
        model: ResolvedModel,
        request: bodies.ChatRequest,
        region: str,
        fault: BedrockError | None,
    ) -> Iterator[bytes]:
        started = time.perf_counter()
        yield eventstream.event("messageStart", {"role": "assistant"})
        pieces = self.text.stream(request, model.requested, self.state.take_script(model.requested))
        sent = 0
        while True:
            if fault is not None and sent == fault.after_chunks:
                yield eventstream.exception(STREAM_EXCEPTIONS[fault.code], fault.message)
                return
            try:
                piece = next(pieces)
            except StopIteration as finished:
                out: Generation = finished.value
                break
            except BedrockError as error:  # the --answer-url server failed mid-answer
                yield eventstream.exception(
                    STREAM_EXCEPTIONS.get(error.code, "modelStreamErrorException"), error.message
                )
                return
            self.state.wait_chunk(model.requested)
            yield eventstream.event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
            )
            sent += 1
        yield eventstream.event("contentBlockStop", {"contentBlockIndex": 0})
        yield eventstream.event("messageStop", {"stopReason": out.stop_reason})
        metadata = _usage_and_metrics(out, started)
        if model.is_prompt_router:
            invoked = self._invoked(model, request, region)
            metadata["trace"] = {"promptRouter": {"invokedModelId": invoked}}
        yield eventstream.event("metadata", metadata)

    def _invoke(self, model: ResolvedModel, body: Any) -> dict[str, Any]:
        if model.is_prompt_router:
            raise BedrockError(
                "ValidationException",
                "InvokeModel doesn't support prompt routers. Use the Converse API instead.",
            )
        if model.family == "titan-embed-v2":
            return self._embed(bodies.titan_embed(body))
        if model.family == "titan-text":
            request = bodies.titan_text(body, model)
            out = self._generate(request, model.requested)
            return {
                "inputTextTokenCount": out.input_tokens,
                "results": [
                    {
                        "tokenCount": out.output_tokens,
                        "outputText": out.text,
                        "completionReason": "LENGTH"
                        if out.stop_reason == "max_tokens"
                        else "FINISH",
                    }
                ],
            }
        if model.family == "anthropic":
            request = bodies.anthropic_messages(body, model)
            out = self._generate(request, model.requested)
            return {
                "id": f"msg_bdrk_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": model.foundation_id,
                "content": [{"type": "text", "text": out.text}],
                "stop_reason": out.stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": out.input_tokens, "output_tokens": out.output_tokens},
            }
        raise BedrockError(
            "ValidationException",
            f"The stand-in has no InvokeModel body for "
            f"{model.foundation_id}; use the Converse API.",
        )

    def _embed(self, request: bodies.EmbedRequest) -> dict[str, Any]:
        pooled = self.minilm.embed(request.text, normalize=request.normalize)
        vector = [
            round(float(v), 8) for v in to_titan(pooled, request.dimensions, request.normalize)
        ]
        by_type: dict[str, Any] = {}
        if "float" in request.embedding_types:
            by_type["float"] = vector
        if "binary" in request.embedding_types:
            by_type["binary"] = [1 if v > 0 else 0 for v in vector]
        return {
            "embedding": vector,
            "embeddingsByType": by_type,
            "inputTextTokenCount": self.minilm.count_tokens(request.text),
        }

    def _generate(self, request: bodies.ChatRequest, model_id: str) -> Generation:
        return self.text.generate(request, model_id, self.state.take_script(model_id))

    @staticmethod
    def _invoked(model: ResolvedModel, request: bodies.ChatRequest, region: str) -> str:
        """The model a call runs on: a prompt router picks its fast or strong model."""
        if not model.is_prompt_router:
            return model.requested
        fast, strong = model.router_targets[0], model.router_targets[-1]
        hard = _STRONG_HINTS.search(request.last_user_text) or len(request.last_user_text) > 300
        return f"arn:aws:bedrock:{region}::foundation-model/{strong if hard else fast}"

    def _converse(
        self, model: ResolvedModel, request: bodies.ChatRequest, region: str
    ) -> dict[str, Any]:
        started = time.perf_counter()
        invoked = self._invoked(model, request, region)
        out = self._generate(request, model.requested)
        response: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": [{"text": out.text}]}},
            "stopReason": out.stop_reason,
            **_usage_and_metrics(out, started),
        }
        if model.is_prompt_router:
            response["trace"] = {"promptRouter": {"invokedModelId": invoked}}
        return response


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see background_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, error: BedrockError) -> None:
        self._send(error.status, error.body(), error.headers())

    def do_POST(self) -> None:  # noqa: N802  (http.server's name)
        raw = self._body()
        path = urlsplit(self.path).path
        if path.startswith("/_standin/"):
            self._admin("POST", path, raw)
            return
        match = _ROUTE.match(path)
        if not match:
            self._error(
                BedrockError(
                    "ResourceNotFoundException",
                    f"The stand-in serves InvokeModel and Converse, not {path}",
                )
            )
            return
        if "Authorization" not in self.headers:
            self._send(
                403,
                {"message": "Missing Authentication Token"},
                {"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
            )
            return
        region_match = _REGION.search(self.headers["Authorization"])
        region = region_match.group(1) if region_match else "us-east-1"
        model_id, api = unquote(match.group(1)), match.group(2)
        if api == "converse-stream":
            self._converse_stream(model_id, raw, region, self.headers["Authorization"])
            return
        response = self._answer_errors(
            lambda: self.server.runtime.handle(
                api, model_id, raw, region, self.headers["Authorization"]
            )
        )
        if response is None:
            return
        headers = {}
        if api == "invoke":
            headers = {
                "X-Amzn-Bedrock-Input-Token-Count": str(_input_tokens(response)),
                "X-Amzn-Bedrock-Invocation-Latency": "1",
            }
        self._send(200, response, headers)

    def _answer_errors(self, call: Callable[[], T]) -> T | None:
        """``call``'s result, or None once its error is answered: a BedrockError as Bedrock's
        error response, anything else as an InternalServerException (a stand-in bug must still
        look like a service error). Both the plain and the streaming APIs answer errors so."""
        try:
            return call()
        except BedrockError as error:
            self._error(error)
        except Exception as exc:  # a stand-in bug must still look like a service error
            self._error(BedrockError("InternalServerException", f"stand-in failure: {exc!r}"))
        return None

    def _converse_stream(
        self, model_id: str, raw: bytes, region: str, authorization: str
    ) -> None:
        """An HTTP error before the stream, else a chunked ``vnd.amazon.eventstream`` body."""
        messages = self._answer_errors(
            lambda: self.server.runtime.open_stream(model_id, raw, region, authorization)
        )
        if messages is None:
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        try:
            for message in messages:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(message), message))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client closed the stream: stop generating
            self.close_connection = True
        finally:
            messages.close()

    def do_GET(self) -> None:  # noqa: N802
        self._admin("GET", urlsplit(self.path).path, b"")

    def _admin(self, method: str, path: str, raw: bytes) -> None:
        state = self.server.runtime.state
        try:
            payload = json.loads(raw) if raw else {}
            if (method, path) == ("GET", "/_standin/calls"):
                self._send(
                    200,
                    {
                        "calls": state.calls(),
                        "dropped": state.dropped_calls,
                        "capacity": state.call_log_size,
                    },
                )
            elif (method, path) == ("GET", "/_standin/health"):
                self._send(200, {"status": "ok"})
            elif (method, path) == ("POST", "/_standin/reset"):
                state.reset()
                self._send(200, {"reset": True})
            elif (method, path) == ("POST", "/_standin/faults"):
                state.inject_fault(
                    payload["model_id"],
                    payload["error"],
                    payload.get("count"),
                    payload.get("message"),
                    payload.get("probability"),
                    payload.get("after_chunks"),
                )
                self._send(200, {"fault": payload})
            elif (method, path) == ("POST", "/_standin/delays"):
                if "seconds" not in payload and "per_chunk_seconds" not in payload:
                    raise KeyError("seconds or per_chunk_seconds")
                for key, setter in (
                    ("seconds", state.set_delay), ("per_chunk_seconds", state.set_chunk_delay)
                ):
                    if key in payload:
                        value = payload[key]
                        if value is not None and not isinstance(value, int | float):
                            raise TypeError(f"{key} must be a number")
                        setter(payload["model_id"], value)
                self._send(
                    200, {"delays": state.delays(), "per_chunk_delays": state.chunk_delays()}
                )
            elif (method, path) == ("GET", "/_standin/delays"):
                self._send(
                    200, {"delays": state.delays(), "per_chunk_delays": state.chunk_delays()}
                )
            elif (method, path) == ("POST", "/_standin/identities"):
                self.server.runtime.access.register(
                    payload["access_key_id"], payload["role"], payload["policy"]
                )
                self._send(200, {"identity": payload["access_key_id"]})
            elif (method, path) == ("POST", "/_standin/scripts"):
                state.script(payload["model_id"], list(payload["outputs"]))
                self._send(200, {"script": payload})
            else:
                self._send(404, {"message": f"no admin endpoint {method} {path}"})
        except (KeyError, TypeError, ValueError) as exc:
            self._send(400, {"message": f"bad admin request: {exc}"})


def _usage_and_metrics(out: Generation, started: float) -> dict[str, Any]:
    """The ``usage`` and ``metrics`` of a generation that began at ``started`` (perf_counter):
    Converse's response and ConverseStream's metadata event report them alike."""
    return {
        "usage": {
            "inputTokens": out.input_tokens,
            "outputTokens": out.output_tokens,
            "totalTokens": out.input_tokens + out.output_tokens,
        },
        "metrics": {"latencyMs": max(1, round((time.perf_counter() - started) * 1000))},
    }


def _input_tokens(response: dict[str, Any]) -> int:
    if "inputTextTokenCount" in response:
        return int(response["inputTextTokenCount"])
    return int(response.get("usage", {}).get("input_tokens", 0))


class _HttpServer(QuietThreadingServer):
    runtime: BedrockRuntime
    verbose: bool = False


def _on_state(method: Callable[Concatenate[StandInState, P], R]) -> Callable[..., R]:
    """``method`` of the server's :class:`StandInState`, as a method of the server: the in-process
    controls are the state's, so their signatures and docs are written once, there."""

    @functools.wraps(method)
    def on_state(server: StandInServer, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(server.state, *args, **kwargs)

    return on_state


class StandInServer(BackgroundServer):
    """Runs the stand-in on a background thread; a context manager that stops it on exit."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        answer_url: str | None = None,
        answer_model: str | None = None,
        verbose: bool = False,
        call_log_size: int = DEFAULT_CALL_LOG_SIZE,
        seed: int = DEFAULT_FAULT_SEED,
    ) -> None:
        self.state = StandInState(call_log_size, seed)
        http = _HttpServer((host, port), _Handler)
        minilm = shared_model()
        http.runtime = BedrockRuntime(
            self.state, minilm, TextModels(minilm, answer_url, answer_model)
        )
        self._runtime = http.runtime
        http.verbose = verbose
        super().__init__(http, "bedrock-stand-in")

    def stop(self) -> None:
        """Wake delayed requests first, so none holds a thread past the shutdown."""
        self.state.cancel_delays()
        super().stop()

    # In-process control, for tests: the state's own methods, called on the server.
    reset = _on_state(StandInState.reset)
    script = _on_state(StandInState.script)
    inject_fault = _on_state(StandInState.inject_fault)
    set_delay = _on_state(StandInState.set_delay)
    set_chunk_delay = _on_state(StandInState.set_chunk_delay)
    calls = _on_state(StandInState.calls)

    def register_identity(self, access_key_id: str, role: str, policy: dict[str, Any]) -> None:
        """Calls signed with ``access_key_id`` are authorized against ``policy`` (an IAM policy
        document), as Bedrock authorizes them against the caller's role (``access.py``)."""
        self._runtime.access.register(access_key_id, role, policy)

    def precompute_embeddings(self, texts: Sequence[str], normalize: bool = True) -> None:
        """Embed ``texts`` now, on every core, into the model's caches: a caller that knows its
        texts up front (an index build, an evaluation) then gets each one back at once when it
        asks through the wire protocol, one text per call as Titan takes them. Nothing when the
        disk cache is off (``BEDROCK_STANDIN_EMBEDDING_CACHE=off``): then every call computes its
        vector, and latencies measured through the stand-in include the model's time."""
        if self._runtime.minilm.disk is not None:
            self._runtime.minilm.embed_many(texts, normalize)

    def add_prompt_router(self, arn: str, models: tuple[str, ...]) -> None:
        """Make a custom prompt router ARN known, choosing between ``models`` (fast, strong)."""
        self.state.prompt_routers[arn] = tuple(models)

    @property
    def dropped_calls(self) -> int:
        """Calls the bounded log has let go since the last reset."""
        return self.state.dropped_calls
