"""POST /feedback (llm_router.edge.feedback) on moto's DynamoDB, through the local API, and
scripts/feedback.py list/export."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import backends
import evaluate
import feedback as feedback_cli
import pytest
from apigw_events import LocalLambdaContext, proxy_event
from conftest import local_dynamodb_table
from llm_router.config import ConfigError, RoutesConfig
from llm_router.edge.feedback import FeedbackHandler, metrics, parse_feedback_settings
from llm_router.governance.provenance import FeedbackTokens
from local_api import ApiSettings, LocalApiServer, LocalGateway
from local_api.gateway import LOCAL_API_KEY_ID

KEY = "feedback-test-key-0123456789"
TABLE = backends.LOCAL_FEEDBACK_TABLE


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with local_dynamodb_table(TABLE, "request_id") as client:
        yield client


@pytest.fixture
def empty_table(dynamodb: Any) -> Any:
    for item in dynamodb.scan(TableName=TABLE)["Items"]:
        dynamodb.delete_item(TableName=TABLE, Key={"request_id": item["request_id"]})
    return dynamodb


SECRET = b"feedback-test-secret"
KEY_ID = LOCAL_API_KEY_ID  # what the local API passes for KEY, as API Gateway passes its id
NOW = 1_800_000_000.0
TOKENS = FeedbackTokens(lambda: SECRET, ttl_seconds=3600, clock=lambda: NOW)


def tok(request_id: str, key_id: str = KEY_ID, tier: str = "standard") -> str:
    """The token the router would have issued with the answer to ``request_id``."""
    return TOKENS.issue(request_id, key_id, tier)


def call(
    handler: Any, body: Any, raw: bool = False, key_id: str = KEY_ID
) -> tuple[int, dict[str, Any]]:
    payload = body if raw else json.dumps(body)
    response = handler(
        proxy_event(payload, path="/feedback", api_key_id=key_id), LocalLambdaContext()
    )
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def handler(routes: RoutesConfig, empty_table: Any) -> FeedbackHandler:
    return FeedbackHandler(routes, TABLE, empty_table, strategy="semantic", tokens=TOKENS)


def stored(client: Any, request_id: str) -> dict[str, Any]:
    return client.get_item(TableName=TABLE, Key={"request_id": {"S": request_id}})["Item"]


def test_a_correction_is_stored_with_its_ttl(
    handler: FeedbackHandler, empty_table: Any, routes: RoutesConfig
) -> None:
    before = int(time.time())
    status, body = call(handler, {"feedback_token": tok("r-1"), "correct_category": "math",
                                  "question": "What is 2 + 2?", "helpful": False})
    assert (status, body) == (200, {"stored": True, "request_id": "r-1", "kind": "correction"})
    item = stored(empty_table, "r-1")
    assert item["correct_category"] == {"S": "math"} and item["helpful"] == {"BOOL": False}
    assert item["question"] == {"S": "What is 2 + 2?"} and item["strategy"] == {"S": "semantic"}
    days = parse_feedback_settings(routes.raw).retention_days
    assert before + days * 86_400 <= int(item["expires_at"]["N"]) <= time.time() + days * 86_400


def test_the_question_is_stored_only_when_sent(
    handler: FeedbackHandler, empty_table: Any
) -> None:
    assert call(handler, {"feedback_token": tok("r-2"), "helpful": True})[0] == 200
    item = stored(empty_table, "r-2")
    assert "question" not in item and item["kind"] == {"S": "helpful"}


@pytest.mark.parametrize("body,message", [
    ({"helpful": True}, '"feedback_token" is required'),
    ({"feedback_token": "t"}, 'say something: give "helpful"'),
    ({"feedback_token": tok("r"), "helpful": "yes"}, '"helpful" must be true or false'),
    ({"feedback_token": tok("r"), "correct_category": "cooking"},
     '"correct_category" must be one of'),
    ({"feedback_token": tok("r"), "helpful": True, "rating": 5}, "unknown field(s) rating"),
    ({"feedback_token": tok("r"), "comment": "x" * 2001}, '"comment" is 2001 characters'),
    ({"feedback_token": "t", "request_id": "r" * 129, "helpful": True},
     '"request_id" is 129 characters'),
    ({"feedback_token": "t", "helpful": True, "comment": "\ud800"}, "unpaired surrogate"),
    ({"feedback_token": "t", "helpful": True, "\udc00": 1}, "unpaired surrogate"),
    ({"feedback_token": tok("r"), "helpful": True, "question": "???"},
     "at least one letter or digit"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_feedback_is_a_400_naming_the_field(
    handler: FeedbackHandler, body: Any, message: str
) -> None:
    status, response = call(handler, body)
    assert status == 400 and response["code"] == "bad_request"
    assert message in response["error"]


@pytest.mark.parametrize("event", [None, "text", {"body": 7}, {"body": "{", "x": 1},
                                   {"body": '"\\ud800"'}, {"body": "e30=", "isBase64Encoded": "1"}])
def test_the_handler_never_throws(handler: FeedbackHandler, event: Any) -> None:
    response = handler(event, LocalLambdaContext())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["code"] == "bad_request"


def test_dynamodb_failure_is_a_503_with_retry_after(
    routes: RoutesConfig, dynamodb: Any
) -> None:
    missing = FeedbackHandler(routes, "no-such-table", dynamodb, tokens=TOKENS)
    body = json.dumps({"feedback_token": tok("r"), "helpful": True})
    response = missing(proxy_event(body, api_key_id=KEY_ID), LocalLambdaContext())
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"]
    assert json.loads(response["body"])["code"] == "feedback_unavailable"
    unconfigured = FeedbackHandler(routes, "", dynamodb, tokens=TOKENS)
    assert call(unconfigured, {"feedback_token": tok("r"), "helpful": True})[0] == 503
    no_secret = FeedbackHandler(routes, TABLE, dynamodb)  # FEEDBACK_SECRET_ARN unset
    assert call(no_secret, {"feedback_token": tok("r"), "helpful": True})[0] == 503


def test_a_metric_counts_feedback_by_kind(
    handler: FeedbackHandler, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics.clear_metrics()  # with metrics disabled (the suite's default) nothing was flushed
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    assert call(handler, {"feedback_token": tok("r-3"), "helpful": False})[0] == 200
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines()
           if line.startswith("{") and "_aws" in line]
    assert len(emf) == 1  # one flush per invocation
    assert emf[0]["Feedback"] == [1.0] and emf[0]["Feedback_not_helpful"] == [1.0]


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="feedback.retention_days"):
        parse_feedback_settings({"feedback": {"retention_days": 0}})
    assert parse_feedback_settings({}).retention_days == 90


# --- through the local API, then out of scripts/feedback.py --------------------------------------


def ask_stub(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {}, "body": "{}"}


@pytest.fixture
def local_api(routes: RoutesConfig, handler: FeedbackHandler) -> Iterator[str]:
    gateway = LocalGateway(ApiSettings.from_config(routes, KEY), {"semantic": ask_stub},
                           feedback_handler=handler)
    with LocalApiServer(gateway, request_log=lambda *_: None) as server:
        yield server.url


def post(url: str, body: Any, key: str = KEY) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "x-api-key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_round_trip_through_the_local_api_to_an_evaluation_dataset(
    local_api: str, empty_table: Any, routes: RoutesConfig, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"{local_api}/semantic/feedback"
    sent = {
        "a-1": {"correct_category": "math", "question": "What is 12 squared?"},
        "a-2": {"correct_category": "out_of_scope", "question": "Best pizza in Naples?",
                "helpful": False},
        "a-3": {"correct_category": "history"},  # no question: not exportable
        "a-4": {"helpful": True, "comment": "clear answer"},
    }
    for request_id, body in sent.items():
        kind = "correction" if "correct_category" in body else "helpful"
        assert post(url, {"feedback_token": tok(request_id), **body}) == (
            200, {"stored": True, "request_id": request_id, "kind": kind})
    # A row from before feedback tokens (or written by anyone but the function): not exported.
    empty_table.put_item(TableName=TABLE, Item={
        "request_id": {"S": "forged-1"}, "kind": {"S": "correction"},
        "correct_category": {"S": "math"},
        "question": {"S": "What's a good recipe for pasta carbonara?"}})
    assert post(url, {"feedback_token": tok("x"), "helpful": True}, key="wrong")[0] == 403
    assert post(url, {"feedback_token": tok("x"), "correct_category": "art"}) == (
        400, {"message": "Invalid request body"})
    output = tmp_path / "corrections.jsonl"
    argv = ["export", "--table", TABLE, "--output", str(output)]
    assert feedback_cli.main(argv, client=empty_table) == 0
    rows = evaluate.read_dataset(output, routes)  # a valid evaluation dataset
    assert sorted((r["question"], r["label"]) for r in rows) == [
        ("Best pizza in Naples?", "other"), ("What is 12 squared?", "math")]
    summary = capsys.readouterr().err
    assert "unknown -> math: 2" in summary
    assert "2 corrections carry their question and provenance" in summary
    assert "1 without provenance dropped" in summary


def test_summary_pairs_and_helpful_rate_by_answer_target(
    handler: FeedbackHandler, empty_table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    haiku, sonnet = "anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-5-sonnet"
    for n, (helpful, answerer) in enumerate([(True, haiku), (False, haiku), (True, haiku),
                                             (True, sonnet)]):
        assert call(handler, {"feedback_token": tok(f"h-{n}"), "helpful": helpful,
                              "answerer_LLM": answerer})[0] == 200
    assert call(handler, {"feedback_token": tok("c-1"), "correct_category": "math",
                          "question_classification": "history"})[0] == 200
    assert feedback_cli.main(["list", "--table", TABLE, "--format", "json"],
                             client=empty_table) == 0
    report = json.loads(capsys.readouterr().out)
    summary = report["summary"]
    assert summary["helpful_by_answerer"][haiku] == {"helpful_rate": 0.6667, "n": 3}
    assert summary["helpful_by_answerer"][sonnet] == {"helpful_rate": 1.0, "n": 1}
    assert summary["corrections"] == [{"routed": "history", "correct": "math", "count": 1}]
    assert summary["by_kind"] == {"helpful": 3, "not_helpful": 1, "correction": 1}
    assert len(report["items"]) == 5
    assert feedback_cli.main(["list", "--table", TABLE], client=empty_table) == 0
    text = capsys.readouterr().out
    assert "h-1" in text and "history -> math: 1" in text


def test_unreadable_table_is_one_line(dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert feedback_cli.main(["list", "--table", "nope"], client=dynamodb) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read table nope: ResourceNotFoundException")


# --- provenance: feedback only for real answers, from the caller that got them -------------------


def test_an_item_records_the_callers_key_id_tier_and_provenance(
    handler: FeedbackHandler, empty_table: Any
) -> None:
    token = tok("p-1", key_id="key-pro", tier="pro")
    assert call(handler, {"feedback_token": token, "helpful": True}, key_id="key-pro")[0] == 200
    item = stored(empty_table, "p-1")
    assert item["api_key_id"] == {"S": "key-pro"} and item["tier"] == {"S": "pro"}
    assert item["provenance"] == {"S": "feedback-token"}


@pytest.mark.parametrize("token,key_id,reason", [
    ("forged", KEY_ID, "malformed"),
    (tok("p-2") + "x", KEY_ID, "not one this router issued"),
    (FeedbackTokens(lambda: b"another secret", 3600).issue("p-2", KEY_ID, "standard"), KEY_ID,
     "not one this router issued"),
    (FeedbackTokens(lambda: SECRET, 3600, clock=lambda: NOW - 3601).issue(
        "p-2", KEY_ID, "standard"), KEY_ID, "expired"),
    (tok("p-2"), "someone-elses-key", "issued to another API key"),
])
def test_forged_expired_or_borrowed_tokens_are_refused_and_not_stored(
    handler: FeedbackHandler, empty_table: Any, token: str, key_id: str, reason: str
) -> None:
    status, body = call(
        handler, {"feedback_token": token, "correct_category": "math",
                  "question": "What's a good recipe for pasta carbonara?"}, key_id=key_id)
    assert status == 403 and body["code"] == "invalid_feedback_token"
    assert reason in body["error"]
    assert empty_table.scan(TableName=TABLE)["Count"] == 0


def test_a_request_id_that_is_not_the_tokens_is_refused(handler: FeedbackHandler) -> None:
    body = {"feedback_token": tok("p-3"), "request_id": "p-4", "helpful": True}
    assert call(handler, body)[1]["code"] == "invalid_feedback_token"
    assert call(handler, {**body, "request_id": "p-3"})[0] == 200


def test_one_caller_cannot_overwrite_anothers_feedback(
    handler: FeedbackHandler, empty_table: Any
) -> None:
    assert call(handler, {"feedback_token": tok("p-5"), "helpful": True})[0] == 200
    assert call(handler, {"feedback_token": tok("p-5"), "helpful": False})[0] == 200  # own: ok
    other = tok("p-5", key_id="key-b")  # even with a valid token for that request id
    status, body = call(handler, {"feedback_token": other, "helpful": True}, key_id="key-b")
    assert (status, body["code"]) == (409, "feedback_conflict")
    item = stored(empty_table, "p-5")
    assert item["api_key_id"] == {"S": KEY_ID} and item["helpful"] == {"BOOL": False}


def test_an_unreadable_secret_is_a_503(routes: RoutesConfig, empty_table: Any) -> None:
    from llm_router.governance.provenance import SecretUnavailable

    def broken() -> bytes:
        raise SecretUnavailable("AccessDeniedException")

    handler = FeedbackHandler(
        routes, TABLE, empty_table, tokens=FeedbackTokens(broken, 3600, clock=lambda: NOW)
    )
    status, body = call(handler, {"feedback_token": tok("p-6"), "helpful": True})
    assert status == 503 and body["code"] == "feedback_unavailable"


def test_the_feedback_function_honours_the_cors_origin_list(
    routes: RoutesConfig, empty_table: Any
) -> None:
    raw = json.loads(json.dumps(dict(routes.raw)))
    raw.setdefault("deployment", {})["cors_allowed_origins"] = ["https://app.example"]
    from llm_router.config import parse_routes

    config = parse_routes(raw)
    handler = FeedbackHandler(config, TABLE, empty_table, tokens=TOKENS)
    body = json.dumps({"feedback_token": tok("p-7"), "helpful": True})
    for origin, allowed in (("https://app.example", "https://app.example"),
                            ("https://evil.example", None)):
        event = proxy_event(body, api_key_id=KEY_ID, headers={"Origin": origin})
        headers = handler(event, LocalLambdaContext())["headers"]
        assert headers.get("Access-Control-Allow-Origin") == allowed
    odd = {**proxy_event(body, api_key_id=KEY_ID), "headers": ["not", "a", "mapping"]}
    response = handler(odd, LocalLambdaContext())
    assert response["statusCode"] == 200
    assert "Access-Control-Allow-Origin" not in response["headers"]
