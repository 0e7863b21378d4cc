"""POST /ask/stream end to end offline: the local API, the real routers, the stand-in's
ConverseStream in Bedrock's wire format, and the Lambda runtime loop's streaming mode.

Timings come from the stand-in writing one chunk every 0.1 s (``per_chunk_seconds``): the first
``delta`` must arrive within 30% of the stream's total time, i.e. the answer is not buffered.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from background_server import BackgroundServer, QuietThreadingServer
from conftest import HAIKU, STANDIN_SOURCE
from test_ask import KEY, REGION
from test_cache import HISTORY_Q, config_with, dynamodb, table  # noqa: F401  (fixtures)

from layers import REPO_ROOT

WW2 = "What year did World War II end?"  # semantic router: history -> Haiku first, then Sonnet
TEN_WORDS = "The war in Europe ended in May and in Asia in September."
CHUNK_SECONDS = 0.1


def post_stream(
    base: str, body: dict[str, Any], router: str = "semantic", key: str = KEY,
    stop_after: int | None = None,
) -> tuple[int, str, list[tuple[float, str, Any]]]:
    """POST /<router>/ask/stream; (status, content type, [(seconds, event, data)]) as they came.

    ``stop_after``: close the connection after that many events (a client that leaves)."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    started = time.perf_counter()
    connection.request(
        "POST", f"/{router}/ask/stream", json.dumps(body),
        {"Content-Type": "application/json", "x-api-key": key},
    )
    response = connection.getresponse()
    content_type = response.getheader("Content-Type", "")
    if not content_type.startswith("text/event-stream"):
        events = [(0.0, "json", json.loads(response.read()))]
        connection.close()
        return response.status, content_type, events
    events: list[tuple[float, str, Any]] = []
    name = None
    for raw in response:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((time.perf_counter() - started, str(name), json.loads(line[6:])))
            if stop_after is not None and len(events) >= stop_after:
                break
    connection.close()
    return response.status, content_type, events


@pytest.fixture(scope="module")
def routers_setup(
    tmp_path_factory: pytest.TempPathFactory, standin: Any
) -> tuple[Any, Any, Path]:
    """The configuration, a stand-in client and a semantic index, built once."""
    from llm_router.config import load_routes
    from llm_router.decision.embeddings import TitanEmbedder
    from llm_router.decision.semantic_index import build_index
    from llm_router.models.bedrock import runtime_client

    routes = load_routes()
    client = runtime_client(REGION, standin.url, credentials=("testing", "testing"))
    index_dir = tmp_path_factory.mktemp("stream-index")
    build_index(routes, TitanEmbedder(client, routes.embedding), index_dir, STANDIN_SOURCE)
    return routes, client, index_dir


@pytest.fixture
def local_api(routers_setup: tuple[Any, Any, Path]) -> Iterator[str]:
    """The local API in front of freshly built routers (fresh circuit breakers: a test's
    injected faults never open a breaker for the next one)."""
    from local_api import ApiSettings, LocalApiServer, LocalGateway
    from local_api.routers import mount_routers

    routes, client, index_dir = routers_setup
    mounted = mount_routers(routes, client, index_dir, STANDIN_SOURCE)
    gateway = LocalGateway(
        ApiSettings.from_config(routes, KEY), {m.strategy.name: m.handler for m in mounted}
    )
    with LocalApiServer(gateway, request_log=lambda *_: None) as server:
        yield server.url


@pytest.fixture
def audits(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every audit record the handlers publish (the record, before it is logged)."""
    import llm_router.edge.handler as handler_module

    records: list[dict[str, Any]] = []
    real = handler_module.publish

    def capture(record: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        records.append(dict(record))
        real(record, *args, **kwargs)

    monkeypatch.setattr(handler_module, "publish", capture)
    return records


def wait_for(predicate: Any, seconds: float = 10) -> None:
    ends = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < ends, "timed out"
        time.sleep(0.02)


def test_first_delta_within_30_percent_routing_first_done_has_cost(
    local_api: str, fresh_standin: Any
) -> None:
    fresh_standin.script(HAIKU, [TEN_WORDS])
    fresh_standin.set_chunk_delay(HAIKU, CHUNK_SECONDS)
    status, content_type, events = post_stream(local_api, {"question": WW2})
    assert status == 200 and content_type == "text/event-stream"
    names = [name for _, name, _ in events]
    assert names[0] == "routing" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) == 2 + len(TEN_WORDS.split())
    routing = events[0][2]
    assert routing["question_classification"] == "history"
    assert routing["answer_target"] == HAIKU and routing["declined"] is False
    first_delta = next(t for t, name, _ in events if name == "delta")
    total = events[-1][0]
    assert total >= CHUNK_SECONDS * len(TEN_WORDS.split())  # it did take the chunks' time
    assert first_delta <= 0.3 * total, (first_delta, total)
    text = "".join(data["text"] for _, name, data in events if name == "delta")
    assert text == TEN_WORDS
    done = events[-1][2]
    assert "answer" not in done
    assert done["usage"]["cost_usd"]["total"] > 0
    assert done["answerer_LLM"] == HAIKU and done["request_id"] == routing["request_id"]


def test_a_fault_after_the_first_chunk_ends_with_error(
    local_api: str, fresh_standin: Any, audits: list[dict[str, Any]]
) -> None:
    fresh_standin.script(HAIKU, [TEN_WORDS])
    fresh_standin.inject_fault(HAIKU, "ThrottlingException", count=1, after_chunks=3)
    status, _, events = post_stream(local_api, {"question": WW2})
    assert status == 200  # the stream had begun
    names = [name for _, name, _ in events]
    assert names == ["routing", "delta", "delta", "delta", "error"]  # never a silent switch
    error = events[-1][2]
    assert error["code"] == "answer_interrupted"
    assert error["model_id"] == HAIKU and error["bedrock_error"] == "ThrottlingException"
    assert "message" in error and "Too many requests" not in json.dumps(error)  # no raw text
    assert [c["api"] for c in fresh_standin.calls()].count("converse-stream") == 1
    wait_for(lambda: audits)
    assert audits[-1]["status"] == 502 and audits[-1]["error_code"] == "answer_interrupted"
    assert audits[-1]["stream"]["deltas"] == 3


@pytest.mark.parametrize("after_chunks", [None, 0], ids=["http-error", "in-stream-before-text"])
def test_a_fault_before_the_first_chunk_fails_over(
    local_api: str, fresh_standin: Any, after_chunks: int | None
) -> None:
    error = "ServiceUnavailableException"
    fresh_standin.inject_fault(HAIKU, error, after_chunks=after_chunks)
    status, _, events = post_stream(local_api, {"question": WW2})
    assert status == 200
    names = [name for _, name, _ in events]
    assert names[0] == "routing" and names[-1] == "done" and "error" not in names
    done = events[-1][2]
    assert done["routing"]["fallback_used"] is True
    assert done["answerer_LLM"] != HAIKU
    failed = [t for t in done["routing"]["targets"] if t["result"] == "failed"]
    assert failed and {t["model_id"] for t in failed} == {HAIKU}


def test_declined_is_routing_then_done_without_an_answer_model(
    local_api: str, fresh_standin: Any
) -> None:
    status, _, events = post_stream(
        local_api, {"question": "What's a good pasta recipe for tonight?"}, router="llm-assisted"
    )
    assert status == 200
    assert [name for _, name, _ in events] == ["routing", "done"]
    assert events[0][2]["declined"] is True and events[0][2]["decline_message"]
    assert events[1][2]["answerer_LLM"] is None
    assert "converse-stream" not in [c["api"] for c in fresh_standin.calls()]


def test_refusals_before_routing_are_json_errors_with_status(
    local_api: str, fresh_standin: Any
) -> None:
    status, content_type, events = post_stream(local_api, {"question": WW2}, key="wrong")
    assert (status, events[0][2]) == (403, {"message": "Forbidden"})
    status, _, events = post_stream(local_api, {"question": "   "})
    assert status == 400 and content_type.startswith("application/json")
    status, _, events = post_stream(local_api, {"question": WW2, "category": "cooking"})
    assert status == 400 and events[0][2]["code"] == "unknown_category"
    # A router that keeps no conversations knows no id: /ask's 404, never silently ignored.
    conversation_id = "00000001-0000-4000-8000-000000000000"
    body = {"question": WW2, "conversation_id": conversation_id}
    status, _, events = post_stream(local_api, body)
    assert status == 404 and events[0][2]["code"] == "conversation_not_found"


def test_an_abandoned_stream_is_read_to_its_end_and_audited(
    local_api: str, fresh_standin: Any, audits: list[dict[str, Any]]
) -> None:
    fresh_standin.script(HAIKU, [TEN_WORDS])
    fresh_standin.set_chunk_delay(HAIKU, 0.05)
    status, _, events = post_stream(local_api, {"question": WW2}, stop_after=2)
    assert status == 200 and [name for _, name, _ in events] == ["routing", "delta"]
    wait_for(lambda: audits)
    record = audits[-1]
    assert record["stream"]["abandoned"] is True
    assert record["status"] == 200 and record["outcome"] == "answered"
    assert record["cost_usd"] > 0  # the whole answer's usage: spend and budget stay exact
    assert record["stream"]["deltas"] == len(TEN_WORDS.split())


# -- the Lambda runtime loop ----------------------------------------------------------------------


class _RuntimeApi(BaseHTTPRequestHandler):
    """A loopback Lambda Runtime API: one invocation, then records the streamed response."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps(self.server.event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.server.path = self.path
        self.server.headers = dict(self.headers)
        started = time.perf_counter()
        chunks: list[tuple[float, bytes]] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.server.trailers = self.rfile.readline()
                break
            chunks.append((time.perf_counter() - started, self.rfile.read(size)))
            self.rfile.readline()
        self.server.chunks = chunks
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class RuntimeApiServer(BackgroundServer):
    def __init__(self, event: dict[str, Any]) -> None:
        http_server = QuietThreadingServer(("127.0.0.1", 0), _RuntimeApi)
        http_server.event = event  # type: ignore[attr-defined]
        self.http = http_server
        super().__init__(http_server, "runtime-api")


def test_runtime_loop_streams_in_api_gateway_format(
    routes: Any, bedrock_client: Any, fresh_standin: Any
) -> None:
    from llm_router.edge import stream_runtime
    from llm_router.edge.streaming import StreamingRouterHandler
    from llm_router.pipeline.factory import build_service

    service = build_service("llm-assisted", routes, bedrock_client, budget=None)
    handler = StreamingRouterHandler(
        strategy="llm-assisted", service_factory=lambda: service, eager=True, tier_keys={}
    )
    fresh_standin.script(HAIKU, [TEN_WORDS])
    fresh_standin.set_chunk_delay(HAIKU, 0.05)
    event = {"body": json.dumps({"question": WW2}), "requestContext": {"requestId": "api-1"}}
    with RuntimeApiServer(event) as api:
        client = stream_runtime.RuntimeClient(f"127.0.0.1:{api.port}")
        stream_runtime.serve(handler, client, invocations=1)
        chunks, headers = api.http.chunks, api.http.headers
    assert api.http.path == "/2018-06-01/runtime/invocation/req-1/response"
    assert headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    assert headers["Transfer-Encoding"] == "chunked"
    assert headers["Content-Type"] == "application/vnd.awslambda.http-integration-response"
    prelude, _, first_body = chunks[0][1].partition(b"\x00" * 8)
    meta = json.loads(prelude)
    assert meta["statusCode"] == 200 and meta["headers"]["Content-Type"] == "text/event-stream"
    body = first_body + b"".join(data for _, data in chunks[1:])
    assert body.startswith(b"event: routing\n") and b"event: done\n" in body
    assert chunks[-1][0] - chunks[1][0] > 0.3  # written as produced, not in one piece
    assert api.http.trailers == b"\r\n"  # no error trailers


# -- ask.py --chat ---------------------------------------------------------------------------------


def test_ask_chat_prints_the_answer_as_it_arrives(
    local_api: str, fresh_standin: Any
) -> None:
    fresh_standin.script(HAIKU, [TEN_WORDS])
    fresh_standin.set_chunk_delay(HAIKU, CHUNK_SECONDS)
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "ask.py"), "--url",
         f"{local_api}/semantic", "--api-key", KEY, "--chat"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    arrivals: dict[str, float] = {}
    output = bytearray()

    def read() -> None:
        started = time.perf_counter()
        while chunk := process.stdout.read1(4096):  # type: ignore[union-attr]
            output.extend(chunk)
            for marker in ("The war ", "September.", "Routing:"):
                if marker.encode() in output and marker not in arrivals:
                    arrivals[marker] = time.perf_counter() - started

    reader = threading.Thread(target=read)
    reader.start()
    process.stdin.write(f"{WW2}\nquit\n".encode())  # type: ignore[union-attr]
    process.stdin.close()  # type: ignore[union-attr]
    reader.join(60)
    assert process.wait(30) == 0, process.stderr.read()  # type: ignore[union-attr]
    assert set(arrivals) == {"The war ", "September.", "Routing:"}, bytes(output)
    # The first words were on screen while the model was still writing the rest.
    assert arrivals["September."] - arrivals["The war "] >= CHUNK_SECONDS * 5
    assert b"you> " in output and b"Cost: $" in output


def test_the_stream_deadline_ends_a_long_answer_with_an_error(
    routes: Any, bedrock_client: Any, fresh_standin: Any, audits: list[dict[str, Any]]
) -> None:
    """``api.stream_deadline_seconds`` bounds the whole stream, not each read."""
    import copy

    from llm_router.config import parse_routes
    from llm_router.edge.streaming import StreamingRouterHandler
    from llm_router.pipeline.factory import build_service

    raw = copy.deepcopy(dict(routes.raw))
    raw["api"]["stream_deadline_seconds"] = 1.0
    config = parse_routes(raw, source_path=routes.source_path)
    assert config.stream_function_timeout_seconds == 3  # the deadline plus the 2 s margin
    service = build_service("llm-assisted", config, bedrock_client, budget=None)
    handler = StreamingRouterHandler(
        strategy="llm-assisted", service_factory=lambda: service, eager=True, tier_keys={}
    )
    fresh_standin.script(HAIKU, [" ".join(["word"] * 40)])
    fresh_standin.set_chunk_delay(HAIKU, 0.1)  # 4 s of answer against a 1 s deadline
    started = time.perf_counter()
    response = handler.stream({"body": json.dumps({"question": WW2})}, None)
    chunks = list(response.body)
    assert time.perf_counter() - started < 2.5
    names = [chunk.split(b"\n", 1)[0].decode() for chunk in chunks]
    assert names[0] == "event: routing" and names[-1] == "event: error"
    assert 0 < names.count("event: delta") < 40
    error = json.loads(chunks[-1].split(b"data: ", 1)[1])
    assert error["code"] == "deadline_exceeded"
    assert audits[-1]["error_code"] == "deadline_exceeded" and audits[-1]["status"] == 504


@pytest.mark.parametrize("seconds", [0, -5, 841, 900])
def test_the_stream_deadline_stays_under_api_gateways_limit(routes: Any, seconds: float) -> None:
    import copy

    from llm_router.config import ConfigError, parse_routes

    raw = copy.deepcopy(dict(routes.raw))
    raw["api"]["stream_deadline_seconds"] = seconds
    with pytest.raises(ConfigError, match="stream_deadline_seconds"):
        parse_routes(raw)


def test_a_stream_broken_after_its_first_delta_counts_against_the_breaker(
    routes: Any, bedrock_client: Any, fresh_standin: Any
) -> None:
    import copy

    from llm_router.config import parse_routes
    from llm_router.edge.streaming import StreamingRouterHandler
    from llm_router.pipeline.factory import build_service

    raw = copy.deepcopy(dict(routes.raw))
    raw.setdefault("resilience", {})["breaker"] = {
        "failure_threshold": 1, "window_seconds": 60, "cooldown_seconds": 60,
    }
    config = parse_routes(raw, source_path=routes.source_path)
    service = build_service("llm-assisted", config, bedrock_client, budget=None)
    handler = StreamingRouterHandler(
        strategy="llm-assisted", service_factory=lambda: service, eager=True, tier_keys={}
    )
    fresh_standin.script(HAIKU, [TEN_WORDS])
    fresh_standin.inject_fault(HAIKU, "InternalServerException", count=1, after_chunks=2)

    def last_event(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        chunks = list(handler.stream({"body": json.dumps(body)}, None).body)
        name, data = chunks[-1].decode().split("\n")[:2]
        return name, json.loads(data.removeprefix("data: "))

    name, error = last_event({"question": WW2})
    assert name == "event: error" and error["code"] == "answer_interrupted"
    name, done = last_event({"question": WW2})  # Haiku's breaker is open: the next target answers
    assert name == "event: done" and done["answerer_LLM"] != HAIKU
    skipped = [t for t in done["routing"]["targets"] if t["result"] == "skipped"]
    assert [(t["model_id"], t["error_code"]) for t in skipped] == [(HAIKU, "CircuitOpen")]


class _RecordingGuard:
    """A budget guard that admits everything and records what the service reserves and
    settles (the real guard's arithmetic is tests/test_budget.py's)."""

    def __init__(self) -> None:
        self.reserved: list[float] = []
        self.settled: list[float | None] = []

    def reserve(self, tier: str, worst_case: float) -> Any:
        self.reserved.append(worst_case)
        return type("Reservation", (), {"level": "ok", "retry_after_seconds": 0.0})()

    def room_expected(self, tier: str) -> bool:
        return True  # the stream's begin() reserves beside its decision too

    def settle(self, reservation: Any, cost_usd: float | None) -> None:
        self.settled.append(cost_usd)


def test_a_stream_reserves_and_settles_the_budget_as_ask_does(
    routes: Any, bedrock_client: Any, fresh_standin: Any
) -> None:
    from llm_router.edge.streaming import StreamingRouterHandler
    from llm_router.pipeline.factory import build_service

    guard = _RecordingGuard()
    service = build_service("llm-assisted", routes, bedrock_client, budget=guard)
    handler = StreamingRouterHandler(
        strategy="llm-assisted", service_factory=lambda: service, eager=True, tier_keys={}
    )

    def last_event() -> dict[str, Any]:
        chunks = list(handler.stream({"body": json.dumps({"question": WW2})}, None).body)
        return json.loads(chunks[-1].decode().split("\n")[1].removeprefix("data: "))

    fresh_standin.script(HAIKU, [TEN_WORDS])
    done = last_event()
    assert len(guard.reserved) == 1 and guard.reserved[0] > 0
    assert guard.settled == [done["usage"]["cost_usd"]["total"]]  # the whole answer's cost
    fresh_standin.script(HAIKU, [TEN_WORDS])
    fresh_standin.inject_fault(HAIKU, "ThrottlingException", count=1, after_chunks=2)
    error = last_event()
    assert error["code"] == "answer_interrupted"
    # Failed: the reservation keeps only the classification's known cost.
    assert len(guard.reserved) == 2 and 0 < guard.settled[1] < guard.settled[0]


def test_a_cached_answer_streams_as_one_delta(
    routes: Any, bedrock_client: Any, fresh_standin: Any, semantic_index_dir: Path,
    dynamodb: Any, table: str,  # noqa: F811  (test_cache's fixtures)
) -> None:
    """With the response cache (llm_router.pipeline.cache), a hit is one delta, no model call."""
    from llm_router.edge.streaming import StreamingRouterHandler
    from llm_router.pipeline.cache.response_cache import ResponseCache
    from llm_router.pipeline.cache.store import CacheStore
    from llm_router.pipeline.factory import build_service

    config = config_with(routes)
    cache = ResponseCache(config, CacheStore(table, dynamodb))
    service = build_service("semantic", config, bedrock_client, semantic_index_dir,
                            STANDIN_SOURCE, budget=None, cache=cache)
    handler = StreamingRouterHandler(
        strategy="semantic", service_factory=lambda: service, eager=True, tier_keys={}
    )

    def events() -> list[tuple[str, dict[str, Any]]]:
        chunks = list(handler.stream({"body": json.dumps({"question": HISTORY_Q})}, None).body)
        pairs = [chunk.decode().split("\n")[:2] for chunk in chunks]
        return [(n.removeprefix("event: "), json.loads(d.removeprefix("data: "))) for n, d in pairs]

    fresh_standin.script(HAIKU, [TEN_WORDS])
    first = events()
    assert first[-1][0] == "done" and first[-1][1]["routing"]["cache"] == "miss"
    assert sum(name == "delta" for name, _ in first) == len(TEN_WORDS.split())
    streams = [c for c in fresh_standin.calls() if c["api"] == "converse-stream"]
    second = events()
    assert [name for name, _ in second] == ["routing", "delta", "done"]
    assert second[0][1]["cache"] == "hit" and second[1][1]["text"] == TEN_WORDS
    assert second[-1][1]["usage"]["cost_usd"]["answer"] == 0.0
    assert [c for c in fresh_standin.calls() if c["api"] == "converse-stream"] == streams
