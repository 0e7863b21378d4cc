"""X-Ray subsegments as the X-Ray SDK sent them, without the SDK: each stage with its Bedrock calls
nested, the call's service, operation, region, request id and status, a service error's flags and
exception, the trace header naming the call as parent, and nothing for an unsampled invocation.
The daemon is a UDP socket on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HAIKU, TITAN_EMBED, invoke, lambda_env, run_fresh
from llm_router.edge.handler import RouterHandler
from llm_router.models.bedrock import runtime_client
from llm_router.observability import tracing

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A UDP 'X-Ray daemon' on loopback, and a sampled Lambda invocation pointed at it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "router")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent={PARENT};Sampled=1")
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{sock.getsockname()[1]}")
    tracing.reset()
    yield sock
    tracing.reset()
    sock.close()


def received(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    documents = []
    for _ in range(count):
        header, body = sock.recv(65536).split(b"\n", 1)
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))
    return documents


def test_a_sampled_request_sends_each_stage_with_its_bedrock_call_nested(
    daemon: socket.socket, monkeypatch: pytest.MonkeyPatch, fresh_standin: Any
) -> None:
    monkeypatch.setenv("ROUTER_STRATEGY", "llm-assisted")
    monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fresh_standin.url)
    status, body = invoke(RouterHandler(eager=True), {"question": "What year did WW2 end?"})
    assert status == 200
    classification, answer = received(daemon, 2)
    for stage, name in ((classification, "## classification"), (answer, "## answer")):
        assert stage["name"] == name
        assert stage["trace_id"] == ROOT and stage["parent_id"] == PARENT
        assert stage["type"] == "subsegment" and stage["namespace"] == "local"
        assert stage["in_progress"] is False and stage["start_time"] <= stage["end_time"]
        (call,) = stage["subsegments"]
        assert call["name"] == "bedrock-runtime" and call["namespace"] == "aws"
        assert call["parent_id"] == stage["id"] and call["trace_id"] == ROOT
        assert call["aws"]["region"] == "us-east-1" and call["aws"]["request_id"]
        assert call["http"] == {"response": {"status": 200}}
        assert not {"error", "fault", "throttle"} & set(call)
    assert classification["annotations"] == {"category": "history"}
    assert classification["subsegments"][0]["aws"]["operation"] == "InvokeModel"
    assert answer["annotations"] == {"answer_target": body["answerer_LLM"]}
    assert answer["subsegments"][0]["aws"]["operation"] == "Converse"


def test_a_service_error_is_flagged_and_recorded_as_remote(
    daemon: socket.socket, fresh_standin: Any
) -> None:
    client = runtime_client("us-east-1", fresh_standin.url, max_attempts=1, credentials=("t", "t"))
    fresh_standin.inject_fault(HAIKU, "ThrottlingException")
    with pytest.raises(Exception, match="Throttling"), tracing.subsegment("answer"):
        tracing.traced_call(
            client, "converse",
            {"modelId": HAIKU, "messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        )
    (stage,) = received(daemon, 1)
    assert stage["fault"] is True  # the block ended with an exception
    assert stage["cause"]["exceptions"][0]["remote"] is False
    (call,) = stage["subsegments"]
    assert call["http"] == {"response": {"status": 429}}
    assert call["throttle"] is True and call["error"] is True and call["fault"] is True
    (exception,) = call["cause"]["exceptions"]
    assert exception["type"] == "ThrottlingException" and exception["remote"] is True


def test_bedrock_gets_the_call_subsegment_as_the_trace_parent(
    daemon: socket.socket, fresh_standin: Any
) -> None:
    client = runtime_client("us-east-1", fresh_standin.url, max_attempts=1, credentials=("t", "t"))
    sent: list[bytes] = []
    client.meta.events.register(
        "before-send", lambda request, **_: sent.append(request.headers["X-Amzn-Trace-Id"])
    )
    body = {"inputText": "hello", "dimensions": 256, "normalize": True}
    tracing.traced_call(
        client, "invoke_model",
        {"modelId": TITAN_EMBED, "body": json.dumps(body), "contentType": "application/json"},
    )
    (call,) = received(daemon, 1)
    assert call["name"] == "bedrock-runtime" and call["parent_id"] == PARENT
    assert sent == [f"Root={ROOT};Parent={call['id']};Sampled=1".encode()]


@pytest.mark.parametrize("header", [f"Root={ROOT};Parent={PARENT};Sampled=0", ""])
def test_an_unsampled_or_untraced_invocation_sends_nothing(
    daemon: socket.socket, monkeypatch: pytest.MonkeyPatch, header: str
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    with tracing.subsegment("classification") as span:
        span.annotate("category", "history")
        assert not span.recording
    daemon.settimeout(0.3)
    with pytest.raises(TimeoutError):
        daemon.recv(65536)


def test_annotations_the_sdk_would_drop_are_dropped(daemon: socket.socket) -> None:
    with tracing.subsegment("answer") as span:
        span.annotate("answer_target", "haiku")
        span.annotate("not valid", "x")
        span.annotate("listed", ["x"])  # type: ignore[arg-type]
        span.metadata("attempts", 2)
    (stage,) = received(daemon, 1)
    assert stage["annotations"] == {"answer_target": "haiku"}
    assert stage["metadata"] == {"default": {"attempts": 2}}


def test_the_daemon_address_forms() -> None:
    assert tracing.daemon_address("169.254.79.129:2000") == ("169.254.79.129", 2000)
    assert tracing.daemon_address("tcp:10.0.0.1:2000 udp:10.0.0.2:2001") == ("10.0.0.2", 2001)
    assert tracing.daemon_address("") == tracing.DEFAULT_DAEMON_ADDRESS


def test_the_function_imports_neither_boto3_nor_the_xray_sdk(tmp_path: Path) -> None:
    """What a sampled cold start loads: botocore's client, not boto3 (its resource layer and
    s3transfer), and no X-Ray SDK, wrapt or asyncio for the subsegments."""
    code = (
        "import sys\n"
        "from llm_router.models.bedrock import runtime_client\n"
        "import llm_router.edge.handler\n"
        "from llm_router.observability import tracing\n"
        "client = runtime_client('us-east-1', 'http://127.0.0.1:9', credentials=('t', 't'))\n"
        "with tracing.subsegment('classification') as span:\n"
        "    assert span.recording\n"
        "heavy = ('boto3', 's3transfer', 'aws_xray_sdk', 'wrapt', 'asyncio')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not loaded, loaded\n"
    )
    run_fresh(
        code,
        **lambda_env(
            tmp_path,
            _X_AMZN_TRACE_ID=f"Root={ROOT};Parent={PARENT};Sampled=1",
            AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:9",
            ROUTER_STRATEGY="llm-assisted",
        ),
    )
