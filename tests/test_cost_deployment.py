"""The cost calculator's section 5: this deployment's own costs beside the blog's, each line named
in the JSON and derived from the code or configuration that causes it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import cost_calculator as cc
import costs
import pytest
from bedrock_standin.minilm import TokenCounter
from conftest import active_routes_file
from costs.deployment import PROBE_QUESTION, classifier_prompt_tokens, custom_metrics
from llm_router.config import load_routes
from llm_router.decision.classifiers.llm import build_prompt
from llm_router.observability import metric_catalog as mc

LINES = {"classifier_prompt", "cloudwatch_metrics", "cloudwatch_logs", "xray", "dynamodb",
         "dynamodb_cache", "dynamodb_conversations", "lambda", "api_gateway"}


def test_json_names_each_line_beside_the_blogs_unchanged_figures() -> None:
    report = json.loads(cc.run(["--format", "json"]))
    own = report["deployment"]
    assert set(own["lines"]) == LINES
    for line in own["lines"].values():
        assert line["monthly_cost"] >= 0 and line["how"]
    monitoring = sum(own["lines"][k]["monthly_cost"] for k in own["monitoring"]["lines"])
    assert abs(own["monitoring"]["monthly_cost"] - monitoring) <= 0.01
    # The blog's tables are what they were.
    answers = {a["category"]: a["monthly_cost"] for a in report["answers"]["categories"]}
    assert answers == {"history": 618.75, "math": 7425.0}
    assert report["routing"]["llm-assisted"]["monthly_cost"] == 90.0
    assert report["routing"]["semantic"]["monthly_cost"] == 9.0


def test_the_classifier_prompt_is_measured_on_the_real_builder() -> None:
    config = load_routes()
    counter = TokenCounter()
    longer = "word " * 50 + PROBE_QUESTION
    # The overhead is the prompt's own: the same whatever the question.
    expected = counter.count(build_prompt(config, longer)) - counter.count(longer)
    assert abs(classifier_prompt_tokens(config.preset) - expected) <= 2
    assert classifier_prompt_tokens(config.preset) > 100  # instructions, categories, examples
    report = costs.compute(costs.load_scenario())
    line = report.deployment.line("classifier_prompt")
    tokens = Decimal(3_000_000) * (150 + classifier_prompt_tokens(config.preset))
    titan_in, titan_out = Decimal("0.0002"), Decimal("0.0006")
    assert line.monthly_cost == tokens * titan_in / 1000 + Decimal(3_000_000) * titan_out / 1000


def test_metric_cardinality_is_opt_in_and_costs_no_more_than_routing() -> None:
    config = load_routes()
    counts = custom_metrics(config.raw, len(config.tiers))
    semantic = len(mc.router_metrics(uses_classifier_llm=False, uses_embeddings=True))
    assert semantic < len(mc.METRICS)  # no classifier tokens, no escalations
    shipped, everything = counts["semantic"]
    assert shipped == semantic  # the router's totals only
    categories = len(config.category_names) + 1
    targets = len(config.answerer_model_ids())
    assert everything == semantic * (1 + categories + targets)
    opted = {"metrics": {"breakdowns": ["Category"]}}
    assert custom_metrics(opted, 1)["semantic"] == (semantic * (1 + categories), everything)
    report = costs.compute(costs.load_scenario())
    own = report.deployment
    # At the blog's traffic, each stack's metrics cost no more than the routing they watch.
    assert own.metrics_cost["semantic"] <= own.routing["semantic"]
    assert own.metrics_cost["llm-assisted"] <= own.routing["llm-assisted"]


def test_lines_follow_the_traffic_and_the_budget() -> None:
    base = costs.compute(costs.load_scenario()).deployment
    double = cc.run(["--format", "json", "--math-per-day", "150000"])  # 2x the questions
    lines = json.loads(double)["deployment"]["lines"]
    doubled = float(base.line("dynamodb").monthly_cost * 2)
    assert abs(lines["dynamodb"]["monthly_cost"] - doubled) <= 0.005
    # Metrics are billed per metric, not per request.
    same = float(base.line("cloudwatch_metrics").monthly_cost)
    assert abs(lines["cloudwatch_metrics"]["monthly_cost"] - same) <= 0.005


def test_the_cache_and_conversation_tables_are_priced_as_shipped() -> None:
    """Every table the stack ships is on the bill: the cache at no hit (its largest cost) unless
    the scenario sets a hit rate, the conversations at one PutItem an answered question."""
    from costs.cache_saving import compute_cache
    from costs.scenario import deep_merge

    scenario = costs.load_scenario()
    own = costs.compute(scenario).deployment
    at_none = compute_cache(deep_merge(scenario, {"cache": {"hit_rate": 0}}), load_routes())
    assert at_none is not None and at_none["cache_cost"] > 0
    assert own.line("dynamodb_cache").monthly_cost == at_none["cache_cost"]
    hits = json.loads(cc.run(["--format", "json", "--cache-hit-rate", "0.3"]))
    assert abs(hits["deployment"]["lines"]["dynamodb_cache"]["monthly_cost"]
               - hits["cache"]["cache_cost"]) <= 0.005
    assert hits["cache"]["cache_cost"] < float(at_none["cache_cost"])  # hits write nothing

    # 3,000,000 answered questions a month, 2 write units each at $0.625 a million, plus a
    # day's items stored.
    conversations = own.line("dynamodb_conversations").monthly_cost
    assert Decimal("3.75") < conversations < Decimal("3.75") + Decimal("0.1")
    double = json.loads(cc.run(["--format", "json", "--math-per-day", "150000"]))
    doubled = double["deployment"]["lines"]["dynamodb_conversations"]["monthly_cost"]
    assert abs(doubled - float(conversations) * 2) <= 0.01


def test_a_routes_file_without_a_cache_prices_no_cache_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = json.loads(active_routes_file().read_text())
    raw["cache"]["enabled"] = False
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps(raw))
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    line = costs.compute(costs.load_scenario()).deployment.line("dynamodb_cache")
    assert line.monthly_cost == 0 and "cache off" in line.how
