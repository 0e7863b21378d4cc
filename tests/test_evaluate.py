"""scripts/evaluate.py: the routing metrics, the threshold fit, and the dev-set floors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import evaluate
import pytest
from evaluation.fit import Sample, fit, write_thresholds
from evaluation.metrics import Outcome, summarise
from llm_router.config import OUT_OF_SCOPE, RoutesConfig, load_routes, parse_routes
from llm_router.decision.classifiers.semantic import decide
from llm_router.decision.semantic_index import ReferenceRow

from layers import REPO_ROOT

DEV_SET = REPO_ROOT.parent / "shared" / "eval" / "tutor_dev.jsonl"


def outcome(label: str, decision: str, escalated: bool | None = None) -> Outcome:
    return Outcome(f"{label}->{decision}", label, decision, 0.01, escalated)


def test_summary_counts_declines_as_errors_in_domain_and_hits_off_topic() -> None:
    outcomes = [
        outcome("history", "history"), outcome("history", "history"),
        outcome("history", OUT_OF_SCOPE), outcome("math", "math"), outcome("math", "history"),
        outcome("other", OUT_OF_SCOPE), outcome("other", "math"),
    ]
    summary = summarise(outcomes, ("history", "math"))
    assert summary["n"] == 7
    assert summary["accuracy"] == pytest.approx(3 / 5, abs=1e-4)
    assert summary["false_refusal_rate"] == pytest.approx(1 / 5, abs=1e-4)
    assert summary["out_of_scope_recall"] == 0.5
    assert summary["escalation_rate"] is None
    assert summary["confusion"]["history"] == {"history": 2, "math": 0, "other": 1}
    assert summary["per_class"]["history"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["per_class"]["math"]["recall"] == 0.5
    assert len(summary["errors"]) == 3


def test_escalation_rate_is_the_share_decided_by_the_llm() -> None:
    outcomes = [outcome("math", "math", True), outcome("math", "math", False),
                outcome("history", "history", False), outcome("other", OUT_OF_SCOPE, False)]
    assert summarise(outcomes, ("history", "math"))["escalation_rate"] == 0.25


def neighbours(*pairs: tuple[str, float]) -> list[tuple[ReferenceRow, float]]:
    return [(ReferenceRow(label, f"{label} {i}"), score) for i, (label, score) in
            enumerate(pairs)]


def test_fit_learns_a_floor_that_declines_far_questions_and_agrees_with_decide(
    routes: RoutesConfig,
) -> None:
    config = parse_routes({**copy.deepcopy(dict(routes.raw)), "semantic": {"k": 1}})
    near = [Sample(f"h{i}", "history", neighbours(("history", 0.8 - i / 100), ("math", 0.2)))
            for i in range(20)]
    near += [Sample(f"m{i}", "math", neighbours(("math", 0.7), ("history", 0.3)))
             for i in range(20)]
    # Off-topic questions far from everything: nearest is a category, but only weakly, and no
    # off-topic reference is near, so only a similarity floor can decline them.
    far = [Sample(f"o{i}", OUT_OF_SCOPE, neighbours(("history", 0.3), ("math", 0.25)))
           for i in range(10)]
    llm = [s.label for s in near] + ["history"] * len(far)  # an LLM that misses off-topic
    result = fit(near + far, config, "synthetic", llm, max_false_refusal=0.0)
    assert result.semantic["out_of_scope_recall"] == 1.0
    assert result.semantic["false_refusal_rate"] == 0.0
    assert 0.3 < result.thresholds.min_similarity["history"] <= 0.61
    assert result.hybrid["escalation_rate"] == 0.0  # the LLM would only add errors here
    fitted = parse_routes({**copy.deepcopy(dict(routes.raw)), "semantic": {
        "k": 1, "min_similarity": dict(result.thresholds.min_similarity),
        "min_margin": result.thresholds.min_margin}})
    assert all(decide(s.neighbours, 1, fitted)["category"] == OUT_OF_SCOPE for s in far)
    assert all(decide(s.neighbours, 1, fitted)["category"] == s.label for s in near)


def test_fit_escalates_where_the_llm_is_right_and_semantic_is_not(routes: RoutesConfig) -> None:
    config = parse_routes({**copy.deepcopy(dict(routes.raw)), "semantic": {"k": 1}})
    clear = [Sample(f"h{i}", "history", neighbours(("history", 0.8), ("math", 0.2)))
             for i in range(18)]
    confused = [Sample(f"m{i}", "math", neighbours(("history", 0.52), ("math", 0.5)))
                for i in range(2)]
    llm = ["history"] * 18 + ["math"] * 2
    result = fit(clear + confused, config, "synthetic", llm)
    assert result.hybrid["error_rate"] == 0.0
    assert result.hybrid["escalation_rate"] == 0.1


def test_thresholds_are_written_into_the_routes_file(tmp_path: Path, routes: RoutesConfig) -> None:
    assert routes.source_path is not None
    target = tmp_path / "routes.json"
    target.write_text(routes.source_path.read_text())
    thresholds = type(routes.thresholds)({"history": 0.31, "math": 0.12}, 0.04, 0.2, 0.05)
    write_thresholds(target, thresholds)
    reloaded = load_routes(target)
    assert reloaded.thresholds == thresholds
    assert reloaded.categories == routes.categories  # everything else untouched


def test_dataset_errors_are_clear(tmp_path: Path, routes: RoutesConfig) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "label": "art"}\n')
    with pytest.raises(evaluate.EvaluationError, match="label 'art'"):
        evaluate.read_dataset(bad, routes)
    bad.write_text("not json\n")
    with pytest.raises(evaluate.EvaluationError, match="bad.jsonl:1"):
        evaluate.read_dataset(bad, routes)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert evaluate.main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_reports_the_keys_machines_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "tiny.jsonl"
    rows = [("Who was Charlemagne?", "history"), ("What is 7 times 8?", "math"),
            ("Which phone has the best camera?", "other")]
    dataset.write_text("".join(json.dumps({"question": q, "label": label}) + "\n"
                               for q, label in rows))
    report = run_json(capsys, "--router", "hybrid", "--dataset", str(dataset))
    for key in ("accuracy", "out_of_scope_recall", "false_refusal_rate", "escalation_rate", "n",
                "confusion", "per_class", "classification_latency_ms", "monthly_cost"):
        assert key in report
    assert report["n"] == 3 and report["router"] == "hybrid"
    assert 0 <= report["escalation_rate"] <= 1
    cost = report["monthly_cost"]
    assert cost["total"] == pytest.approx(cost["answering"] + cost["routing"], abs=0.01)
    assert cost["saving"] == pytest.approx(cost["all_premium_answering"] - cost["total"], abs=0.01)
    semantic = run_json(capsys, "--router", "semantic", "--dataset", str(dataset))
    assert semantic["escalation_rate"] is None


@pytest.mark.skipif(not DEV_SET.is_file(), reason="shared/eval/tutor_dev.jsonl is not beside "
                    "the project")
@pytest.mark.parametrize("router", ["semantic", "hybrid"])
def test_dev_set_floors(router: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's floors, measured offline with the stand-in's local embeddings."""
    report = run_json(capsys, "--router", router, "--dataset", str(DEV_SET))
    assert report["accuracy"] >= 0.99
    assert report["out_of_scope_recall"] >= 0.85
    assert report["false_refusal_rate"] <= 0.02
    if router == "hybrid":
        assert report["escalation_rate"] <= 0.2
