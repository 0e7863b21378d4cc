"""Feedback tokens (llm_router.governance.provenance): the router signs each answer's token with
a secret read once per container from Secrets Manager (moto's, on loopback), and a failing secret
costs the feedback, never the answer."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import backends
import pytest
from apigw_events import LocalLambdaContext, proxy_event
from conftest import STANDIN_SOURCE
from hypothesis import given, settings
from hypothesis import strategies as st
from llm_router.config import ConfigError, RoutesConfig
from llm_router.edge.handler import RouterHandler
from llm_router.governance.provenance import (
    FEEDBACK_SECRET_ENV,
    FeedbackTokens,
    InvalidToken,
    SecretSource,
    SecretUnavailable,
    parse_feedback_settings,
)
from llm_router.pipeline.factory import build_service
from test_routers import WW2

KEY_ID = "key-id-1"


@pytest.fixture(scope="module")
def secrets_client() -> Iterator[Any]:
    """moto's Secrets Manager, as the local run starts it (one server with its DynamoDB)."""
    with contextlib.ExitStack() as stack:
        assert backends.local_dynamodb(stack) is not None
        _, url = backends.local_dynamodb(stack)
        from llm_router.models.bedrock import aws_client

        yield aws_client(
            "secretsmanager", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )


def counting(client: Any) -> list[str]:
    calls: list[str] = []
    client.meta.events.register(
        "before-call.secrets-manager.*", lambda model, **_: calls.append(model.name)
    )
    return calls


def test_the_secret_is_read_once_per_container(secrets_client: Any) -> None:
    arn = secrets_client.create_secret(Name="once", SecretString="s3cret")["ARN"]
    calls = counting(secrets_client)
    source = SecretSource(arn, secrets_client)
    assert calls == []  # nothing at construction (the init phase)
    source.prefetch()
    assert source.get() == b"s3cret" and source.get() == b"s3cret"
    source.prefetch()  # already there: no new read
    assert calls == ["GetSecretValue"]


def test_an_unreadable_secret_is_retried_on_the_next_use(secrets_client: Any) -> None:
    source = SecretSource("no-such-secret", secrets_client)
    with pytest.raises(SecretUnavailable, match="ResourceNotFoundException"):
        source.get()
    secrets_client.create_secret(Name="no-such-secret", SecretString="late")
    assert source.get() == b"late"


def test_tokens_bind_request_key_tier_and_expiry() -> None:
    now = [1_000.0]
    tokens = FeedbackTokens(lambda: b"k", ttl_seconds=60, clock=lambda: now[0])
    token = tokens.issue("req-1", KEY_ID, "pro")
    claims = tokens.claims_of(token, KEY_ID)
    assert (claims.request_id, claims.key_id, claims.tier, claims.expires_at) == (
        "req-1", KEY_ID, "pro", 1_060)
    with pytest.raises(InvalidToken, match="another API key"):
        tokens.claims_of(token, "key-id-2")
    payload, _, signature = token.partition(".")
    other = FeedbackTokens(lambda: b"k", 60).issue("req-2", KEY_ID, "pro").partition(".")[0]
    with pytest.raises(InvalidToken, match="not one this router issued"):
        tokens.claims_of(f"{other}.{signature}", KEY_ID)  # a payload swapped under a signature
    now[0] = 1_061
    with pytest.raises(InvalidToken, match="expired"):
        tokens.claims_of(token, KEY_ID)


def test_settings_have_defaults_and_name_bad_keys() -> None:
    settings = parse_feedback_settings({})
    assert (settings.retention_days, settings.token_ttl_hours) == (90, 168)
    with pytest.raises(ConfigError, match="feedback.token_ttl_hours"):
        parse_feedback_settings({"feedback": {"token_ttl_hours": 0}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_feedback_settings({"feedback": {"token_ttl": 1}})


def router(routes: RoutesConfig, client: Any, index: Path, tokens: Any) -> RouterHandler:
    return RouterHandler(
        service_factory=lambda: build_service("semantic", routes, client, index, STANDIN_SOURCE),
        eager=True,
        feedback_tokens=tokens,
    )


def test_every_answer_carries_a_token_for_its_request_and_key(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any
) -> None:
    tokens = FeedbackTokens(lambda: b"k", ttl_seconds=3600)
    handler = router(routes, bedrock_client, semantic_index_dir, tokens)
    event = proxy_event(json.dumps({"question": WW2}), api_key_id=KEY_ID)
    body = json.loads(handler(event, LocalLambdaContext())["body"])
    claims = tokens.claims_of(body["feedback_token"], KEY_ID)
    assert claims.request_id == body["request_id"] and claims.tier == routes.default_tier


def test_a_failing_secret_costs_the_token_not_the_answer(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any
) -> None:
    def broken() -> bytes:
        raise SecretUnavailable("AccessDeniedException")

    handler = router(routes, bedrock_client, semantic_index_dir, FeedbackTokens(broken, 60))
    response = handler(proxy_event(json.dumps({"question": WW2})), LocalLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200 and body["answer"]
    assert "feedback_token" not in body


def test_without_a_secret_configured_no_token_is_issued(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(FEEDBACK_SECRET_ENV, raising=False)
    handler = RouterHandler(
        service_factory=lambda: build_service(
            "semantic", routes, bedrock_client, semantic_index_dir, STANDIN_SOURCE),
        eager=True,
    )
    body = json.loads(
        handler(proxy_event(json.dumps({"question": WW2})), LocalLambdaContext())["body"]
    )
    assert "feedback_token" not in body and body["answer"]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_one_character_changed_is_refused(data: st.DataObject) -> None:
    """A token with any one character replaced (payload, dot or signature) never verifies."""
    tokens = FeedbackTokens(lambda: b"k", ttl_seconds=3600)
    token = tokens.issue("req-9", KEY_ID, "standard")
    index = data.draw(st.integers(0, len(token) - 1), label="index")
    replacement = data.draw(
        st.characters(codec="utf-8").filter(lambda ch: ch != token[index]), label="char"
    )
    with pytest.raises(InvalidToken):
        tokens.claims_of(token[:index] + replacement + token[index + 1:], KEY_ID)


def lambda_handler_reading(
    monkeypatch: pytest.MonkeyPatch, secrets_client: Any, arn: str, handler_class: Any,
    routes: RoutesConfig, client: Any, index: Path,
) -> Any:
    """An eager handler (Lambda's init phase) whose Secrets Manager client is moto's."""
    import llm_router.models.bedrock as bedrock

    monkeypatch.setenv(FEEDBACK_SECRET_ENV, arn)
    made = bedrock.aws_client

    def aws_client(service: str, **kwargs: Any) -> Any:
        return secrets_client if service == "secretsmanager" else made(service, **kwargs)

    monkeypatch.setattr(bedrock, "aws_client", aws_client)
    return handler_class(
        service_factory=lambda: build_service("semantic", routes, client, index, STANDIN_SOURCE),
        eager=True,
    )


@pytest.mark.parametrize("handler_class", ["router", "streaming"])
def test_lambda_init_starts_reading_the_secret_and_the_first_token_uses_it(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any,
    secrets_client: Any, monkeypatch: pytest.MonkeyPatch, handler_class: str,
) -> None:
    """Both functions sign tokens (the stream's in its done event), so both start the read at
    init; the handler's first answer uses it."""
    from llm_router.edge.streaming import StreamingRouterHandler

    arn = secrets_client.create_secret(
        Name=f"at-init-{handler_class}", SecretString="init-s3cret"
    )["ARN"]
    calls = counting(secrets_client)
    handler = lambda_handler_reading(
        monkeypatch, secrets_client, arn,
        StreamingRouterHandler if handler_class == "streaming" else RouterHandler,
        routes, bedrock_client, semantic_index_dir,
    )
    source = handler._secret
    assert source is not None and source.get() == b"init-s3cret"  # read before any request
    assert calls == ["GetSecretValue"]
    event = proxy_event(json.dumps({"question": WW2}), api_key_id=KEY_ID)
    body = json.loads(handler(event, LocalLambdaContext())["body"])
    verifier = FeedbackTokens(lambda: b"init-s3cret", ttl_seconds=3600)
    assert verifier.claims_of(body["feedback_token"], KEY_ID).request_id == body["request_id"]
    assert calls == ["GetSecretValue"]  # the request read nothing more


def test_a_failed_read_at_init_is_made_again_by_the_first_request(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any,
    secrets_client: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:not-yet"
    handler = lambda_handler_reading(
        monkeypatch, secrets_client, arn, RouterHandler, routes, bedrock_client,
        semantic_index_dir,
    )
    with pytest.raises(SecretUnavailable):  # the init's read failed (no such secret yet)
        handler._secret.get()
    secrets_client.create_secret(Name="not-yet", SecretString="later")
    monkeypatch.setattr(
        handler._secret, "secret_id", "not-yet"  # moto's ARN differs from the made-up one
    )
    event = proxy_event(json.dumps({"question": WW2}), api_key_id=KEY_ID)
    response = handler(event, LocalLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200 and body["answer"]
    verifier = FeedbackTokens(lambda: b"later", ttl_seconds=3600)
    assert verifier.claims_of(body["feedback_token"], KEY_ID).request_id == body["request_id"]
