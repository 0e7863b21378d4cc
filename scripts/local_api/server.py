"""The HTTP side of the local API: a threaded stdlib server that hands requests to the gateway.

``ThreadingHTTPServer`` serves each connection on its own thread, so concurrent requests run
concurrently, as separate Lambda invocations do. This module only moves bytes: reading the body
(refusing oversized ones before reading them), writing the response and logging one line per
request; every API decision is :class:`~local_api.gateway.LocalGateway`'s.

What the standard library would answer with an HTML page is JSON here, in API Gateway's
``{"message": ...}`` shape: an oversized header block (431), a long URL (414), a malformed request
line (400). Every method, TRACE, CONNECT and made-up ones included, goes to the gateway, which
answers 403 "Missing Authentication Token" for anything the API does not define. A request whose
line, headers and body have not all arrived within :data:`REQUEST_READ_TIMEOUT_SECONDS` is answered
408 and its connection closed (a per-read socket timeout alone lets a client trickle one byte at a
time); an idle keep-alive connection is closed after the same time.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from background_server import BackgroundServer, QuietThreadingServer

from .gateway import LocalGateway
from .messages import (
    INTEGRATION_FAILURE,
    REQUEST_TOO_LARGE,
    HttpRequest,
    HttpResponse,
    gateway_error,
    protocol_error,
)

RequestLog = Callable[[str, str, int, float], None]  # method, path, status, milliseconds
REQUEST_READ_TIMEOUT_SECONDS = 10.0


def print_request(method: str, path: str, status: int, millis: float) -> None:
    """The default request log: ``POST /semantic/ask 200 153ms``."""
    print(f"{method} {path} {status} {millis:.0f}ms", flush=True)


class _Server(QuietThreadingServer):
    def __init__(
        self,
        address: tuple[str, int],
        gateway: LocalGateway,
        log: RequestLog,
        request_read_timeout: float = REQUEST_READ_TIMEOUT_SECONDS,
    ) -> None:
        self.gateway = gateway
        self.request_log = log
        self.request_read_timeout = request_read_timeout
        super().__init__(address, _RequestHandler)


class _MalformedBody(ValueError):
    """The chunked encoding of a request body is broken: a 400, and the connection closes."""


_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_CHUNK_LINE = 4096


class _BodyTooLarge(Exception):
    pass


class _ReadDeadline:
    """Closes the connection if the request has not fully arrived by the deadline.

    One timer thread per request, cancelled as soon as the body is read: simpler than a shared
    scheduler, and a thread costs far less than the request it guards.
    """

    def __init__(self, handler: _RequestHandler, seconds: float) -> None:
        self.expired = False
        self._handler = handler
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> bool:
        """Stop the clock; False when it already ran out."""
        with self._lock:
            self._timer.cancel()
            return not self.expired

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
        connection = self._handler.connection
        try:
            if self._handler.raw_requestline:  # a request was under way: tell the client why
                body = protocol_error(408, "Request Timeout")
                connection.sendall(
                    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client is gone already


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see background_server
    server_version = "local-api-gateway"
    sys_version = ""
    timeout = 120  # a per-read socket timeout; _ReadDeadline bounds the whole request

    raw_requestline = b""
    _deadline: _ReadDeadline | None = None

    def handle_one_request(self) -> None:
        self.raw_requestline = b""
        self._deadline = _ReadDeadline(self, self.server.request_read_timeout)
        try:
            super().handle_one_request()
        finally:
            if self._deadline.expired:
                self.close_connection = True
            self._deadline.cancel()

    def __getattr__(self, name: str) -> Any:
        """``do_<METHOD>`` for every method: the gateway, not the stdlib, refuses unknown ones."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        started = time.perf_counter()
        gateway = self.server.gateway
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body(gateway)
        except _MalformedBody as exc:  # API Gateway's front end answers 400 and closes, too
            self.send_error(400, f"malformed chunked encoding: {exc}")
            self.server.request_log(self.command, self.path, 400,
                                    (time.perf_counter() - started) * 1000)
            return
        except _BodyTooLarge:
            self.close_connection = True  # the rest of the body is never read
            response = gateway_error(REQUEST_TOO_LARGE, "-")
        else:
            if self._deadline is not None and not self._deadline.cancel():
                self.close_connection = True  # timed out mid-request: already answered 408
                return
            response = self._dispatch(gateway, path, query, body)
        millis = (time.perf_counter() - started) * 1000
        self.server.request_log(self.command, self.path, response.status, millis)
        self._send(response)  # after the log line, so it is there when the client has its answer

    def _dispatch(self, gateway: LocalGateway, path: str, query: str, body: bytes) -> HttpResponse:
        try:
            return gateway.dispatch(
                HttpRequest(
                    method=self.command,
                    path=path,
                    headers=tuple(self.headers.items()),
                    body=body,
                    query=query,
                    source_ip=self.client_address[0],
                )
            )
        except Exception:  # a gateway bug must still look like API Gateway: a JSON 502
            self.log_message("gateway error:\n%s", traceback.format_exc())
            return gateway_error(INTEGRATION_FAILURE, "-")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's protocol errors (400, 414, 431, 505...) as JSON, not HTML."""
        self.log_error("code %d, message %s", code, message)
        reason = self.responses.get(code, ("Error",))[0]
        body = protocol_error(code, reason)
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer in HTTP/1.1
            self.request_version = "HTTP/1.1"
        self.send_response(code, reason)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self, gateway: LocalGateway) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(gateway)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if gateway.too_large(length):
            raise _BodyTooLarge
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self, gateway: LocalGateway) -> bytes:
        """The body of a chunked request (RFC 9112 7.1); _MalformedBody for a bad size line, a
        short chunk, a chunk without its CRLF or a connection closed before the last chunk."""
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            digits = line.split(b";")[0].strip()
            if not line.endswith(b"\n") or not _HEX.fullmatch(digits):
                raise _MalformedBody(f"bad chunk-size line {line[:40]!r}")
            chunk_size = int(digits, 16)
            if chunk_size == 0:
                while (trailer := self.rfile.readline(_MAX_CHUNK_LINE)) not in (b"\r\n", b"\n"):
                    if not trailer.endswith(b"\n"):
                        raise _MalformedBody("the trailer section does not end")
                return b"".join(chunks)
            size += chunk_size
            if gateway.too_large(size):
                raise _BodyTooLarge
            chunk = self.rfile.read(chunk_size)
            if len(chunk) != chunk_size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _MalformedBody("a chunk is shorter than its size or lacks its CRLF")
            chunks.append(chunk)

    def _send(self, response: HttpResponse) -> None:
        if response.streaming is not None:
            self._send_stream(response)
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _send_stream(self, response: HttpResponse) -> None:
        """A streamed integration: chunked transfer, each chunk flushed as the function writes
        it; a client that leaves stops the writing, not the function (``deliver``)."""
        from llm_router.edge.streaming import deliver  # after gateway's sys.path set-up

        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(data: bytes) -> None:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        deliver(response.streaming, write)
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: :meth:`_serve` logs each request once it is answered, with its duration."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib's signature)
        sys.stderr.write(f"local api: {format % args}\n")


class LocalApiServer(BackgroundServer):
    """Serves a :class:`LocalGateway` on ``host:port`` (port 0 picks a free one) on a thread."""

    def __init__(
        self,
        gateway: LocalGateway,
        host: str = "127.0.0.1",
        port: int = 0,
        request_log: RequestLog = print_request,
        request_read_timeout: float = REQUEST_READ_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(
            _Server((host, port), gateway, request_log, request_read_timeout), "local-api"
        )
