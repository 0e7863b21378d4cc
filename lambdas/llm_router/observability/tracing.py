"""X-Ray subsegments for the router's stages and for its calls to AWS services.

``with subsegment("classification") as span:`` records the block as subsegment
``## classification`` (namespace ``local``); ``traced_call(client, "converse", kwargs)`` makes a
botocore call and records it as the X-Ray SDK's botocore patch does: a subsegment named after the
service's endpoint prefix (``bedrock-runtime``, ``dynamodb``), namespace ``aws``, with the
operation, region, request id and HTTP status, the error, throttle and fault flags of the status,
and a service error's exception; the request's ``X-Amzn-Trace-Id`` names that subsegment as its
parent. A call inside a stage is nested in the stage's subsegment, so X-Ray shows where a
request's time goes, stage by stage and model call by model call.

Recorded only in Lambda (``AWS_LAMBDA_FUNCTION_NAME``; not SAM local), unless
``POWERTOOLS_TRACE_DISABLED`` is true, and only for an invocation X-Ray samples (``Sampled=1`` in
the ``_X_AMZN_TRACE_ID`` header the runtime sets per invocation). Otherwise every block and call
runs untraced, at the cost of an environment lookup.

Why hand-written rather than the X-Ray SDK (through Powertools' ``Tracer``, as before): creating
the Tracer at the first sampled request imported ``aws_xray_sdk`` with ``wrapt`` and ``asyncio``
(about 90 modules) and patched botocore: 40–70 ms of every cold start, more than the router's whole
allowance against the original sample (at most 5% of that sample's cold start, ~15–25 ms). What
the router needs of the SDK is small and documented ("Sending segment documents to the X-Ray
daemon" and "AWS X-Ray segment documents" in the X-Ray developer guide): in Lambda, which records
the function's own segment, the SDK streams each top-level subsegment, its nested subsegments
inside, as one UDP datagram ``{"format":"json","version":1}\\n<document>`` to the daemon at
``AWS_XRAY_DAEMON_ADDRESS`` when it closes, under the trace id and parent id of the invocation's
trace header. This module sends the same documents, with the SDK's fields, using only the
standard library. The trade-off: a feature of the SDK the router does not use (sampling rules,
plugins, other patched libraries) is not here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"  # set by the Lambda runtime for each invocation
DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"  # set by Lambda when active tracing is on
DEFAULT_DAEMON_ADDRESS = ("127.0.0.1", 2000)
TRACE_HEADER = "X-Amzn-Trace-Id"
PROTOCOL_HEADER = b'{"format":"json","version":1}\n'
MAX_TRACE_BACK = 10  # stack frames recorded with an exception, as the SDK's default
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_INVALID_NAME_CHARACTERS = "?;*()!$~^<>"  # the SDK strips these from names
_HOOKED = "_llm_router_trace_header"  # marks a client whose requests carry the call's parent
log = logging.getLogger(__name__)

_socket: socket.socket | None = None
_socket_lock = threading.Lock()  # a request's end writes are traced from several threads


class _Subsegment:
    """One subsegment being recorded; ``document()`` is what the SDK's ``to_dict`` sends."""

    __slots__ = (
        "id", "name", "namespace", "trace_id", "parent_id", "parent", "start_time", "end_time",
        "annotations", "metadata", "aws", "http", "cause", "flags", "subsegments",
    )

    def __init__(
        self, name: str, namespace: str, trace_id: str, parent_id: str,
        parent: _Subsegment | None,
    ) -> None:
        self.id = os.urandom(8).hex()
        self.name = "".join(c for c in name if c not in _INVALID_NAME_CHARACTERS)
        self.namespace = namespace
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.parent = parent
        self.start_time = time.time()
        self.end_time = 0.0
        self.annotations: dict[str, str | int | float | bool] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self.aws: dict[str, Any] = {}
        self.http: dict[str, dict[str, Any]] = {}
        self.cause: dict[str, Any] = {}
        self.flags: dict[str, bool] = {}
        self.subsegments: list[_Subsegment] = []

    def status(self, code: Any) -> None:
        """The HTTP status of a call, with the flags the SDK derives from it."""
        if not isinstance(code, int) or not code:
            return
        self.http.setdefault("response", {})["status"] = code
        if code >= 500:
            self.flags["fault"] = True
        elif code == 429:
            self.flags["throttle"] = True
            self.flags["error"] = True
        elif code >= 400:
            self.flags["error"] = True

    def exception(self, exc: BaseException, remote: bool) -> None:
        """The exception in ``cause`` and the fault flag, as the SDK's ``add_exception``."""
        self.flags["fault"] = True
        stack = [
            {"path": os.path.basename(frame.filename), "line": frame.lineno, "label": frame.name}
            for frame in traceback.extract_tb(exc.__traceback__, limit=MAX_TRACE_BACK)
        ]
        entry: dict[str, Any] = {
            "id": os.urandom(8).hex(), "message": str(exc), "type": type(exc).__name__,
            "remote": remote,
        }
        if stack:
            entry["stack"] = stack
        self.cause = {"working_directory": os.getcwd(), "exceptions": [entry]}

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "in_progress": False,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "type": "subsegment",
            "namespace": self.namespace,
        }
        for key in ("annotations", "metadata", "aws", "http", "cause"):
            value = getattr(self, key)
            if value:
                doc[key] = value
        doc.update(self.flags)
        if self.subsegments:
            doc["subsegments"] = [child.document() for child in self.subsegments]
        return doc


_open: ContextVar[_Subsegment | None] = ContextVar("llm_router_open_subsegment", default=None)


class Span:
    """What a traced block may add: annotations (indexed, searchable) and metadata."""

    def __init__(self, segment: _Subsegment | None = None) -> None:
        self._segment = segment

    @property
    def recording(self) -> bool:
        return self._segment is not None

    def annotate(self, key: str, value: str | int | float | bool) -> None:
        """Dropped with a warning, as by the SDK, unless the key is letters, digits and ``_``
        and the value a string, number or boolean."""
        if self._segment is None:
            return
        if not (key.isascii() and key.replace("_", "a").isalnum()):
            log.warning("ignoring the annotation %r: keys are letters, digits and _", key)
        elif not isinstance(value, (str, int, float, bool)):
            log.warning("ignoring the annotation %r: unsupported value %r", key, type(value))
        else:
            self._segment.annotations[key] = value

    def metadata(self, key: str, value: Any) -> None:
        if self._segment is not None:
            self._segment.metadata.setdefault("default", {})[key] = value


_NOT_RECORDING = Span()


def tracing_enabled() -> bool:
    """Tracing is on in Lambda (not SAM local) unless POWERTOOLS_TRACE_DISABLED says otherwise."""
    if os.environ.get(TRACE_DISABLED_ENV, "").strip().lower() in _TRUE:
        return False
    if os.environ.get("AWS_SAM_LOCAL", "").strip().lower() in _TRUE:
        return False
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def trace_context() -> tuple[str, str] | None:
    """(trace id, parent id) of a sampled invocation from its trace header; None when X-Ray does
    not sample it (``Sampled=0``, or no decision), whose subsegments would be recorded nowhere."""
    fields = dict(
        part.strip().split("=", 1)
        for part in os.environ.get(TRACE_HEADER_ENV, "").split(";")
        if "=" in part
    )
    root, parent = fields.get("Root"), fields.get("Parent")
    if fields.get("Sampled") != "1" or not root or not parent:
        return None
    return root, parent


def _begin(name: str, namespace: str) -> _Subsegment | None:
    parent = _open.get()
    if parent is not None:
        return _Subsegment(name, namespace, parent.trace_id, parent.id, parent)
    if not tracing_enabled():
        return None
    context = trace_context()
    if context is None:
        return None
    return _Subsegment(name, namespace, context[0], context[1], None)


def _end(segment: _Subsegment) -> None:
    segment.end_time = time.time()
    if segment.parent is not None:
        segment.parent.subsegments.append(segment)
    else:
        _send(segment.document())


def daemon_address(value: str | None = None) -> tuple[str, int]:
    """The daemon's UDP address: ``host:port`` or ``tcp:host:port udp:host:port``."""
    value = os.environ.get(DAEMON_ADDRESS_ENV, "") if value is None else value
    for part in value.split():
        fields = part.split(":")
        if len(fields) == 2:
            return fields[0], int(fields[1])
        if len(fields) == 3 and fields[0] == "udp":
            return fields[1], int(fields[2])
    return DEFAULT_DAEMON_ADDRESS


def _send(document: Mapping[str, Any]) -> None:
    """One datagram to the daemon; a failure is logged, never raised into the request."""
    global _socket
    try:
        payload = json.dumps(document, separators=(",", ":"), default=str).encode("utf-8")
        if _socket is None:
            with _socket_lock:
                if _socket is None:
                    made = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    made.setblocking(False)
                    _socket = made
        _socket.sendto(PROTOCOL_HEADER + payload, daemon_address())
    except (OSError, ValueError) as exc:
        log.warning("could not send a subsegment to the X-Ray daemon: %s", exc)


@contextlib.contextmanager
def subsegment(name: str) -> Iterator[Span]:
    """Trace the block as subsegment ``## name`` when tracing is on and the invocation sampled;
    otherwise just run it. An exception leaving the block is recorded, then propagates."""
    segment = _begin(f"## {name}", "local")
    if segment is None:
        yield _NOT_RECORDING
        return
    token = _open.set(segment)
    try:
        yield Span(segment)
    except BaseException as exc:
        segment.exception(exc, remote=False)
        raise
    finally:
        _open.reset(token)
        _end(segment)


def traced_call(client: Any, operation: str, kwargs: Mapping[str, Any]) -> Any:
    """``client.<operation>(**kwargs)``, recorded as a subsegment of the AWS service call when
    tracing is on and the invocation sampled."""
    method = getattr(client, operation)
    segment = _begin(_service_name(client), "aws")
    if segment is None:
        return method(**kwargs)
    meta = getattr(client, "meta", None)
    segment.aws = {
        "operation": getattr(meta, "method_to_api_mapping", {}).get(operation, operation),
        "region": getattr(meta, "region_name", None),
    }
    _hook_trace_header(client)
    token = _open.set(segment)
    try:
        response = method(**kwargs)
    except Exception as exc:
        _service_error(segment, exc)
        raise
    else:
        metadata = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
        if isinstance(metadata, Mapping):
            segment.aws["request_id"] = metadata.get("RequestId")
            segment.status(metadata.get("HTTPStatusCode"))
        return response
    finally:
        _open.reset(token)
        _end(segment)


def _service_name(client: Any) -> str:
    try:
        return str(client.meta.service_model.endpoint_prefix)
    except AttributeError:  # a stand-in client in tests
        return type(client).__name__


def _service_error(segment: _Subsegment, exc: Exception) -> None:
    """What the SDK records of a failed call: only a service's error response (botocore's
    ClientError) carries a request id, a status and a remote exception; a transport error
    (timeout, connection) ends the subsegment without them."""
    response = getattr(exc, "response", None)
    metadata = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
    if not isinstance(metadata, Mapping):
        return
    segment.aws["request_id"] = metadata.get("RequestId")
    segment.status(metadata.get("HTTPStatusCode"))
    segment.exception(exc, remote=True)


def _hook_trace_header(client: Any) -> None:
    """Once per client: its requests name the open call subsegment as their parent (botocore
    alone sends the function's segment as the parent)."""
    if getattr(client, _HOOKED, False):
        return
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:
        return
    events.register("request-created", _inject_trace_header)
    setattr(client, _HOOKED, True)


def _inject_trace_header(request: Any, **_kwargs: Any) -> None:
    segment = _open.get()
    if segment is None:
        return
    value = f"Root={segment.trace_id};Parent={segment.id};Sampled=1"
    headers = request.headers
    if TRACE_HEADER in headers:
        headers.replace_header(TRACE_HEADER, value)
    else:
        headers[TRACE_HEADER] = value


def reset() -> None:
    """Close the daemon socket (tests switch tracing on and off)."""
    global _socket
    if _socket is not None:
        _socket.close()
        _socket = None
