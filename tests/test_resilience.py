"""Keep answering when models fail: every fault class at every stage, through the shipped handler,
real boto3 clients and the Bedrock stand-in over HTTP on loopback."""

from __future__ import annotations

import copy
import io
import json
import logging
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from apigw_events import LocalLambdaContext, proxy_event
from conftest import (
    HAIKU,
    SONNET,
    SONNET_V2,
    STANDIN_SOURCE,
    TITAN_EMBED,
    TITAN_TEXT,
    invoke,
    two_tiers,
)
from llm_router.config import RoutesConfig, parse_routes
from llm_router.config.settings import BreakerSettings
from llm_router.config.targets import AnswerTarget, TargetPlan
from llm_router.edge.handler import RouterHandler
from llm_router.edge.handler import logger as handler_logger
from llm_router.models.breaker import BreakerBoard
from llm_router.pipeline.factory import build_service
from test_routers import QUADRATIC, WW2

HAIKU_PROFILE = "us.anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_35 = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET_PROFILE = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
HISTORY_TARGETS = (HAIKU, HAIKU_PROFILE, HAIKU_35)
MATH_TARGETS = (SONNET, SONNET_PROFILE, SONNET_V2)
TRANSIENT = (
    "ThrottlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
    "ModelNotReadyException",
)
UNAVAILABLE = ("AccessDeniedException", "ResourceNotFoundException")
ACCOUNT_ID = "123456789012"
ROLE_ARN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/RouterRole/fn"
DENIED = (
    f"User: {ROLE_ARN} is not authorized to perform: bedrock:InvokeModel on resource: "
    f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:foundation-model/x"
)


def variant(routes: RoutesConfig, **sections: dict[str, Any]) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_routes(raw)


@pytest.fixture
def make_handler(bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any) -> Any:
    def make(strategy: str, config: RoutesConfig, **kwargs: Any) -> RouterHandler:
        return RouterHandler(
            service_factory=lambda: build_service(
                strategy, config, bedrock_client, semantic_index_dir, STANDIN_SOURCE
            ),
            eager=True,
            **kwargs,
        )

    return make


def answer_calls(standin: Any) -> list[str]:
    return [c["model_id"] for c in standin.calls() if c["api"] == "converse"]


# -- classification and embedding failures degrade, they do not fail --


@pytest.mark.parametrize("error", TRANSIENT + UNAVAILABLE + ("ValidationException",))
@pytest.mark.parametrize("strategy,model,stage", [
    ("llm-assisted", TITAN_TEXT, "classification"),
    ("semantic", TITAN_EMBED, "embedding"),
])
def test_failed_classifier_uses_the_default_category(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any,
    strategy: str, model: str, stage: str, error: str,
) -> None:
    fresh_standin.inject_fault(model, error)
    status, body = invoke(make_handler(strategy, routes), {"question": WW2})
    assert status == 200
    assert body["question_classification"] == routes.default_category
    # Not the default category's premium target: a classifier outage is capped at the
    # degraded target (llm_router.decision.cost_cap), the cheapest by default.
    assert body["answerer_LLM"] == HAIKU
    assert body["routing"]["cost_cap"]["reason"] == "classification unavailable"
    assert body["routing"]["degraded"] == f"{stage} failed: {error}"
    assert body["routing"]["decided_by"] == "default"
    failed = [t for t in body["routing"]["targets"] if t["result"] == "failed"]
    assert failed and all(t["model_id"] == model and t["error_code"] == error for t in failed)


@pytest.mark.parametrize("error", ("ThrottlingException", "AccessDeniedException"))
def test_hybrid_uses_the_classifier_llm_when_embeddings_fail(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any, error: str
) -> None:
    fresh_standin.inject_fault(TITAN_EMBED, error)
    status, body = invoke(make_handler("hybrid", routes), {"question": WW2})
    assert status == 200
    assert body["question_classification"] == "history"
    assert body["answerer_LLM"] == HAIKU
    assert body["routing"]["decided_by"] == "llm"
    assert body["routing"]["degraded"] == f"embedding failed: {error}"


def test_hybrid_keeps_its_semantic_decision_when_the_llm_fails(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    # Neither the k-NN vote nor the learned head is ever this sure: every question escalates.
    always_escalate = variant(routes, hybrid={"min_similarity": 1.01, "min_probability": 1.0})
    fresh_standin.inject_fault(TITAN_TEXT, "ServiceUnavailableException")
    status, body = invoke(make_handler("hybrid", always_escalate), {"question": WW2})
    assert status == 200
    assert body["question_classification"] == "history"
    assert body["routing"]["decided_by"] == "semantic"
    assert body["routing"]["escalated"] is True
    assert body["routing"]["degraded"] == "classification failed: ServiceUnavailableException"


def test_hybrid_with_both_halves_down_uses_the_default(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    fresh_standin.inject_fault(TITAN_EMBED, "ThrottlingException")
    fresh_standin.inject_fault(TITAN_TEXT, "ThrottlingException")
    status, body = invoke(make_handler("hybrid", routes), {"question": WW2})
    assert status == 200
    assert body["question_classification"] == routes.default_category
    assert body["routing"]["degraded"]


# -- answer targets fail over --


@pytest.mark.parametrize("error", TRANSIENT + UNAVAILABLE)
@pytest.mark.parametrize("strategy", ["llm-assisted", "semantic"])
def test_failed_answer_target_fails_over_to_the_next(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any, strategy: str, error: str
) -> None:
    fresh_standin.inject_fault(HAIKU, error)
    status, body = invoke(make_handler(strategy, routes), {"question": WW2})
    assert status == 200
    assert body["answerer_LLM"] == HAIKU_PROFILE
    assert body["routing"]["fallback_used"] is True
    assert body["routing"]["answer_target"] == HAIKU_PROFILE
    attempts = [(t["model_id"], t["result"]) for t in body["routing"]["targets"]
                if t["stage"] == "answer"]
    retries = routes.resilience.attempts_per_target if error in TRANSIENT else 1
    assert attempts == [(HAIKU, "failed")] * retries + [(HAIKU_PROFILE, "ok")]


def test_transient_error_is_retried_on_the_same_target_first(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    fresh_standin.inject_fault(HAIKU, "ModelTimeoutException", count=1)
    status, body = invoke(make_handler("semantic", routes), {"question": WW2})
    assert status == 200
    assert body["answerer_LLM"] == HAIKU
    assert body["routing"]["fallback_used"] is False
    assert answer_calls(fresh_standin) == [HAIKU, HAIKU]


def test_our_own_invalid_request_does_not_fail_over(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    fresh_standin.inject_fault(HAIKU, "ValidationException")
    status, body = invoke(make_handler("semantic", routes), {"question": WW2})
    assert status == 502
    assert body["code"] == "model_error"
    assert body["stage"] == "answer" and body["model_id"] == HAIKU
    assert body["bedrock_error"] == "ValidationException"
    assert answer_calls(fresh_standin) == [HAIKU]


def test_access_denied_on_every_target_is_a_permanent_502_without_retry_after(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    """Not 503 + Retry-After: 1: no retry helps until the operator grants model access."""
    for model in MATH_TARGETS:
        fresh_standin.inject_fault(model, "AccessDeniedException", message=DENIED)
    response = make_handler("semantic", routes)(
        proxy_event(json.dumps({"question": QUADRATIC})), LocalLambdaContext()
    )
    body = json.loads(response["body"])
    assert (response["statusCode"], body["code"]) == (502, "models_access_denied")
    assert "Retry-After" not in response["headers"]
    tried = {t["model_id"]: t["error_code"] for t in body["attempts"] if t["stage"] == "answer"}
    assert tried == dict.fromkeys(MATH_TARGETS, "AccessDeniedException")
    assert ACCOUNT_ID not in response["body"] and "arn:" not in response["body"]


@pytest.mark.parametrize("error", ("ThrottlingException",))
def test_every_target_down_is_a_503_with_retry_after_and_no_raw_message(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any, error: str
) -> None:
    for model in MATH_TARGETS:
        fresh_standin.inject_fault(model, error, message=DENIED)
    response = make_handler("semantic", routes)(
        proxy_event(json.dumps({"question": QUADRATIC})), LocalLambdaContext()
    )
    body = json.loads(response["body"])
    assert response["statusCode"] == 503
    assert int(response["headers"]["Retry-After"]) >= 1
    assert body["code"] == "models_unavailable"
    assert body["stage"] == "answer"
    tried = {t["model_id"]: t["error_code"] for t in body["attempts"] if t["stage"] == "answer"}
    assert tried == dict.fromkeys(MATH_TARGETS, error)
    assert ACCOUNT_ID not in response["body"] and "arn:" not in response["body"]
    assert "not authorized" not in response["body"]


def test_access_denied_details_are_logged_under_the_request_id(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    for model in HISTORY_TARGETS:
        fresh_standin.inject_fault(model, "AccessDeniedException", message=DENIED)
    handler = make_handler("semantic", routes)
    captured = io.StringIO()
    log_handler = logging.StreamHandler(captured)
    log_handler.setFormatter(handler_logger.registered_formatter)
    handler_logger._logger.addHandler(log_handler)
    try:
        response = handler(proxy_event(json.dumps({"question": WW2})), LocalLambdaContext())
    finally:
        handler_logger._logger.removeHandler(log_handler)
    body = json.loads(response["body"])
    logged = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert ROLE_ARN not in response["body"] and ACCOUNT_ID not in response["body"]
    denials = [r for r in logged if r.get("bedrock_message") == DENIED]
    assert len(denials) == len(HISTORY_TARGETS)
    assert {r["request_id"] for r in denials} == {body["request_id"]}


def test_classification_and_every_answer_target_down_is_a_503(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    fresh_standin.inject_fault("*", "ServiceUnavailableException")
    status, body = invoke(make_handler("llm-assisted", routes), {"question": WW2})
    assert status == 503
    assert body["code"] == "models_unavailable"


# -- one deadline per request --


def tight(routes: RoutesConfig) -> RoutesConfig:
    """A 3 s integration timeout: the same budget logic as 29 s, at a tenth of the wait."""
    return variant(
        routes,
        api={"integration_timeout_seconds": 3},
        resilience={
            "answer_attempt_timeout_seconds": 1.2,
            "classification_timeout_seconds": 1.0,
            "response_margin_seconds": 0.5,
        },
    )


def timed_ask(handler: RouterHandler) -> tuple[int, dict[str, Any], float]:
    """Ask the history question; the status, body and seconds of the request alone (the handler
    is eager, so it was built, index and clients included, before the clock starts)."""
    started = time.monotonic()
    status, body = invoke(handler, {"question": WW2})
    return status, body, time.monotonic() - started


def test_a_hung_primary_is_cut_off_and_a_fallback_answers_within_the_budget(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    config = tight(routes)
    fresh_standin.set_delay(HAIKU, 40)
    status, body, elapsed = timed_ask(make_handler("semantic", config))
    assert status == 200
    assert body["answerer_LLM"] == HAIKU_PROFILE
    assert elapsed < config.request_budget_seconds
    assert body["routing"]["targets"][1]["error_code"] == "ReadTimeoutError"


def test_when_no_target_answers_in_time_the_caller_gets_a_504_before_the_gateway_would(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    config = tight(routes)
    for model in HISTORY_TARGETS:
        fresh_standin.set_delay(model, 40)
    status, body, elapsed = timed_ask(make_handler("semantic", config))
    assert status == 504
    assert body["error"] == "deadline exceeded"
    assert body["attempts"]
    assert elapsed <= config.request_budget_seconds + 0.2
    assert elapsed < config.api.integration_timeout_seconds


def test_the_deadline_also_respects_the_functions_remaining_time(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    fresh_standin.set_delay(HAIKU, 40)
    handler = make_handler("semantic", routes)
    context = LocalLambdaContext(timeout_seconds=2)
    started = time.monotonic()
    response = handler(proxy_event(json.dumps({"question": WW2})), context)
    assert time.monotonic() - started < 2
    assert response["statusCode"] == 504


# -- circuit breaker --


def one_attempt_breaker(routes: RoutesConfig, threshold: int, cooldown: float) -> RoutesConfig:
    """One attempt per target, so each failing request counts once towards the breaker."""
    breaker = {"failure_threshold": threshold, "window_seconds": 60, "cooldown_seconds": cooldown}
    return variant(routes, resilience={"attempts_per_target": 1, "breaker": breaker})


def test_breaker_opens_skips_the_target_and_closes_after_the_cooldown(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    handler = make_handler("semantic", one_attempt_breaker(routes, threshold=2, cooldown=0.4))
    fresh_standin.inject_fault(HAIKU, "ThrottlingException")
    for _ in range(2):
        status, body = invoke(handler, {"question": WW2})
        assert status == 200 and body["answerer_LLM"] == HAIKU_PROFILE
    fresh_standin.reset()  # HAIKU is healthy again, but the open breaker does not know yet
    status, body = invoke(handler, {"question": WW2})
    assert status == 200 and body["answerer_LLM"] == HAIKU_PROFILE
    assert answer_calls(fresh_standin) == [HAIKU_PROFILE]  # the skipped target got no call
    skipped = body["routing"]["targets"][1]
    assert (skipped["model_id"], skipped["result"], skipped["error_code"]) == (
        HAIKU, "skipped", "CircuitOpen"
    )
    time.sleep(0.45)
    status, body = invoke(handler, {"question": WW2})
    assert body["answerer_LLM"] == HAIKU  # the half-open trial call succeeded: closed again
    status, body = invoke(handler, {"question": WW2})
    assert body["answerer_LLM"] == HAIKU


def test_all_breakers_open_gives_retry_after_from_the_cooldown(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    handler = make_handler("semantic", one_attempt_breaker(routes, threshold=1, cooldown=7))
    for model in HISTORY_TARGETS:
        fresh_standin.inject_fault(model, "InternalServerException")
    invoke(handler, {"question": WW2})
    fresh_standin.reset()
    response = handler(proxy_event(json.dumps({"question": WW2})), LocalLambdaContext())
    assert response["statusCode"] == 503
    assert 1 <= int(response["headers"]["Retry-After"]) <= 7
    assert answer_calls(fresh_standin) == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_window_half_open_and_reopen() -> None:
    clock = FakeClock()
    board = BreakerBoard(BreakerSettings(3, window_seconds=10, cooldown_seconds=5), clock)
    board.record_failure("m")
    clock.now += 11  # the first failure leaves the window
    assert not board.record_failure("m") and not board.record_failure("m")
    assert board.record_failure("m") is True  # three within 10 s
    assert not board.allow("m")
    assert board.seconds_until_retry("m") == pytest.approx(5)
    clock.now += 5
    assert board.allow("m") is True  # the half-open trial
    assert board.allow("m") is False  # only one at a time
    assert board.record_failure("m") is True  # the trial failed: open again
    clock.now += 5
    assert board.allow("m")
    board.record_success("m")
    assert board.state("m") == "closed" and board.allow("m") and board.allow("m")


# -- weighted pools and tiers --


def test_weighted_pool_splits_within_three_points_of_its_weights() -> None:
    plan = TargetPlan(
        (AnswerTarget("a", 6), AnswerTarget("b", 3), AnswerTarget("c", 1)), ("d",)
    )
    rng = random.Random(7)
    orders = [plan.attempt_order(rng) for _ in range(2000)]
    shares = Counter(order[0] for order in orders)
    for name, weight in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        assert abs(shares[name] / 2000 - weight) <= 0.03
    assert all(order[-1] == "d" and len(set(order)) == 4 for order in orders)


def test_responses_name_the_pool_target_chosen(
    bedrock_client: Any, semantic_index_dir: Path, routes: RoutesConfig, fresh_standin: Any
) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    raw["presets"]["blog-2024"]["answerers"]["history"] = {
        "pool": [{"model_id": HAIKU, "weight": 1}, {"model_id": HAIKU_PROFILE, "weight": 1}],
    }
    service = build_service(
        "semantic", parse_routes(raw), bedrock_client, semantic_index_dir, STANDIN_SOURCE
    )
    chosen = Counter(service.ask(WW2)["routing"]["answer_target"] for _ in range(60))
    assert set(chosen) == {HAIKU, HAIKU_PROFILE}
    assert all(count >= 15 for count in chosen.values())


def tiered(routes: RoutesConfig) -> RoutesConfig:
    return two_tiers(
        routes, basic={"throttle_rate_limit": 2, "quota_requests_per_day": 100}, pro={}
    )


@pytest.mark.parametrize("key_id,tier,answerer", [
    ("key-pro", "pro", SONNET_V2),
    ("key-basic", "basic", HAIKU),
    ("key-unknown", "basic", HAIKU),
    (None, "basic", HAIKU),
])
def test_a_tiers_key_gets_that_tiers_model(
    make_handler: Any, routes: RoutesConfig, fresh_standin: Any,
    key_id: str | None, tier: str, answerer: str,
) -> None:
    handler = make_handler(
        "semantic", tiered(routes), tier_keys={"key-pro": "pro", "key-basic": "basic"}
    )
    event = proxy_event(json.dumps({"question": WW2}), api_key_id=key_id)
    response = handler(event, LocalLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body["routing"]["tier"] == tier
    assert body["answerer_LLM"] == answerer


def test_iam_scope_covers_every_tier_target_and_fallback(routes: RoutesConfig) -> None:
    config = tiered(routes)
    models = set(config.answerer_model_ids())
    assert models == {*HISTORY_TARGETS, *MATH_TARGETS, SONNET_V2}
