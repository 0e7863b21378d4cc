"""Off-topic handling, static routing and the hybrid router, through the shared core."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from conftest import HAIKU, SONNET, STANDIN_SOURCE, TITAN_EMBED, TITAN_TEXT, invoke
from llm_router.config import OUT_OF_SCOPE, RoutesConfig, parse_routes
from llm_router.edge.handler import RouterHandler
from llm_router.pipeline.factory import build_service
from test_routers import QUADRATIC, WW2

OFF_TOPIC_NEAR_REFERENCE = "What is a good recipe for pasta carbonara?"


def variant(routes: RoutesConfig, edit: Any) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    edit(raw)
    return parse_routes(raw)


def handler(service_factory: Any) -> RouterHandler:
    return RouterHandler(service_factory=service_factory, eager=True)


@pytest.fixture
def service_for(bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any) -> Any:
    def make(strategy: str, config: RoutesConfig) -> Any:
        return build_service(strategy, config, bedrock_client, semantic_index_dir, STANDIN_SOURCE)

    return make


@pytest.mark.parametrize("strategy", ["llm-assisted", "semantic", "hybrid"])
def test_trusted_static_category_skips_classification(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any, strategy: str
) -> None:
    trusting = variant(routes, lambda raw: raw["api"].update(caller_category="trust"))
    status, body = invoke(
        handler(lambda: service_for(strategy, trusting)), {"question": WW2, "category": "math"}
    )
    assert status == 200
    assert body["question_classification"] == "math"
    assert body["answerer_LLM"] == SONNET
    assert body["classification_time"] == 0.0
    assert body["routing"]["decided_by"] == "caller"
    assert body["usage"]["classification"] == []
    assert [c["api"] for c in fresh_standin.calls()] == ["converse"]


@pytest.mark.parametrize("strategy", ["llm-assisted", "semantic", "hybrid"])
def test_checked_caller_category_cannot_buy_the_premium_model_for_off_topic(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any, strategy: str
) -> None:
    assert routes.api.caller_category == "check"  # the default
    if strategy != "semantic":
        fresh_standin.script(TITAN_TEXT, ["none"])
    status, body = invoke(
        handler(lambda: service_for(strategy, routes)),
        {"question": OFF_TOPIC_NEAR_REFERENCE, "category": "math"},
    )
    assert status == 200
    assert body["question_classification"] == OUT_OF_SCOPE
    assert body["routing"]["declined"] is True
    assert body["routing"]["caller_category"] == "math"
    assert body["answerer_LLM"] is None
    assert "converse" not in [c["api"] for c in fresh_standin.calls()]  # no answer model


def test_checked_caller_category_is_used_for_in_scope_questions(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    status, body = invoke(
        handler(lambda: service_for("semantic", routes)), {"question": WW2, "category": "math"}
    )
    assert status == 200
    assert body["question_classification"] == "math"
    assert body["answerer_LLM"] == SONNET
    assert body["routing"]["decided_by"] == "caller"
    assert body["routing"]["classified_as"] == "history"


# A caller's category refused with a 400 before any model call: (api.caller_category, None: the
# routes' own; the category sent; fields the body must have; text its error must name).
REFUSED_CATEGORIES = [
    pytest.param("off", "math", {"code": "category_not_allowed"}, None, id="caller-category-off"),
    pytest.param(
        None, "art", {"valid_categories": ["history", "math"]}, "art", id="unknown-lists-valid"
    ),
]


@pytest.mark.parametrize("caller_category,category,fields,error_names", REFUSED_CATEGORIES)
def test_a_refused_caller_category_is_a_400(
    service_for: Any,
    routes: RoutesConfig,
    fresh_standin: Any,
    caller_category: str | None,
    category: str,
    fields: dict[str, Any],
    error_names: str | None,
) -> None:
    config = routes
    if caller_category is not None:
        config = variant(routes, lambda raw: raw["api"].update(caller_category=caller_category))
    status, body = invoke(
        handler(lambda: service_for("semantic", config)), {"question": WW2, "category": category}
    )
    assert status == 400
    for field, value in fields.items():
        assert body[field] == value
    if error_names is not None:
        assert error_names in body["error"]
    assert fresh_standin.calls() == []


def test_off_topic_is_declined_without_an_answer_call(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    status, body = invoke(
        handler(lambda: service_for("semantic", routes)), {"question": OFF_TOPIC_NEAR_REFERENCE}
    )
    assert status == 200
    assert body["question_classification"] == OUT_OF_SCOPE
    assert body["answer"] == routes.out_of_scope.decline_message
    assert body["answerer_LLM"] is None
    assert body["usage"]["answer"] is None
    assert body["routing"]["declined"] is True
    assert body["routing"]["out_of_scope_reason"]
    assert [c["model_id"] for c in fresh_standin.calls()] == [TITAN_EMBED]


def test_off_topic_action_default_routes_to_default_category(
    service_for: Any, routes: RoutesConfig
) -> None:
    config = variant(routes, lambda raw: raw["out_of_scope"].update(action="default"))
    body = service_for("semantic", config).ask(OFF_TOPIC_NEAR_REFERENCE)
    assert body["question_classification"] == "math"
    assert body["answerer_LLM"] == SONNET
    assert body["routing"]["out_of_scope"] is True
    assert body["routing"]["fallback_to_default"] is True


def test_similarity_threshold_declines_weak_matches(service_for: Any, routes: RoutesConfig) -> None:
    config = variant(
        routes,
        lambda raw: raw["semantic"].update(
            decision="knn", min_similarity={"history": 1.01, "math": 1.01}
        ),
    )
    decision = service_for("semantic", config).decide(WW2)
    assert decision.category == OUT_OF_SCOPE
    assert "below its threshold" in decision.details["out_of_scope_reason"]


def test_llm_none_label_declines(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    fresh_standin.script(TITAN_TEXT, ["none"])
    body = service_for("llm-assisted", routes).ask("What's a good pasta recipe?")
    assert body["question_classification"] == OUT_OF_SCOPE
    assert body["routing"]["declined"] is True
    assert body["routing"]["fallback_to_default"] is False


def test_hybrid_confident_semantic_decision_skips_the_llm(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    body = service_for("hybrid", routes).ask(WW2)  # a clear history question: confident
    assert body["routing"]["decided_by"] == "semantic"
    assert body["question_classification"] == "history"
    assert body["answerer_LLM"] == HAIKU
    assert body["embedding_LLM"] == TITAN_EMBED
    assert TITAN_TEXT not in [c["model_id"] for c in fresh_standin.calls()]


def test_hybrid_escalates_unconfident_decisions_to_the_llm(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    config = variant(
        routes,
        lambda raw: (
            raw["hybrid"].update(min_similarity=1.01),
            raw["semantic"].update(decision="knn"),
        ),
    )
    body = service_for("hybrid", config).ask(QUADRATIC)
    routing = body["routing"]
    assert routing["decided_by"] == "llm"
    assert "not confident" in routing["why"]
    assert routing["semantic"]["category"] == "math"
    assert routing["classifier_LLM"] == TITAN_TEXT
    assert body["question_classification"] == "math"
    models = [u["model_id"] for u in body["usage"]["classification"]]
    assert models[:2] == [TITAN_EMBED, TITAN_TEXT]
    calls = [c["model_id"] for c in fresh_standin.calls()]
    # Then the coverage check classifies the question's two sentences alone, and Sonnet answers.
    assert body["routing"]["cost_cap"] == {"capped": False, "segments": 2, "off_topic": []}
    assert (calls[:2], calls[-1]) == ([TITAN_EMBED, TITAN_TEXT], SONNET)


def test_hybrid_with_the_head_escalates_below_its_min_probability(
    service_for: Any, routes: RoutesConfig, fresh_standin: Any
) -> None:
    """The shipped head decision with a hand-set ``hybrid.min_probability``: a decision whose top
    probability falls short of it goes to the classifier LLM (1.0: every decision does)."""
    config = variant(routes, lambda raw: raw["hybrid"].update(min_probability=1.0))
    assert config.raw["semantic"]["decision"] == "head"
    body = service_for("hybrid", config).ask(QUADRATIC)
    assert body["routing"]["decided_by"] == "llm"
    assert body["question_classification"] == "math"
    calls = [c["model_id"] for c in fresh_standin.calls()]
    # Then the coverage check classifies the question's two sentences alone, and Sonnet answers.
    assert body["routing"]["cost_cap"] == {"capped": False, "segments": 2, "off_topic": []}
    assert (calls[:2], calls[-1]) == ([TITAN_EMBED, TITAN_TEXT], SONNET)
