"""The streaming function's runtime: a Lambda Runtime API loop that streams each response.

Why a loop of our own: Lambda streams responses natively only from Node.js; the Python runtime's
client (awslambdaric) posts one buffered response. A function may replace that client with any
process speaking the Runtime API (``AWS_LAMBDA_EXEC_WRAPPER`` runs ``stream_bootstrap`` instead of
the managed runtime's bootstrap, as the Lambda Web Adapter's own layer does), and the Runtime API
streams a response posted with ``Lambda-Runtime-Function-Response-Mode: streaming`` and
``Transfer-Encoding: chunked``. The alternative, the Lambda Web Adapter, puts a Rust extension and
an HTTP server in front of the same handler: another process, another hop, and a public binary
layer in every deployment; this is ~150 lines of the standard library around the router's own
handler, and it runs offline against a loopback Runtime API in the tests.

Each invocation: ``GET /runtime/invocation/next`` (the event and its request id, deadline and
trace header), then ``POST /runtime/invocation/<id>/response`` carrying API Gateway's streamed
proxy format: the JSON prelude (``statusCode``, ``headers``), eight NUL bytes, then the body as it
is written (``application/vnd.awslambda.http-integration-response``). The handler never raises;
should writing itself fail, the error goes into the ``Lambda-Runtime-Function-Error-Type`` and
``-Body`` trailers, which is how a streamed response reports an error once it has begun.
"""

from __future__ import annotations

# isort: off
from . import init_phase  # first: the init phase runs without cyclic GC (see init_phase)

# isort: on
import base64
import http.client
import json
import os
import time
from collections.abc import Callable
from typing import Any

from ..records import record
from .streaming import StreamingResponse, StreamingRouterHandler, deliver

RUNTIME_API_ENV = "AWS_LAMBDA_RUNTIME_API"
RUNTIME = "/2018-06-01/runtime"
INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_DELIMITER = b"\x00" * 8
ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
TRACE_ENV = "_X_AMZN_TRACE_ID"


@record
class InvocationContext:
    """The parts of Lambda's context object the handler reads."""

    aws_request_id: str
    deadline_ms: int
    function_name: str = ""
    function_version: str = ""
    memory_limit_in_mb: str = ""
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))


class RuntimeClient:
    """The Runtime API over one keep-alive connection to ``AWS_LAMBDA_RUNTIME_API``."""

    def __init__(self, address: str) -> None:
        host, _, port = address.partition(":")
        self._connection = http.client.HTTPConnection(host, int(port or 80))

    def next_invocation(self) -> tuple[Any, InvocationContext]:
        self._connection.request("GET", f"{RUNTIME}/invocation/next")
        response = self._connection.getresponse()
        body = response.read()
        headers = response.headers
        trace = headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ[TRACE_ENV] = trace
        context = InvocationContext(
            aws_request_id=str(headers.get("Lambda-Runtime-Aws-Request-Id")),
            deadline_ms=int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
            memory_limit_in_mb=os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""),
            invoked_function_arn=str(headers.get("Lambda-Runtime-Invoked-Function-Arn") or ""),
            log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
        )
        try:
            event = json.loads(body)
        except ValueError:
            event = None  # the handler answers a 400 for any event it cannot read
        return event, context

    def stream(self, request_id: str, response: StreamingResponse) -> None:
        """Post the response in streaming mode: prelude, delimiter, then each chunk at once."""
        connection = self._connection
        connection.putrequest("POST", f"{RUNTIME}/invocation/{request_id}/response")
        connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", INTEGRATION_CONTENT_TYPE)
        connection.putheader("Trailer", f"{ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}")
        connection.endheaders()

        def chunk(data: bytes) -> None:
            if data:
                connection.send(b"%x\r\n%s\r\n" % (len(data), data))

        trailers = b""
        try:
            chunk(json.dumps(response.prelude()).encode() + PRELUDE_DELIMITER)
            deliver(response, chunk)
        except Exception as exc:  # the stream broke while being written: say so in trailers
            error = json.dumps({"errorType": type(exc).__name__, "errorMessage": "stream failed"})
            trailers = (
                f"{ERROR_TYPE_TRAILER}: {type(exc).__name__}\r\n"
                f"{ERROR_BODY_TRAILER}: {base64.b64encode(error.encode()).decode()}\r\n"
            ).encode()
        connection.send(b"0\r\n" + trailers + b"\r\n")
        connection.getresponse().read()

    def init_error(self, exc: BaseException) -> None:
        body = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)[:1000]})
        self._connection.request(
            "POST", f"{RUNTIME}/init/error", body,
            {"Lambda-Runtime-Function-Error-Type": "Runtime.InitError"},
        )
        self._connection.getresponse().read()


def serve(
    handler: StreamingRouterHandler,
    client: RuntimeClient,
    invocations: int | None = None,
) -> None:
    """Answer invocations forever (or ``invocations`` of them, for tests)."""
    served = 0
    while invocations is None or served < invocations:
        event, context = client.next_invocation()
        client.stream(context.aws_request_id, handler.stream(event, context))
        served += 1


def main(make_handler: Callable[[], StreamingRouterHandler] | None = None) -> None:
    client = RuntimeClient(os.environ[RUNTIME_API_ENV])
    try:
        handler = (make_handler or (lambda: StreamingRouterHandler(eager=init_phase.IN_LAMBDA)))()
        init_phase.finish()
    except Exception as exc:  # the handler's own init never raises; an import might
        client.init_error(exc)
        raise
    serve(handler, client)


if __name__ == "__main__":
    main()
