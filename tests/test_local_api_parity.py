"""The local API's edges, as API Gateway answers them: JSON (never the standard library's HTML) for
any method, long URLs, oversized headers and malformed request lines; a request that does not
arrive in time is closed; the integration timeout gives API Gateway's 504 while the function runs
on. Real sockets on loopback; the Lambda handler is a fake, so each test is fast."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llm_router.config import RoutesConfig
from llm_router.edge.http_api import json_response
from local_api import ApiSettings, LocalApiServer, LocalGateway

pytestmark = pytest.mark.generic  # holds for any valid routes file

KEY = "parity-key"


def settings(**overrides: Any) -> ApiSettings:
    values: dict[str, Any] = dict(
        api_key=KEY, rate_limit=1000, burst_limit=1000, max_question_chars=100
    )
    values.update(overrides)
    return ApiSettings(**values)


def answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return json_response(200, {"ok": True})


Serve = Callable[..., LocalApiServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[LocalApiServer] = []

    def start(handler: Any = answer, read_timeout: float = 10.0, **api: Any) -> LocalApiServer:
        gateway = LocalGateway(settings(**api), {"semantic": handler})
        server = LocalApiServer(
            gateway, request_log=lambda *_: None, request_read_timeout=read_timeout
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def raw_exchange(server: LocalApiServer, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read until the server closes (or the timeout): the whole reply."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse(reply: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW", "GET", "PATCH"])
def test_any_method_gets_api_gateways_json(serve: Serve, method: str) -> None:
    server = serve()
    target = "127.0.0.1:443" if method == "CONNECT" else "/semantic/ask"
    reply = raw_exchange(
        server,
        f"{method} {target} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode(),
    )
    status, headers, body = parse(reply)
    assert (status, body) == (403, {"message": "Missing Authentication Token"})
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431),
    (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(150)) + b"\r\n",
     431),
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\n\r\n", 505),
])
def test_protocol_errors_are_json_not_html(serve: Serve, request_bytes: bytes, status: int) -> None:
    got, headers, body = parse(raw_exchange(serve(), request_bytes))
    assert got == status
    assert headers["content-type"] == "application/json"
    assert set(body) == {"message"} and body["message"]
    assert "<" not in body["message"]


def test_a_request_that_does_not_arrive_in_time_is_closed(serve: Serve) -> None:
    server = serve(read_timeout=0.5)
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /semantic/ask HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert time.monotonic() - started < 3
    status, _, body = parse(reply)
    assert (status, body) == (408, {"message": "Request Timeout"})


def test_trickled_headers_are_cut_off_by_the_deadline(serve: Serve) -> None:
    """One byte at a time, each within the per-read timeout, still cannot hold the connection."""
    server = serve(read_timeout=0.6)
    started = time.monotonic()
    closed = False
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        for _ in range(40):
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            sock.setblocking(False)
            try:
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            finally:
                sock.setblocking(True)
    assert closed
    assert time.monotonic() - started < 1.8


def test_an_idle_keep_alive_connection_is_closed(serve: Serve) -> None:
    server = serve(read_timeout=0.4)
    started = time.monotonic()
    reply = raw_exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive
    assert time.monotonic() - started < 2.5  # closed by the server, not by our 5 s timeout
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.count(b"HTTP/1.1 ") == 1  # no 408 for a connection with no request under way


def test_a_slow_handler_is_not_cut_off_by_the_read_deadline(serve: Serve) -> None:
    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        time.sleep(0.8)
        return answer(event, context)

    server = serve(slow, read_timeout=0.3)
    body = b'{"question": "q"}'
    reply = raw_exchange(
        server,
        b"POST /semantic/ask HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode()
        + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert parse(reply)[:1] == (200,)


def test_integration_timeout_is_a_504_and_the_function_runs_on(serve: Serve) -> None:
    finished = threading.Event()

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        time.sleep(0.6)
        finished.set()
        return answer(event, context)

    server = serve(slow, integration_timeout_seconds=0.2)
    body = b'{"question": "q"}'
    started = time.monotonic()
    reply = raw_exchange(
        server,
        b"POST /semantic/ask HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode()
        + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    elapsed = time.monotonic() - started
    status, headers, payload = parse(reply)
    assert (status, payload) == (504, {"message": "Endpoint request timed out"})
    assert 0.2 <= elapsed < 0.55
    assert not finished.is_set()
    assert finished.wait(2)  # the invocation went on in the background


def test_integration_timeout_comes_from_routes_json(routes: RoutesConfig) -> None:
    api = ApiSettings.from_config(routes, KEY)
    assert api.integration_timeout_seconds == routes.api.integration_timeout_seconds
    assert routes.raw["api"].get("integration_timeout_seconds", 29) == (
        api.integration_timeout_seconds
    )


def test_a_handler_result_that_cannot_be_encoded_is_a_502(serve: Serve) -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "lone \ud800"}

    server = serve(broken)
    body = b'{"question": "q"}'
    reply = raw_exchange(
        server,
        b"POST /semantic/ask HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode()
        + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    status, _, payload = parse(reply)
    assert (status, payload) == (502, {"message": "Internal server error"})
