"""Both routers end to end: the shipped Lambda handler, real boto3 clients, the Bedrock stand-in
over HTTP on loopback."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    HAIKU,
    ORIGINAL_FIELDS,
    SONNET,
    STANDIN_SOURCE,
    TITAN_EMBED,
    TITAN_TEXT,
    invoke,
)
from llm_router.config import RoutesConfig, parse_routes
from llm_router.decision.embeddings import TitanEmbedder
from llm_router.decision.semantic_index import build_index
from llm_router.edge.handler import RouterHandler
from llm_router.pipeline.factory import build_service

WW2 = "What year did World War II end?"
QUADRATIC = "Solve the quadratic equation: 2x^2 - 5x + 3 = 0"


@pytest.fixture
def handler_for(
    monkeypatch: pytest.MonkeyPatch, fresh_standin: Any, semantic_index_dir: Path
) -> Any:
    """A handler built the way Lambda builds it: from environment variables alone."""

    def make(strategy: str) -> RouterHandler:
        monkeypatch.setenv("ROUTER_STRATEGY", strategy)
        monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fresh_standin.url)
        monkeypatch.setenv("SEMANTIC_INDEX_DIR", str(semantic_index_dir))
        return RouterHandler(eager=True)

    return make


@pytest.mark.parametrize("strategy,model_field,classifier_model", [
    ("llm-assisted", "classifier_LLM", TITAN_TEXT),
    ("semantic", "embedding_LLM", TITAN_EMBED),
])
@pytest.mark.parametrize("question,category,answerer", [
    (WW2, "history", HAIKU),
    (QUADRATIC, "math", SONNET),
    ("Who was the first president of the United States?", "history", HAIKU),
    ("What is 15% of 240?", "math", SONNET),
])
def test_routes_question_to_its_category_model(
    handler_for: Any, strategy: str, model_field: str, classifier_model: str,
    question: str, category: str, answerer: str,
) -> None:
    status, body = invoke(handler_for(strategy), {"question": question})
    assert status == 200, body
    for name in ORIGINAL_FIELDS:
        assert name in body
    assert body[model_field] == classifier_model
    assert body["question_classification"] == category
    assert body["answerer_LLM"] == answerer
    assert body["answer"]
    assert body["total_response_time"] >= body["answer_generation_time"] > 0
    assert body["usage"]["answer"]["model_id"] == answerer
    assert body["usage"]["answer"]["input_tokens"] > 0
    assert body["usage"]["answer"]["output_tokens"] > 0
    assert body["usage"]["classification"][0]["model_id"] == classifier_model
    assert body["routing"]["strategy"] == strategy
    assert body["routing"]["fallback_to_default"] is False


def test_calls_reach_bedrock_with_the_configured_models(
    handler_for: Any, fresh_standin: Any
) -> None:
    invoke(handler_for("llm-assisted"), {"question": WW2})
    calls = [(c["api"], c["model_id"]) for c in fresh_standin.calls()]
    assert calls == [("invoke", TITAN_TEXT), ("converse", HAIKU)]


def test_semantic_response_reports_neighbours_and_scores_when_full(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path
) -> None:
    config = _variant(routes, lambda raw: raw["response"].update(routing_details="full"))
    service = build_service("semantic", config, bedrock_client, semantic_index_dir, STANDIN_SOURCE)
    routing = service.ask(WW2)["routing"]
    k = routing["k"]
    assert k == routes.semantic_k
    assert len(routing["neighbours"]) == k
    similarities = [n["similarity"] for n in routing["neighbours"]]
    assert similarities == sorted(similarities, reverse=True)
    assert all(0 < s <= 1 for s in similarities)
    assert routing["neighbours"][0]["category"] == "history"
    assert sum(v["votes"] for v in routing["votes"].values()) == k
    assert routing["votes"]["history"]["votes"] > k / 2


def test_summary_routing_details_show_scores_but_no_reference_prompts(
    handler_for: Any, routes: RoutesConfig
) -> None:
    assert routes.response.routing_details == "summary"  # the deployed default
    status, body = invoke(handler_for("semantic"), {"question": WW2})
    assert status == 200
    routing = body["routing"]
    assert routing["strategy"] == "semantic" and routing["decided_by"] == "semantic"
    assert routing["label_similarity"]["history"] == routing["top_similarity"]
    assert "neighbours" not in routing and "votes" not in routing
    prompts = {p for c in routes.categories.values() for p in c.reference_prompts}
    text = json.dumps(body)
    assert not any(p in text for p in prompts)


@pytest.mark.parametrize("output", ["probably cooking", "history math", "", "maths"])
def test_unrecognised_classifier_output_follows_the_out_of_scope_policy(
    handler_for: Any, fresh_standin: Any, output: str
) -> None:
    handler = handler_for("llm-assisted")
    fresh_standin.script(TITAN_TEXT, [output])
    status, body = invoke(handler, {"question": WW2})
    assert status == 200
    assert body["question_classification"] == "out_of_scope"
    assert body["answerer_LLM"] is None
    assert body["routing"]["declined"] is True
    assert body["routing"]["classifier_output"] == output
    assert [c["api"] for c in fresh_standin.calls()] == ["invoke"]  # no answer model paid


def test_unrecognised_output_may_go_to_the_default_as_the_original_sample_did(
    routes: RoutesConfig, bedrock_client: Any, fresh_standin: Any
) -> None:
    config = _variant(
        routes, lambda raw: raw["classifier"].update(unrecognised_output="default_category")
    )
    fresh_standin.script(TITAN_TEXT, ["banana"])
    body = build_service("llm-assisted", config, bedrock_client).ask(WW2)
    assert body["question_classification"] == "math"
    assert body["answerer_LLM"] == SONNET
    assert body["routing"]["fallback_to_default"] is True
    assert "default category" in body["routing"]["fallback_reason"]


def test_classifier_label_is_trimmed_and_case_folded(handler_for: Any, fresh_standin: Any) -> None:
    handler = handler_for("llm-assisted")
    fresh_standin.script(TITAN_TEXT, ["  History\n"])
    status, body = invoke(handler, {"question": QUADRATIC})
    assert status == 200
    assert body["question_classification"] == "history"
    assert body["routing"]["fallback_to_default"] is False


@pytest.mark.parametrize("strategy", ["llm-assisted", "semantic"])
@pytest.mark.parametrize("raw_body,fragment", [
    (None, "JSON object"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ("{}", '"question"'),
    ('{"question": ""}', '"question"'),
    ('{"question": "   "}', '"question"'),
    ('{"question": 42}', '"question"'),
    ('{"question": "hi", "extra": 1}', "unknown field"),
    ('{"question": "hi", "category": 3}', '"category"'),
    (json.dumps({"question": "x" * 2001}), "maximum is 2000"),
])
def test_bad_request_is_400_with_reason(
    handler_for: Any, strategy: str, raw_body: str | None, fragment: str, fresh_standin: Any
) -> None:
    status, body = invoke(handler_for(strategy), raw_body, raw=True)
    assert status == 400
    assert fragment in body["error"]
    assert fresh_standin.calls() == []  # no model is paid for a bad request


def test_transient_throttling_is_retried(handler_for: Any, fresh_standin: Any) -> None:
    handler = handler_for("llm-assisted")
    fresh_standin.inject_fault(HAIKU, "ThrottlingException", count=1)
    status, body = invoke(handler, {"question": WW2})
    assert status == 200
    assert body["answerer_LLM"] == HAIKU


def _variant(routes: RoutesConfig, edit: Any) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    edit(raw)
    return parse_routes(raw)


def test_semantic_index_for_other_dimensions_is_refused(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path
) -> None:
    config = _variant(routes, lambda raw: raw["embedding"].update(dimensions=512))
    handler = RouterHandler(
        service_factory=lambda: build_service(
            "semantic", config, bedrock_client, semantic_index_dir, STANDIN_SOURCE
        ),
        eager=True,
    )
    status, body = invoke(handler, {"question": WW2})
    assert status == 503
    assert body["error"] == "router unavailable"
    assert "dimensions" in body["reason"]


def test_stand_in_index_is_refused_against_real_bedrock(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path
) -> None:
    handler = RouterHandler(
        service_factory=lambda: build_service(
            "semantic", routes, bedrock_client, semantic_index_dir, "bedrock"
        ),
    )
    status, body = invoke(handler, {"question": WW2})
    assert status == 503
    assert "embedding_source" in body["reason"]


def test_k_nearest_neighbour_vote(
    routes: RoutesConfig, bedrock_client: Any, tmp_path: Path
) -> None:
    config = _variant(routes, lambda raw: raw["semantic"].update(k=3))
    build_index(config, TitanEmbedder(bedrock_client, config.embedding), tmp_path, STANDIN_SOURCE)
    service = build_service("semantic", config, bedrock_client, tmp_path, STANDIN_SOURCE)
    decision = service.decide(QUADRATIC)
    assert decision.category == "math"
    assert len(decision.details["neighbours"]) == 3
    assert sum(v["votes"] for v in decision.details["votes"].values()) == 3


def test_prompt_router_answerer_reports_invoked_model(
    routes: RoutesConfig, bedrock_client: Any
) -> None:
    router_arn = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"
    config = _variant(routes, lambda raw: raw["presets"]["blog-2024"]["answerers"].update(
        math=router_arn))
    service = build_service("llm-assisted", config, bedrock_client)
    body = service.ask(QUADRATIC)
    assert body["routing"]["answerer_requested"] == router_arn
    assert body["answerer_LLM"] != router_arn
    assert "anthropic" in body["answerer_LLM"]
