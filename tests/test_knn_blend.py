"""The semantic decision's nearest-neighbour evidence (``semantic.knn_weight``): the head's
probabilities blended with the vote of the k nearest reference prompts, the setting's validation,
and the fit that chooses the weight from the reference prompts' out-of-fold predictions."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import STANDIN_SOURCE
from evaluation.head_fit import (
    HeadFitError,
    fit_head,
    fit_knn_weight,
    reference_votes,
    write_head_thresholds,
)
from llm_router.config import OUT_OF_SCOPE, ConfigError, RoutesConfig, load_routes, parse_routes
from llm_router.decision.classifiers.semantic import SemanticClassifier, head_probabilities
from llm_router.decision.embeddings import TitanEmbedder
from llm_router.decision.linear_head import (
    LinearHead,
    blend,
    out_of_fold_votes,
    train_head,
    vote_shares,
)
from llm_router.decision.routing_policy import DEFAULT_KNN_WEIGHT, MAX_KNN_WEIGHT, parse_routing
from llm_router.decision.semantic_index import load_index

pytestmark = pytest.mark.generic

QUESTIONS = (
    "What is the capital of France?",
    "Can you help me with this?",
    "Tell me a joke about cats.",
)


def with_semantic(routes: RoutesConfig, **semantic: object) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    raw["semantic"] = {**raw["semantic"], **semantic}
    return parse_routes(raw)


def classifier(routes: RoutesConfig, bedrock_client: Any, index_dir: Path) -> SemanticClassifier:
    index = load_index(index_dir, routes, STANDIN_SOURCE)
    return SemanticClassifier(TitanEmbedder(bedrock_client, routes.embedding), index, routes)


def probes(routes: RoutesConfig) -> list[str]:
    """A few reference prompts of each label and some questions of no label in particular."""
    prompts = [p for _, p in routes.reference_prompts()]
    return [*prompts[:: max(1, len(prompts) // 8)], *QUESTIONS]


@dataclass(frozen=True)
class Probe:
    """One probe's decision under a weight, beside what the blend is made of."""

    decision: Any
    head: Any
    own: dict[str, float]  # the head's probabilities alone
    neighbours: list[Any]
    vector: Any


def classified_probes(
    routes: RoutesConfig, bedrock_client: Any, index_dir: Path, weight: float
) -> Iterator[Probe]:
    config = with_semantic(routes, knn_weight=weight)
    semantic = classifier(config, bedrock_client, index_dir)
    head = semantic.head
    assert head is not None
    for question in probes(config):
        decision = semantic.classify(question)
        neighbours, embedding = semantic.neighbours(question)
        own = head.probability_of(embedding.vector)
        yield Probe(decision, head, own, neighbours, embedding.vector)


def test_weight_zero_is_the_head_exactly(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path
) -> None:
    k = routes.semantic_k
    for probe in classified_probes(routes, bedrock_client, semantic_index_dir, 0.0):
        assert probe.decision.details["probabilities"] == {
            label: round(p, 6) for label, p in probe.own.items()
        }
        assert "knn_weight" not in probe.decision.details
        blended = head_probabilities(probe.head, probe.vector, probe.neighbours, k, 0.0)
        assert blended == probe.own


def test_a_weight_blends_the_k_nearest_neighbours_vote(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path
) -> None:
    k = routes.semantic_k
    for probe in classified_probes(routes, bedrock_client, semantic_index_dir, 0.4):
        votes = {label: 0 for label in probe.head.classes}
        for row, _ in probe.neighbours[:k]:
            votes[row.category] += 1
        expected = {
            label: 0.6 * probe.own[label] + 0.4 * votes[label] / k for label in probe.head.classes
        }
        got = probe.decision.details["probabilities"]
        assert got == pytest.approx(expected, abs=2e-6)
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)
        assert probe.decision.details["knn_weight"] == 0.4


def test_blend_and_vote_shares() -> None:
    p = np.array([0.7, 0.2, 0.1])
    shares = vote_shares([2, 2, 0, 2, 1], 3)
    assert shares.tolist() == [0.2, 0.2, 0.6]
    assert blend(p, shares, 0.0) is p
    assert blend(p, shares, 0.5) == pytest.approx([0.45, 0.2, 0.35])


@pytest.mark.parametrize("value", [-0.1, MAX_KNN_WEIGHT + 0.05, 1.0, "0.3", True, float("nan")])
def test_an_invalid_weight_is_a_clear_config_error(routes: RoutesConfig, value: object) -> None:
    with pytest.raises(ConfigError, match=r"semantic\.knn_weight"):
        parse_routing(with_semantic(routes, knn_weight=value))


def test_the_default_weight_is_the_head_alone(routes: RoutesConfig) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    raw["semantic"].pop("knn_weight", None)
    assert parse_routing(parse_routes(raw)).knn_weight == DEFAULT_KNN_WEIGHT == 0.0


def test_out_of_fold_votes_never_read_the_rows_own_fold() -> None:
    # Rows 0 and 1 are the same point of class 0 and share a fold; every other row is class 1.
    x = np.vstack([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.3, 0.95]])
    y = np.array([0, 0, 1, 1, 1])
    folds = np.array([[0, 0, 1, 1, 1]])
    votes = out_of_fold_votes(x, y, folds, k=1, n_classes=2)
    assert votes[0, 0].tolist() == [0.0, 1.0]  # its twin is held out with it
    assert votes[0, 2].tolist() == [1.0, 0.0]  # the nearest other-fold row is class 0


def head_with_runs(runs: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> LinearHead:
    d = len(classes)
    return LinearHead(classes, np.zeros((4, d)), np.zeros(d), 1.0, 0.1, runs, y)


def labelled(routes: RoutesConfig, seed: int = 3) -> tuple[tuple[str, ...], np.ndarray]:
    classes = (*routes.category_names, OUT_OF_SCOPE)
    y = np.random.default_rng(seed).permutation(np.arange(120) % len(classes))
    return classes, y


def test_the_fit_weighs_in_votes_that_carry_information(routes: RoutesConfig) -> None:
    classes, y = labelled(routes)
    rng = np.random.default_rng(0)
    n, c = len(y), len(classes)
    # A calibrated head that is right 70% of the time; votes right 90% of the time.
    guess = np.where(rng.random(n) < 0.6, y, rng.integers(c, size=n))
    runs = np.full((2, n, c), 0.3 / (c - 1))
    runs[:, np.arange(n), guess] = 0.7
    voted = np.where(rng.random(n) < 0.9, y, rng.integers(c, size=n))
    votes = np.zeros((2, n, c))
    votes[:, np.arange(n), voted] = 1.0
    weight, table = fit_knn_weight(runs, votes, y)
    assert weight > 0.0
    assert min(table, key=lambda r: r["log_loss"])["knn_weight"] == weight
    # A head that is always right, and votes of no information: the head alone.
    sure = np.full((2, n, c), 0.1 / (c - 1))
    sure[:, np.arange(n), y] = 0.9
    noise = np.zeros((2, n, c))
    noise[:, np.arange(n), rng.integers(c, size=n)] = 1.0
    assert fit_knn_weight(sure, noise, y)[0] == 0.0


def test_fit_head_chooses_and_writes_the_weight(tmp_path: Path, routes: RoutesConfig) -> None:
    classes, y = labelled(routes)
    rng = np.random.default_rng(1)
    n, c = len(y), len(classes)
    runs = rng.dirichlet(np.ones(c), size=(3, n))  # an uninformed head
    votes = np.zeros((3, n, c))
    votes[:, np.arange(n), y] = 1.0  # neighbours that always know
    labels = [classes[i] for i in y]
    config = parse_routes(copy.deepcopy(dict(routes.raw)))
    policy = parse_routing(config)
    head = head_with_runs(runs, y, classes)
    fitted = fit_head(head, config, policy, labels, votes)
    assert fitted.knn_weight == MAX_KNN_WEIGHT
    assert fit_head(head, config, policy, labels).knn_weight == 0.0  # no votes: the head alone
    with pytest.raises(HeadFitError):
        fit_head(head, config, policy, labels, votes[:, :10])
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps(dict(routes.raw)), encoding="utf-8")
    write_head_thresholds(routes_file, fitted)
    assert parse_routing(load_routes(routes_file)).knn_weight == fitted.knn_weight


def test_the_fit_reads_the_reference_prompts_folds_from_the_index(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path
) -> None:
    semantic = classifier(routes, bedrock_client, semantic_index_dir)
    head = semantic.head
    assert head is not None and head.oof_folds is not None
    assert head.oof_folds.shape == head.oof_probabilities.shape[:2]
    votes = reference_votes(head, semantic.reference_vectors(), routes.semantic_k)
    assert votes.shape == head.oof_probabilities.shape
    assert np.allclose(votes.sum(axis=-1), 1.0)
    labels = [head.classes[i] for i in head.oof_labels]
    fitted = fit_head(head, routes, parse_routing(routes), labels, votes)
    assert 0.0 <= fitted.knn_weight <= MAX_KNN_WEIGHT
    assert [r["knn_weight"] for r in fitted.knn_table][0] == 0.0
    bare = LinearHead(head.classes, head.weights, head.bias, 1.0, 0.1, head.oof_probabilities,
                      head.oof_labels)
    with pytest.raises(HeadFitError, match="rebuild the index"):
        reference_votes(bare, semantic.reference_vectors(), routes.semantic_k)


def test_the_head_file_keeps_the_folds(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = np.vstack([np.eye(3, 8)[i] * 3 + 0.5 * rng.standard_normal((12, 8)) for i in range(3)])
    classes = ("a", "b", OUT_OF_SCOPE)
    head, _ = train_head(x, [c for c in classes for _ in range(12)], classes)
    head.save(tmp_path)
    loaded = LinearHead.load(tmp_path)
    assert loaded.oof_folds is not None and head.oof_folds is not None
    assert np.array_equal(loaded.oof_folds, head.oof_folds)
