"""scripts/ask.py: resolving a stack's URL and key (moto), and asking the local API end to end."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ask
import boto3
import pytest
from conftest import HAIKU, SONNET, STANDIN_SOURCE
from llm_router.config import RoutesConfig
from llm_router.pipeline.strategies import STRATEGIES
from local_api import ApiSettings, LocalApiServer, LocalGateway
from local_api.routers import mount_routers
from moto import mock_aws

REGION = "us-east-1"
WW2 = "What year did World War II end?"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
KEY = "local-test-key-0123456789"  # API Gateway key values have at least 20 characters
# moto has no model for this resource type; an outputs-only template is all these tests need.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS")


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


# The stacks hold one placeholder resource; moto creates it but warns that it does not model it.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS")


def create_stack(session: boto3.Session, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


def create_key(session: boto3.Session, value: str | None = None) -> str:
    extra = {"value": value} if value else {}
    return session.client("apigateway").create_api_key(name="k", enabled=True, **extra)["id"]


@pytest.fixture(scope="module")
def local_api(
    tmp_path_factory: pytest.TempPathFactory, standin: Any
) -> Iterator[str]:
    """The local API in-process, serving the real routers against the stand-in."""
    from llm_router.config import load_routes
    from llm_router.decision.embeddings import TitanEmbedder
    from llm_router.decision.semantic_index import build_index
    from llm_router.models.bedrock import runtime_client

    routes = load_routes()
    client = runtime_client(REGION, standin.url, credentials=("testing", "testing"))
    index_dir = tmp_path_factory.mktemp("ask-index")
    build_index(routes, TitanEmbedder(client, routes.embedding), index_dir, STANDIN_SOURCE)
    mounted = mount_routers(routes, client, index_dir, STANDIN_SOURCE)
    gateway = LocalGateway(
        ApiSettings.from_config(routes, KEY), {m.strategy.name: m.handler for m in mounted}
    )
    with LocalApiServer(gateway, request_log=lambda *_: None) as server:
        yield server.url


# --- URL and stack names -------------------------------------------------------------------------


@pytest.mark.parametrize("url,expected", [
    ("https://a.execute-api.us-east-1.amazonaws.com/prod/ask",
     "https://a.execute-api.us-east-1.amazonaws.com/prod/ask"),
    ("https://a.execute-api.us-east-1.amazonaws.com/prod/",
     "https://a.execute-api.us-east-1.amazonaws.com/prod/ask"),
    ("https://a.execute-api.us-east-1.amazonaws.com/prod",
     "https://a.execute-api.us-east-1.amazonaws.com/prod/ask"),
    ("http://127.0.0.1:3000/semantic", "http://127.0.0.1:3000/semantic/ask"),
    ("http://127.0.0.1:3000/semantic/ask/", "http://127.0.0.1:3000/semantic/ask"),
])
def test_ask_url_appends_ask_once(url: str, expected: str) -> None:
    assert ask.ask_url(url) == expected


def test_router_names_stand_for_their_stacks() -> None:
    for name, strategy in STRATEGIES.items():
        assert ask.stack_name_for(name) == strategy.stack_name
    assert ask.stack_name_for("SemanticRouterStack") == "SemanticRouterStack"


# --- resolution from CloudFormation and API Gateway (moto) ---------------------------------------


def test_resolves_url_and_key_value_from_the_stack(aws: boto3.Session) -> None:
    key_id = create_key(aws, KEY)
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/ask"
    create_stack(aws, "SemanticRouterStack", {
        ask.OUTPUT_API_URL: url, ask.OUTPUT_API_ID: "abc123", ask.OUTPUT_API_KEY_ID: key_id,
    })
    assert ask.resolve_stack(aws, "SemanticRouterStack") == ask.Endpoint(url, KEY)


def test_a_stage_url_output_gets_ask_appended(aws: boto3.Session) -> None:
    key_id = create_key(aws)
    create_stack(aws, "LlmAssistedRouterStack", {
        ask.OUTPUT_API_URL: "https://abc.execute-api.us-east-1.amazonaws.com/prod/",
        ask.OUTPUT_API_KEY_ID: key_id,
    })
    endpoint = ask.resolve_stack(aws, "LlmAssistedRouterStack")
    assert endpoint.url == "https://abc.execute-api.us-east-1.amazonaws.com/prod/ask"
    assert endpoint.api_key


def test_missing_stack_is_a_clear_error(aws: boto3.Session) -> None:
    with pytest.raises(ask.AskError, match="stack SemanticRouterStack not found in us-east-1"):
        ask.resolve_stack(aws, "SemanticRouterStack")


def test_missing_outputs_are_named(aws: boto3.Session) -> None:
    create_stack(aws, "SemanticRouterStack", {ask.OUTPUT_API_URL: "https://x/prod/ask"})
    with pytest.raises(ask.AskError, match="has no output ApiKeyId"):
        ask.resolve_stack(aws, "SemanticRouterStack")


def test_unknown_api_key_is_a_clear_error(aws: boto3.Session) -> None:
    create_stack(aws, "SemanticRouterStack", {
        ask.OUTPUT_API_URL: "https://x/prod/ask", ask.OUTPUT_API_KEY_ID: "nosuchkey",
    })
    with pytest.raises(ask.AskError, match="cannot read API key nosuchkey"):
        ask.resolve_stack(aws, "SemanticRouterStack")


def test_no_credentials_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert ask.main(["--stack", "semantic", "--region", REGION, WW2]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS credentials found")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_profile_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert ask.main(["--stack", "semantic", "--profile", "nope", WW2]) == 1
    assert "nope" in capsys.readouterr().err


# --- asking (the local API, end to end) ----------------------------------------------------------


def test_prints_answer_routing_and_timings(
    local_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ask.main(["--url", f"{local_api}/semantic", "--api-key", KEY, WW2]) == 0
    out = capsys.readouterr().out
    answer, _, details = out.partition("\n\nRouting: ")
    assert answer.strip()
    assert details.startswith(f"history -> {HAIKU} (semantic router with {TITAN_EMBED})")
    assert "Time: classification " in details and " s, total " in details


def test_json_prints_the_raw_body(local_api: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--url", f"{local_api}/llm-assisted/ask", "--api-key", KEY, "--json",
            "Solve the quadratic equation: 2x^2 - 5x + 3 = 0"]
    assert ask.main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["question_classification"] == "math"
    assert body["answerer_LLM"] == SONNET


def test_category_routes_statically(local_api: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--url", f"{local_api}/semantic", "--api-key", KEY, "--category", "math", WW2]
    assert ask.main(argv) == 0
    out = capsys.readouterr().out
    assert f"math -> {SONNET} (named by the caller, checked in scope by the semantic router" in out


def test_stack_resolution_then_ask_end_to_end(
    aws: boto3.Session, local_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--stack: the URL from the stack outputs, the key value from API Gateway, then the POST."""
    key_id = create_key(aws, KEY)
    create_stack(aws, "HybridRouterStack", {
        ask.OUTPUT_API_URL: f"{local_api}/hybrid/ask", ask.OUTPUT_API_KEY_ID: key_id,
    })
    assert ask.main(["--stack", "hybrid", "--region", REGION, WW2]) == 0
    assert f"history -> {HAIKU} (hybrid router" in capsys.readouterr().out


def test_wrong_key_shows_status_and_message(
    local_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", f"{local_api}/semantic", "--api-key", "wrong", WW2]
    assert ask.main([*args, "--no-stream"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: HTTP 403 from {local_api}/semantic/ask: Forbidden\n"
    assert ask.main(args) == 1  # streamed: the same refusal, before any event
    err = capsys.readouterr().err
    assert err == f"error: HTTP 403 from {local_api}/semantic/ask/stream: Forbidden\n"


def test_bedrock_failure_shows_error_and_reason(
    local_api: str, fresh_standin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_standin.inject_fault(HAIKU, "ValidationException")
    args = ["--url", f"{local_api}/semantic", "--api-key", KEY, WW2]
    assert ask.main([*args, "--no-stream"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: HTTP 502 from {local_api}/semantic/ask: model request failed (model_error; "
        f"answer; {HAIKU}; ValidationException; "
    )
    assert "request id " in err
    assert err.count("\n") == 1
    assert ask.main(args) == 1  # streamed: routing was sent, then the error event
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: {local_api}/semantic/ask/stream ended with an error: model request failed "
        f"(model_error; answer; {HAIKU}; ValidationException; "
    )
    assert "request id " in err and err.count("\n") == 1


def test_answer_shows_cost_and_fallback(
    local_api: str, fresh_standin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_standin.inject_fault(HAIKU, "AccessDeniedException")
    assert ask.main(["--url", f"{local_api}/semantic", "--api-key", KEY, WW2]) == 0
    out = capsys.readouterr().out
    assert f"Answered by a fallback target after: {HAIKU} AccessDeniedException" in out
    assert re.search(r"Cost: \$0\.\d{8} = amazon\.titan-embed-text-v2:0 \d+\+0 tokens", out)


def test_question_too_long_is_a_400(
    local_api: str, routes: RoutesConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    question = "x" * (routes.api.max_question_chars + 1)
    assert ask.main(["--url", f"{local_api}/semantic", "--api-key", KEY, question]) == 1
    assert capsys.readouterr().err.endswith(": Invalid request body\n")


def test_unreachable_url_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert ask.main(["--url", f"http://127.0.0.1:{port}/semantic", "--api-key", KEY, WW2]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot reach http://127.0.0.1:{port}/")


def test_url_needs_an_api_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ask.main(["--url", "http://127.0.0.1:3000/semantic", WW2])
    assert exit_info.value.code == 2
    assert "--url needs --api-key" in capsys.readouterr().err


# --- formatting ----------------------------------------------------------------------------------


def test_declined_and_fallback_are_spelled_out() -> None:
    declined = ask.format_answer({
        "answer": "I can only help with history and math.",
        "question_classification": "out_of_scope",
        "embedding_LLM": TITAN_EMBED,
        "answerer_LLM": None,
        "routing": {"strategy": "semantic", "declined": True},
    })
    assert "Routing: out_of_scope: declined, no answer model called" in declined
    fallback = ask.format_answer({
        "answer": "x = 1",
        "question_classification": "math",
        "classifier_LLM": "amazon.titan-text-express-v1",
        "answerer_LLM": SONNET,
        "routing": {"strategy": "llm-assisted", "fallback_to_default": True,
                    "fallback_reason": "the classifier said 'cooking'"},
    })
    assert "Fallback: the classifier said 'cooking'" in fallback
