"""llm_router.decision.linear_head and the head's decision: training, calibration, shipping,
policy."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from llm_router.config import OUT_OF_SCOPE, ConfigError, RoutesConfig, parse_routes
from llm_router.decision.classifiers.semantic import decide_by_head
from llm_router.decision.linear_head import (
    L2,
    LinearHead,
    fit_logistic,
    fit_logistic_many,
    train_head,
)
from llm_router.decision.routing_policy import parse_routing

CLASSES = ("history", "math", OUT_OF_SCOPE)


def clusters(n: int = 30, noise: float = 0.6, seed: int = 1) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 3
    x = np.vstack([centres[i] + noise * rng.standard_normal((n, 16)) for i in range(3)])
    return x, [c for c in CLASSES for _ in range(n)]


def test_head_learns_separable_classes_and_its_probabilities_are_calibrated() -> None:
    x, labels = clusters()
    head, oof = train_head(x, labels, CLASSES)
    predicted = [CLASSES[i] for i in head.probabilities(x).argmax(axis=1)]
    assert np.mean(np.array(predicted) == np.array(labels)) > 0.95
    assert np.allclose(oof.sum(axis=1), 1.0)
    # Calibrated: the mean confidence on held-out folds is close to held-out accuracy.
    truth = np.array([CLASSES.index(label) for label in labels])
    accuracy = np.mean(oof.argmax(axis=1) == truth)
    assert abs(oof.max(axis=1).mean() - accuracy) < 0.1
    assert 0.05 <= head.temperature <= 5.0


def test_head_round_trips_through_its_file(tmp_path: Path) -> None:
    x, labels = clusters(n=10)
    head, _ = train_head(x, labels, CLASSES)
    head.save(tmp_path)
    loaded = LinearHead.load(tmp_path)
    assert loaded.classes == CLASSES
    assert np.allclose(loaded.probabilities(x), head.probabilities(x), atol=1e-5)


def policy_config(routes: RoutesConfig, **routing: object) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    raw["routing"] = {**raw.get("routing", {}), **routing}
    raw["semantic"]["decline_probability"] = 0.9
    return parse_routes(raw)


def test_decline_only_above_the_decline_probability(routes: RoutesConfig) -> None:
    config = policy_config(routes, ambiguous_to="history")
    policy = parse_routing(config)
    sure = decide_by_head({"history": 0.02, "math": 0.03, OUT_OF_SCOPE: 0.95}, policy, config)
    unsure = decide_by_head({"history": 0.12, "math": 0.03, OUT_OF_SCOPE: 0.85}, policy, config)
    assert sure["category"] == OUT_OF_SCOPE and "decline_probability" in sure["out_of_scope_reason"]
    assert unsure["category"] == "history" and unsure["ambiguous"] is False


@pytest.mark.parametrize(
    ("ambiguous_to", "expected"), [("history", "history"), ("premium", "math")]
)
def test_ambiguous_questions_are_never_declined_and_go_where_configured(
    routes: RoutesConfig, ambiguous_to: str, expected: str
) -> None:
    config = policy_config(routes, ambiguous_to=ambiguous_to)
    policy = parse_routing(config)
    # History of mathematics: both categories likely; even a large off-topic share cannot decline.
    decision = decide_by_head({"history": 0.3, "math": 0.3, OUT_OF_SCOPE: 0.4}, policy, config)
    assert decision["ambiguous"] is True
    assert decision["candidates"] == ["history", "math"]  # ties keep the categories' order
    assert decision["category"] == decision["ambiguous_to"] == expected


@pytest.mark.parametrize("ambiguous_to", ["likeliest", None])  # None: the key left out
def test_ambiguous_questions_go_to_the_likelier_category_by_default(
    routes: RoutesConfig, ambiguous_to: str | None
) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    raw["routing"] = {k: v for k, v in raw["routing"].items() if k != "ambiguous_to"}
    if ambiguous_to is not None:
        raw["routing"]["ambiguous_to"] = ambiguous_to
    config = parse_routes(raw)
    policy = parse_routing(config)
    for likelier, other in (("history", "math"), ("math", "history")):
        decision = decide_by_head({likelier: 0.4, other: 0.3, OUT_OF_SCOPE: 0.3}, policy, config)
        assert decision["ambiguous"] is True
        assert decision["category"] == decision["ambiguous_to"] == likelier


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"false_refusal_cost": 0}, "false_refusal_cost must be positive"),
        ({"false_refusal_cost": "high"}, "must be a number"),
        ({"ambiguous_to": "art"}, "ambiguous_to must be 'likeliest', 'premium' or a category"),
        ({"ambiguous_min_probability": 1.5}, "between 0 and 1"),
        ({"max_input_chars": 10}, "max_input_chars"),
        ({"fals_refusal_cost": 3}, "unknown keys"),
    ],
)
def test_routing_section_errors_name_the_key(
    routes: RoutesConfig, routing: dict, message: str
) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    raw["routing"] = routing
    with pytest.raises(ConfigError, match=message):
        parse_routing(parse_routes(raw))


def test_shipped_routing_section_parses(routes: RoutesConfig) -> None:
    policy = parse_routing(routes)
    assert policy.false_refusal_cost == routes.raw["routing"]["false_refusal_cost"]
    assert policy.decision == "head"


def objective_gradient(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The gradient of fit_logistic's objective in the full space (weights and bias)."""
    n, classes = len(y), w.shape[1]
    counts = np.bincount(y, minlength=classes)
    sample = (n / (classes * counts))[y] / n
    z = x @ w + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    residual = (p - np.eye(classes)[y]) * sample[:, None]
    return np.vstack([x.T @ residual + L2 * w, residual.sum(axis=0)])


def low_rank_rows(seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """60 unit rows in 40 dimensions spanning only 12: the row-space fit's case."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 12)) @ rng.standard_normal((12, 40))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.repeat(np.arange(3), 20)


def test_the_fit_reaches_the_optimum_of_the_full_problem() -> None:
    x, y = low_rank_rows()
    w, b = fit_logistic(x, y, 3)
    assert w.shape == (40, 3) and b.shape == (3,)
    assert np.abs(objective_gradient(x, y, w, b)).max() < 1e-8


def test_batched_fits_equal_fits_on_each_problems_rows_alone() -> None:
    x, y = low_rank_rows()
    masks = [np.arange(60) % 5 != fold for fold in range(3)] + [np.ones(60, dtype=bool)]
    together = fit_logistic_many(x, y, 3, masks)
    for mask, (w, b) in zip(masks, together, strict=True):
        alone_w, alone_b = fit_logistic(x[mask], y[mask], 3)
        assert np.allclose(x @ w + b, x @ alone_w + alone_b, atol=1e-7)
