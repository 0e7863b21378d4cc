"""evaluation.head_fit: the head's cost-aware thresholds, fitted on held-out reference predictions,
written into routes.json; and the head's topic-held-out folds."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from evaluation.head_fit import (
    DECLINE_GRID,
    HeadFit,
    HeadFitError,
    bagged_threshold,
    fit_head,
    head_decisions,
    hybrid_rows,
    rates,
    write_head_thresholds,
)
from llm_router.config import OUT_OF_SCOPE, RoutesConfig, load_routes, parse_routes
from llm_router.decision.linear_head import LinearHead, _folds
from llm_router.decision.routing_policy import RoutingPolicy, parse_routing

CLASSES = ("history", "math", OUT_OF_SCOPE)


def head_with(oof: list, labels: list[str]) -> LinearHead:
    """A head whose out-of-fold probabilities are ``oof`` (rows, or one set per clustering)."""
    return LinearHead(
        CLASSES, np.zeros((4, 3)), np.zeros(3), 1.0, 0.1,
        np.array(oof, dtype=float), np.array([CLASSES.index(label) for label in labels]),
    )


def config_with(routes: RoutesConfig, cost: float) -> tuple[RoutesConfig, RoutingPolicy]:
    raw = copy.deepcopy(dict(routes.raw))
    raw["routing"] = {**raw["routing"], "false_refusal_cost": cost, "ambiguous_to": "math"}
    config = parse_routes(raw)
    return config, parse_routing(config)


# In-domain rows whose P(off-topic) climbs to 0.9, off-topic rows from 0.6 to 0.99: no threshold
# separates them, so where the fit stops depends on F.
IN_DOMAIN = [[0.9 - p, 0.1, p - 0.1] for p in (0.2, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9)]
IN_DOMAIN = [[max(a, 0.0), b, c] for a, b, c in IN_DOMAIN]
OFF_TOPIC = [[(1 - p) * 0.9, (1 - p) * 0.1, p] for p in (0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99)]


def synthetic() -> tuple[list[list[float]], list[str]]:
    rows = [[0.95, 0.03, 0.02]] * 20 + IN_DOMAIN + OFF_TOPIC
    labels = ["history"] * (20 + len(IN_DOMAIN)) + [OUT_OF_SCOPE] * len(OFF_TOPIC)
    return rows, labels


@pytest.mark.parametrize("cost", [1.0, 5.0, 50.0])
def test_the_chosen_threshold_reports_its_own_cost_aware_objective(
    routes: RoutesConfig, cost: float
) -> None:
    rows, labels = synthetic()
    config, policy = config_with(routes, cost)
    fitted = fit_head(head_with(rows, labels), config, policy, labels)
    chosen = fitted.semantic
    assert chosen == next(
        r for r in fitted.decline_table if r["decline_probability"] == fitted.decline_probability
    )
    in_domain = sum(label != OUT_OF_SCOPE for label in labels)
    declined = round(chosen["false_refusal_rate"] * in_domain)
    p_off = np.array(rows)[:, 2]
    # Recomputed by hand: declined in-domain rows are exactly those at or above the threshold.
    mask = np.array(labels) != OUT_OF_SCOPE
    assert declined == int(np.sum(p_off[mask] >= fitted.decline_probability))
    assert chosen["objective"] == pytest.approx(
        cost * chosen["false_refusal_rate"] + chosen["leak_rate"], abs=1e-3
    )


def test_dearer_false_refusals_raise_the_threshold(routes: RoutesConfig) -> None:
    rows, labels = synthetic()
    thresholds = []
    for cost in (1.0, 5.0, 50.0):
        config, policy = config_with(routes, cost)
        thresholds.append(fit_head(head_with(rows, labels), config, policy, labels)
                          .decline_probability)
    assert thresholds[0] < thresholds[2]
    assert thresholds == sorted(thresholds)
    config, policy = config_with(routes, 50.0)
    fitted = fit_head(head_with(rows, labels), config, policy, labels)
    assert fitted.semantic["false_refusal_rate"] == 0.0


def test_ambiguous_rows_are_never_declined_whatever_the_threshold(routes: RoutesConfig) -> None:
    config, policy = config_with(routes, 1.0)
    rows = [[0.3, 0.3, 0.4]] * 5 + [[0.0, 0.0, 1.0]] * 5  # split history/math vs clearly off
    labels = ["history"] * 5 + [OUT_OF_SCOPE] * 5
    fitted = fit_head(head_with(rows, labels), config, policy, labels)
    assert all(r["false_refusal_rate"] == 0.0 for r in fitted.decline_table)
    assert fitted.semantic["leak_rate"] == 0.0


def test_hybrid_escalates_only_where_the_llm_fixes_decisions(routes: RoutesConfig) -> None:
    rows, labels = synthetic()
    config, policy = config_with(routes, 5.0)
    head = head_with(rows, labels)
    wrong_llm = ["math"] * len(labels)  # an LLM that is always wrong: never worth a call
    assert fit_head(head, config, policy, wrong_llm).hybrid_min_probability == 0.0
    fitted = fit_head(head, config, policy, labels)  # an oracle LLM: escalating pays
    assert fitted.hybrid_min_probability > 0.0
    best = min(fitted.hybrid_table, key=lambda r: r["objective"])
    assert best["min_probability"] == fitted.hybrid_min_probability
    assert best["escalation_rate"] > 0.0
    assert best["objective"] < fitted.hybrid_table[0]["objective"]


def test_hybrid_rows_report_escalation_and_final_decisions() -> None:
    p = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.1, 0.1, 0.8]])
    labels = np.array(["history", "math", OUT_OF_SCOPE], dtype=object)
    semantic = np.array(["history", "history", OUT_OF_SCOPE], dtype=object)
    llm = np.array(["math", "math", "math"], dtype=object)
    table = hybrid_rows(p, semantic, llm, labels, 10.0, grid=(0.0, 0.5, 0.95))
    assert [r["escalation_rate"] for r in table] == [0.0, round(1 / 3, 4), 1.0]
    assert [r["accuracy"] for r in table] == [0.5, 1.0, 0.5]
    assert table[2]["leak_rate"] == 1.0


def test_fit_needs_out_of_fold_predictions(routes: RoutesConfig) -> None:
    config, policy = config_with(routes, 5.0)
    bare = LinearHead(CLASSES, np.zeros((4, 3)), np.zeros(3), 1.0, 0.1)
    with pytest.raises(HeadFitError, match="rebuild the index"):
        fit_head(bare, config, policy, [])


def test_thresholds_are_written_and_read_back(tmp_path: Path, routes: RoutesConfig) -> None:
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps(dict(routes.raw)), encoding="utf-8")
    rows, labels = synthetic()
    config, policy = config_with(routes, 5.0)
    fitted = fit_head(head_with(rows, labels), config, policy, labels)
    write_head_thresholds(routes_file, fitted)
    reread = parse_routing(load_routes(routes_file))
    assert reread.decline_probability == fitted.decline_probability
    assert reread.hybrid_min_probability == fitted.hybrid_min_probability
    raw = json.loads(routes_file.read_text(encoding="utf-8"))
    assert raw["categories"] == routes.raw["categories"]  # nothing else changed


def test_folds_hold_out_whole_topics() -> None:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((80, 32))
    # 80 topics of 4 near-paraphrases each, one label: each topic must land in one fold.
    x = np.repeat(centres, 4, axis=0) + 0.01 * rng.standard_normal((320, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    folds = _folds(x, np.zeros(320, dtype=int), 5)
    per_topic = [set(folds[t * 4 : t * 4 + 4]) for t in range(80)]
    # Dealing rows at random would keep about 1 topic in 125 whole; clusters keep most.
    assert sum(len(s) == 1 for s in per_topic) >= 0.75 * 80
    assert set(folds) == set(range(5))


def row(p_off: float) -> list[float]:
    return [(1 - p_off) * 0.9, (1 - p_off) * 0.1, p_off]


def staircase(moved: float) -> tuple[list[list[float]], list[str]]:
    """600 in-domain and 400 off-topic rows: at F 12 a refusal weighs 0.02, a leak 0.0025. From
    0.80 to 0.92 each 0.02 step holds one in-domain row and, just above it, eight off-topic rows:
    a flat, jagged objective, as on the reference prompts. ``moved``: one off-topic row's
    P(off-topic), the kind of change another clustering makes."""
    rows, labels = [row(0.02)] * 594, ["history"] * 594
    for step in range(6):
        low = 0.8 + 0.02 * step
        rows.append(row(low + 0.001))
        labels.append("history")
        rows += [row(low + 0.0035 + 0.002 * j) for j in range(8)]
        labels += [OUT_OF_SCOPE] * 8
    rows += [row(0.99)] * 351 + [row(moved)]
    labels += [OUT_OF_SCOPE] * 352
    return rows, labels


def plain_minimum(fitted: HeadFit) -> float:
    """The old rule: the lowest objective, ties to the higher threshold."""
    best = min(r["objective"] for r in fitted.decline_table)
    return max(r["decline_probability"] for r in fitted.decline_table if r["objective"] == best)


def test_one_moved_prompt_moves_the_plain_minimum_across_the_band_not_the_fitted_threshold(
    routes: RoutesConfig,
) -> None:
    config, policy = config_with(routes, 12.0)
    plain, bagged = [], []
    for moved in (0.99, 0.9005, 0.85):
        rows, labels = staircase(moved)
        fitted = fit_head(head_with(rows, labels), config, policy, labels)
        plain.append(plain_minimum(fitted))
        bagged.append(fitted.decline_probability)
    assert max(plain) - min(plain) >= 0.05  # the staircase's lowest step wanders
    assert max(bagged) - min(bagged) <= 0.005  # the bagged threshold does not
    assert 0.8 < bagged[0] < 0.92  # inside the flat band


def test_the_threshold_is_the_mean_of_the_resamples_minima(routes: RoutesConfig) -> None:
    """The vectorised rule against a plain loop over the same resamples."""
    rows, labels = synthetic()
    config, policy = config_with(routes, 5.0)
    p, truth = np.array(rows), np.array(labels, dtype=object)
    decisions = np.array([[head_decisions(p, list(CLASSES), policy, config, float(t))
                           for t in DECLINE_GRID]])
    rng = np.random.default_rng(7)
    minima = []
    for _ in range(20):
        drawn = rng.integers(len(truth), size=len(truth))
        objectives = [rates(decisions[0, i][drawn], truth[drawn], 5.0)["objective"]
                      for i in range(len(DECLINE_GRID))]
        best = min(objectives)
        minima.append(max(t for t, o in zip(DECLINE_GRID, objectives, strict=True)
                          if abs(o - best) < 1e-3))
    expected = DECLINE_GRID[np.argmin(np.abs(DECLINE_GRID - np.mean(minima)))]
    assert bagged_threshold(decisions, truth, 5.0, resamples=20, seed=7) == expected


def test_the_objective_is_averaged_over_the_clusterings(routes: RoutesConfig) -> None:
    rows, labels = synthetic()
    shifted = [[a, b, min(c + 0.04, 1.0)] for a, b, c in rows]
    config, policy = config_with(routes, 5.0)
    both = fit_head(head_with([rows, shifted], labels), config, policy, labels)
    alone = [fit_head(head_with(r, labels), config, policy, labels) for r in (rows, shifted)]
    for i, row_ in enumerate(both.decline_table):
        mean = (alone[0].decline_table[i]["objective"] + alone[1].decline_table[i]["objective"]) / 2
        assert row_["objective"] == pytest.approx(mean, abs=1e-3)
