"""The HTTP side of the local API: a threaded stdlib server that hands requests to the gateway.

``ThreadingHTTPServer`` serves each connection on its own thread, so concurrent requests run
concurrently, as separate Lambda invocations do. This module only moves bytes: reading the body
(refusing oversized ones before reading them), writing the response and logging one line per
request; every API decision is :class:`~local_api.gateway.LocalGateway`'s.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from background_server import BackgroundServer, QuietThreadingServer

from .gateway import LocalGateway
from .messages import REQUEST_TOO_LARGE, HttpRequest, HttpResponse, gateway_error

RequestLog = Callable[[str, str, int, float], None]  # method, path, status, milliseconds


def print_request(method: str, path: str, status: int, millis: float) -> None:
    """The default request log: ``POST /semantic/ask 200 153ms``."""
    print(f"{method} {path} {status} {millis:.0f}ms", flush=True)


class _Server(QuietThreadingServer):
    def __init__(self, address: tuple[str, int], gateway: LocalGateway, log: RequestLog) -> None:
        self.gateway = gateway
        self.request_log = log
        super().__init__(address, _RequestHandler)


class _BodyTooLarge(Exception):
    pass


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see background_server
    server_version = "local-api-gateway"
    sys_version = ""
    timeout = 120  # seconds a connection may sit idle or stall mid-request

    def _serve(self) -> None:
        started = time.perf_counter()
        gateway = self.server.gateway
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body(gateway)
        except _BodyTooLarge:
            self.close_connection = True  # the rest of the body is never read
            response = gateway_error(REQUEST_TOO_LARGE, "-")
        else:
            response = gateway.dispatch(
                HttpRequest(
                    method=self.command,
                    path=path,
                    headers=tuple(self.headers.items()),
                    body=body,
                    query=query,
                    source_ip=self.client_address[0],
                )
            )
        millis = (time.perf_counter() - started) * 1000
        self.server.request_log(self.command, self.path, response.status, millis)
        self._send(response)  # after the log line, so it is there when the client has its answer

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
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk_size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if chunk_size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            size += chunk_size
            if gateway.too_large(size):
                raise _BodyTooLarge
            chunks.append(self.rfile.read(chunk_size))
            self.rfile.readline()  # the CRLF after each chunk

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

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
    ) -> None:
        super().__init__(_Server((host, port), gateway, request_log), "local-api")
