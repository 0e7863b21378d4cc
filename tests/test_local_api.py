"""The local API's API Gateway behaviour, over real HTTP on loopback (an in-process server on port
0): routes, API key, request model, payload limit, throttling, proxy events and responses,
concurrency. Most tests mount a recording fake handler; the last ones mount the real routers."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import STANDIN_SOURCE
from llm_router.config import RoutesConfig
from llm_router.edge.http_api import json_response
from llm_router.pipeline.strategies import STRATEGIES
from local_api import ApiSettings, HttpRequest, LocalApiServer, LocalGateway
from local_api.gateway import API_GATEWAY_MAX_PAYLOAD_BYTES
from local_api.request_model import request_schema
from local_api.routers import mount_routers
from local_api.throttle import DailyQuota, TokenBucket, UsagePlan

pytestmark = pytest.mark.generic  # holds for any valid routes file

KEY = "test-key"
ROUTERS = tuple(STRATEGIES)
MAX_CHARS = 50


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A Lambda handler that records its events and answers with a fixed proxy result."""

    def __init__(self, result: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.result = result

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if callable(self.result):
            return self.result(event)
        return self.result or json_response(200, {"ok": True, "fn": context.function_name})


def settings(**overrides: Any) -> ApiSettings:
    values: dict[str, Any] = dict(
        api_key=KEY, rate_limit=1000, burst_limit=1000, max_question_chars=MAX_CHARS
    )
    values.update(overrides)
    return ApiSettings(**values)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


Serve = Callable[..., str]


@pytest.fixture
def serve(recorder: Recorder) -> Iterator[Serve]:
    """Start a local API on port 0; returns its base URL. Every router is mounted on recorder."""
    servers: list[LocalApiServer] = []

    def start(
        api_settings: ApiSettings | None = None,
        handlers: dict[str, Any] | None = None,
        usage_plan: UsagePlan | None = None,
        request_log: Any = lambda *_: None,
    ) -> str:
        gateway = LocalGateway(
            api_settings or settings(),
            handlers or dict.fromkeys(ROUTERS, recorder),
            usage_plan,
        )
        server = LocalApiServer(gateway, request_log=request_log).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def call(
    url: str,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with full control over method, headers and body."""
    host_port = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host_port, timeout=10)
    try:
        payload = body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def ask(url: str, body: Any, key: str | None = KEY, path: str = "/semantic/ask", **headers: str):
    all_headers = {"Content-Type": "application/json", **headers}
    if key is not None:
        all_headers["x-api-key"] = key
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return call(url, "POST", path, raw, all_headers)


# --- routes ----------------------------------------------------------------------------------


def test_one_ask_path_per_strategy(recorder: Recorder) -> None:
    gateway = LocalGateway(settings(), dict.fromkeys(STRATEGIES, recorder))
    assert gateway.paths == [f"/{name}/ask" for name in STRATEGIES]


@pytest.mark.parametrize("router", ROUTERS)
def test_each_router_path_reaches_its_handler(serve: Serve, router: str) -> None:
    handlers = {name: Recorder() for name in ROUTERS}
    url = serve(handlers=handlers)
    status, _, body = ask(url, {"question": "q"}, path=f"/{router}/ask")
    assert status == 200
    assert json.loads(body)["fn"] == f"local-{router}-router"
    assert [len(h.events) for h in handlers.values()] == [n == router for n in ROUTERS]


@pytest.mark.parametrize("method,path", [
    ("POST", "/nowhere"),
    ("POST", "/ask"),
    ("POST", "/semantic"),
    ("GET", "/semantic/ask"),
    ("PUT", "/semantic/ask"),
    ("DELETE", "/llm-assisted/ask"),
    ("POST", "/health"),
])
def test_undefined_route_or_method_is_missing_authentication_token(
    serve: Serve, recorder: Recorder, method: str, path: str
) -> None:
    status, headers, body = call(serve(), method, path, b"{}", {"x-api-key": KEY})
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert recorder.events == []


def test_health_needs_no_key(serve: Serve) -> None:
    status, _, body = call(serve(), "GET", "/health")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok"
    assert set(health["routers"]) == {f"/{r}/ask" for r in ROUTERS}


def test_cors_preflight_needs_no_key(serve: Serve, recorder: Recorder) -> None:
    status, headers, body = call(serve(), "OPTIONS", "/semantic/ask")
    assert status == 204
    assert body == b""
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Methods"] == "POST,OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == "Content-Type,X-Api-Key,Cache-Control"
    assert recorder.events == []


# --- API key -----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-api-key", "X-API-Key", "X-Api-Key", "X-API-KEY"])
def test_api_key_header_name_is_case_insensitive(serve: Serve, header: str) -> None:
    url = serve()
    status, _, _ = call(url, "POST", "/semantic/ask", '{"question": "q"}', {header: KEY})
    assert status == 200


@pytest.mark.parametrize("key", [None, "", "wrong", KEY.upper(), KEY + " "])
def test_missing_or_wrong_key_is_forbidden(serve: Serve, recorder: Recorder, key: Any) -> None:
    status, headers, body = ask(serve(), {"question": "q"}, key=key)
    assert status == 403
    assert json.loads(body) == {"message": "Forbidden"}
    assert headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert headers["Access-Control-Allow-Origin"] == "*"  # the stack's Default4xx response
    assert recorder.events == []


# --- request model -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"",
    b"not json",
    b"[]",
    b'"question"',
    b"{}",
    b'{"question": ""}',
    b'{"question": 5}',
    b'{"question": null}',
    b'{"question": "q", "extra": 1}',
    b'{"question": "q", "category": ""}',
    b'{"question": "q", "category": 3}',
    json.dumps({"question": "q", "category": "c" * 65}).encode(),
    json.dumps({"question": "x" * (MAX_CHARS + 1)}).encode(),
    b'{"question": "\xff"}',
])
def test_body_outside_the_request_model_is_a_400(
    serve: Serve, recorder: Recorder, body: bytes
) -> None:
    status, headers, raw = ask(serve(), body)
    assert status == 400
    assert json.loads(raw) == {"message": "Invalid request body"}
    assert headers["x-amzn-ErrorType"] == "BadRequestException"
    assert recorder.events == []


@pytest.mark.parametrize("body", [
    {"question": "q"},
    {"question": "x" * MAX_CHARS},
    {"question": "q", "category": "math"},
    {"question": "   "},  # the schema allows it; the handler answers it with its own 400
])
def test_body_inside_the_request_model_reaches_the_handler(
    serve: Serve, recorder: Recorder, body: dict[str, str]
) -> None:
    status, _, _ = ask(serve(), body)
    assert status == 200
    assert json.loads(recorder.events[0]["body"]) == body


def test_the_body_is_validated_whatever_its_content_type(serve: Serve) -> None:
    """The stack maps the model to $default, so a form-encoded body is validated too."""
    url = serve()
    headers = {"x-api-key": KEY, "Content-Type": "application/x-www-form-urlencoded"}
    assert call(url, "POST", "/semantic/ask", "question=q", headers)[0] == 400
    assert call(url, "POST", "/semantic/ask", '{"question":"q"}', headers)[0] == 200


def test_request_model_matches_the_stacks_api_gateway_model(routes: RoutesConfig) -> None:
    """The local schema and the one the stack deploys, rendered by the CDK itself."""
    cdk = pytest.importorskip("aws_cdk")
    from aws_cdk import assertions
    from aws_cdk import aws_apigateway as apigw

    from stacks.router_api import question_schema

    stack = cdk.Stack(cdk.App(), "SchemaProbe")
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("ANY")
    api.add_model("Ask", content_type="application/json", schema=question_schema(routes))
    (model,) = assertions.Template.from_stack(stack).find_resources(
        "AWS::ApiGateway::Model"
    ).values()
    assert model["Properties"]["Schema"] == ApiSettings.from_config(routes, KEY).body_schema
    deployed = model["Properties"]["Schema"]["properties"]
    for name, field in request_schema(routes.api.max_question_chars)["properties"].items():
        assert deployed[name] == field  # the function's own fields, as the function checks them


# --- payload size --------------------------------------------------------------------------------


def test_payload_limit_is_api_gateways_10_mb(routes: RoutesConfig) -> None:
    assert API_GATEWAY_MAX_PAYLOAD_BYTES == 10 * 1024 * 1024
    assert ApiSettings.from_config(routes, KEY).max_payload_bytes == API_GATEWAY_MAX_PAYLOAD_BYTES


def test_oversized_body_is_refused_before_it_is_read(serve: Serve, recorder: Recorder) -> None:
    """Content-Length above 10 MB: a 413 without reading (or waiting for) the body."""
    url = serve(settings())
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.putrequest("POST", "/semantic/ask")
        conn.putheader("x-api-key", KEY)
        conn.putheader("Content-Length", str(API_GATEWAY_MAX_PAYLOAD_BYTES + 1))
        conn.endheaders(b'{"question": "')
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read()) == {"message": "Request Too Long"}
    finally:
        conn.close()
    assert recorder.events == []


def test_oversized_chunked_body_is_refused(serve: Serve) -> None:
    url = serve(settings(max_payload_bytes=100))
    chunks = iter([b"x" * 80, b"x" * 80])
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.request(
            "POST", "/semantic/ask", body=chunks, headers={"x-api-key": KEY},
            encode_chunked=True,
        )
        assert conn.getresponse().status == 413
    finally:
        conn.close()


@pytest.mark.parametrize("chunked", [
    b"zz\r\n{}\r\n0\r\n\r\n",  # a chunk size that is not hexadecimal
    b"-2\r\n{}\r\n0\r\n\r\n",  # a negative one
    b"2\r\n{}XX0\r\n\r\n",  # a chunk without its CRLF
    b"10\r\n{}\r\n",  # shorter than its size, then the connection ends
    b"2\r\n{}\r\n",  # no last chunk before the connection ends
])
def test_malformed_chunked_encoding_is_a_400(
    serve: Serve, recorder: Recorder, chunked: bytes
) -> None:
    """Answered, not dropped: a 400 in JSON, and the request never reaches the function."""
    import socket

    host, port = serve().removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /semantic/ask HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
        )
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while data := sock.recv(65536):
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), reply[:200]
    assert json.loads(body)["message"]
    assert recorder.events == []


def test_chunked_body_within_the_limit_is_served(serve: Serve, recorder: Recorder) -> None:
    url = serve()
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        body = iter([b'{"question":', b' "chunked"}'])
        conn.request(
            "POST", "/semantic/ask", body=body, headers={"x-api-key": KEY}, encode_chunked=True
        )
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert json.loads(recorder.events[0]["body"]) == {"question": "chunked"}


# --- throttling ----------------------------------------------------------------------------------


def test_token_bucket_allows_burst_then_refills_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.25  # half a token
    assert bucket.try_take() is False
    clock.now += 0.25
    assert bucket.try_take() is True
    clock.now += 100  # refills to the burst, no further
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]


def test_daily_quota_resets_at_utc_midnight() -> None:
    clock = FakeClock()
    clock.now = 86_400 * 100 + 86_399
    quota = DailyQuota(2, clock)
    assert [quota.try_take() for _ in range(3)] == [True, True, False]
    clock.now += 1
    assert quota.try_take() is True


def test_burst_beyond_the_bucket_is_throttled_per_router(serve: Serve) -> None:
    clock = FakeClock()
    url = serve(usage_plan=UsagePlan(rate=1, burst=2, clock=clock))
    statuses = [ask(url, {"question": "q"})[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    status, headers, body = ask(url, {"question": "q"})
    assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})
    assert headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert ask(url, {"question": "q"}, path="/llm-assisted/ask")[0] == 200  # its own API
    clock.now += 1
    assert ask(url, {"question": "q"})[0] == 200


def test_throttling_comes_after_the_key_check(serve: Serve) -> None:
    url = serve(usage_plan=UsagePlan(rate=1, burst=1, clock=FakeClock()))
    assert ask(url, {"question": "q"}, key="wrong")[0] == 403
    assert ask(url, {"question": "q"})[0] == 200  # the forbidden request took no token


def test_quota_exhausted_is_limit_exceeded(serve: Serve) -> None:
    url = serve(usage_plan=UsagePlan(rate=100, burst=100, quota_per_day=1))
    assert ask(url, {"question": "q"})[0] == 200
    status, _, body = ask(url, {"question": "q"})
    assert (status, json.loads(body)) == (429, {"message": "Limit Exceeded"})


def test_settings_come_from_routes_json(routes: RoutesConfig) -> None:
    api = ApiSettings.from_config(routes, KEY)
    assert api.rate_limit == routes.api.throttle_rate_limit
    assert api.burst_limit == routes.api.throttle_burst_limit
    assert api.quota_per_day == routes.api.quota_requests_per_day
    assert api.max_question_chars == routes.api.max_question_chars


# --- the proxy integration -----------------------------------------------------------------------


def test_request_becomes_a_rest_proxy_event(serve: Serve, recorder: Recorder) -> None:
    url = serve()
    status, headers, _ = call(
        url,
        "POST",
        "/hybrid/ask?lang=en&lang=fr&x=1",
        '{"question": "q"}',
        {"X-Api-Key": KEY, "Content-Type": "application/json", "User-Agent": "probe/1"},
    )
    assert status == 200
    (event,) = recorder.events
    assert event["resource"] == event["path"] == "/ask"  # as deployed, whatever the local path
    assert event["httpMethod"] == "POST"
    assert event["body"] == '{"question": "q"}'
    assert event["isBase64Encoded"] is False
    assert event["headers"]["X-Api-Key"] == KEY
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["User-Agent"] == ["probe/1"]
    assert event["queryStringParameters"] == {"lang": "fr", "x": "1"}
    assert event["multiValueQueryStringParameters"] == {"lang": ["en", "fr"], "x": ["1"]}
    context = event["requestContext"]
    assert context["stage"] == "prod"
    assert context["path"] == "/prod/ask"
    assert context["resourcePath"] == "/ask"
    assert context["identity"]["apiKey"] == KEY
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "probe/1"
    assert headers["x-amzn-RequestId"] == context["requestId"]


def test_proxy_result_becomes_the_http_response(serve: Serve) -> None:
    result = {
        "statusCode": 418,
        "headers": {"Content-Type": "text/plain", "X-One": "1"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "body": base64.b64encode(b"\x00binary").decode(),
        "isBase64Encoded": True,
    }
    url = serve(handlers={"semantic": Recorder(result)})
    status, headers, body = ask(url, {"question": "q"})
    assert (status, body) == (418, b"\x00binary")
    assert headers["Content-Type"] == "text/plain"
    assert headers["X-One"] == "1"


@pytest.mark.parametrize("result", [
    lambda event: 1 / 0,
    lambda event: "not a proxy result",
    lambda event: {"statusCode": "abc", "body": ""},
    lambda event: {"statusCode": 200, "body": {"not": "a string"}},
])
def test_handler_crash_or_malformed_result_is_a_502(serve: Serve, result: Any) -> None:
    url = serve(handlers={"semantic": Recorder(result)})
    status, headers, body = ask(url, {"question": "q"})
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_requests_are_served_concurrently(serve: Serve) -> None:
    """Both requests must be inside the handler at once to pass the barrier."""
    barrier = threading.Barrier(2, timeout=5)

    def meet(event: dict[str, Any]) -> dict[str, Any]:
        barrier.wait()
        return json_response(200, {"met": True})

    url = serve(handlers={"semantic": Recorder(meet)})
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(ask(url, {"question": "q"})[0]))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [200, 200]


def test_one_log_line_per_request(serve: Serve) -> None:
    lines: list[tuple[str, str, int, float]] = []
    url = serve(request_log=lambda *entry: lines.append(entry))
    ask(url, {"question": "q"})
    call(url, "GET", "/nowhere")
    assert [(m, p, s) for m, p, s, _ in lines] == [
        ("POST", "/semantic/ask", 200), ("GET", "/nowhere", 403)
    ]
    assert all(ms >= 0 for *_, ms in lines)


def test_gateway_dispatch_works_without_a_socket(recorder: Recorder) -> None:
    gateway = LocalGateway(settings(), {"semantic": recorder})
    response = gateway.dispatch(
        HttpRequest("POST", "/semantic/ask", (("x-api-key", KEY),), b'{"question": "q"}')
    )
    assert response.status == 200


def test_stop_releases_the_port(recorder: Recorder) -> None:
    import socket

    server = LocalApiServer(LocalGateway(settings(), {"semantic": recorder})).start()
    port = server.port
    server.stop()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


# --- the real routers ----------------------------------------------------------------------------


def test_real_routers_answer_through_the_gateway(
    serve: Serve, routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path,
    fresh_standin: Any,
) -> None:
    mounted = mount_routers(routes, bedrock_client, semantic_index_dir, STANDIN_SOURCE)
    assert [m.strategy.name for m in mounted] == list(STRATEGIES)
    assert all(m.error is None for m in mounted)
    url = serve(
        api_settings=settings(max_question_chars=routes.api.max_question_chars),
        handlers={m.strategy.name: m.handler for m in mounted},
    )
    category = next(iter(routes.categories.values()))  # its own first prompt routes to it
    for router in STRATEGIES:
        status, _, raw = ask(
            url, {"question": category.reference_prompts[0]}, path=f"/{router}/ask"
        )
        body = json.loads(raw)
        assert status == 200, body
        assert body["question_classification"] == category.name
        assert body["routing"]["strategy"] == router
    status, _, raw = ask(url, {"question": "   "})
    assert status == 400  # past the request model, refused by the handler itself
    assert "question" in json.loads(raw)["error"]


def test_router_that_cannot_start_answers_503_with_the_reason(
    serve: Serve, routes: RoutesConfig, bedrock_client: Any, tmp_path: Path
) -> None:
    mounted = mount_routers(routes, bedrock_client, tmp_path / "no-index", STANDIN_SOURCE)
    errors = {m.strategy.name: m.error for m in mounted}
    assert errors["llm-assisted"] is None
    assert "IndexMismatch" in (errors["semantic"] or "")
    url = serve(handlers={m.strategy.name: m.handler for m in mounted})
    status, _, raw = ask(url, {"question": "q"})
    assert status == 503
    assert "IndexMismatch" in json.loads(raw)["reason"]
