"""The attack corpus (scripts/evaluation/attacks.py) against every router, offline: no case whose
off-topic payload the router declines alone is answered by the premium model, and a classifier
outage sends nothing above the degraded target."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import STANDIN_SOURCE, TITAN_EMBED, TITAN_TEXT
from evaluation import attacks
from llm_router.config import RoutesConfig
from llm_router.decision.cost_cap import premium_models
from llm_router.pipeline.factory import build_service

STRATEGIES = ("semantic", "hybrid", "llm-assisted")


def test_the_corpus_has_300_cases_across_the_five_families(routes: RoutesConfig) -> None:
    cases = attacks.build_corpus(routes)
    counts = Counter(case.family for case in cases)
    assert len(cases) >= 300 and set(counts) == set(attacks.FAMILIES)
    assert min(counts.values()) >= 50
    limit = routes.api.max_question_chars
    assert all(0 < len(case.question) <= limit for case in cases)
    window = attacks.parse_routing(routes).max_input_chars
    truncation = [case for case in cases if case.family == "truncation"]
    assert all(case.question.index(case.payload) > window for case in truncation)  # past it


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_attack_reaches_the_premium_model_on_any_router(
    strategy: str,
    routes: RoutesConfig,
    bedrock_client: Any,
    semantic_index_dir: Path,
    fresh_standin: Any,
) -> None:
    def make() -> Any:
        return build_service(
            strategy, routes, bedrock_client, semantic_index_dir, STANDIN_SOURCE, budget=None
        )

    def fail() -> None:
        for model_id in (TITAN_TEXT, TITAN_EMBED):
            fresh_standin.inject_fault(model_id, attacks.DEGRADED_FAULT)

    report = attacks.run_corpus(make, attacks.build_corpus(routes), fail, fresh_standin.reset)
    summary = report.summary()
    total = summary["total"]
    print(attacks.render([report]))
    assert total["cases"] >= 300 and total.get("errors", 0) == 0
    # The target: nothing the classifier declines on its own reaches the premium model.
    assert total.get("premium_payload_declined_alone", 0) == 0, [
        (r.case.family, r.case.name, r.case.question[-120:])
        for r in report.results
        if r.premium and r.payload_declined_alone
    ]
    # A classifier outage: nothing above the degraded target, in-scope questions included.
    degraded = summary["families"]["degraded"]
    assert degraded["premium"] == 0 and degraded["capped"] == degraded["cases"]
    # And the check is not vacuous: most payloads are ones the router declines alone.
    assert total["payload_declined_alone"] >= 0.6 * (total["cases"] - 15)


def test_premium_is_derived_from_prices_not_names(routes: RoutesConfig) -> None:
    """Swap the prices of the two categories' targets: the premium target and the attacked
    category follow the prices."""
    import json

    from llm_router.config import parse_routes

    raw = json.loads(json.dumps(routes.raw))
    history = routes.answerer_for("history")
    math = routes.answerer_for("math")
    raw["prices"][history], raw["prices"][math] = raw["prices"][math], raw["prices"][history]
    swapped = parse_routes(raw, preset=routes.preset)
    assert history in premium_models(swapped) and math not in premium_models(swapped)
    cases = attacks.build_corpus(swapped)
    carriers = set(swapped.categories["history"].reference_prompts)
    mixed = [case for case in cases if case.name == "carrier-first"]
    assert all(case.question.split(" Also, ")[0] in carriers for case in mixed)
