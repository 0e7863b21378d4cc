"""Choose the semantic and hybrid thresholds from labelled questions, and write them to routes.json.

The semantic decision (``llm_router.decision.classifiers.semantic.decide``) declines a question
when the
off-topic references win the vote, when the winner's best similarity is below its category's
``min_similarity``, or when it leads the best off-topic reference by less than ``min_margin``; the
hybrid escalates to the LLM when the best similarity is below ``hybrid.min_similarity`` or the
lead over the runner-up label is below ``hybrid.min_margin``. Each question's neighbours are
computed once; a grid of thresholds is then scored in numpy (the rule above, vectorised), and the
result is checked against ``decide`` itself before it is written.

Objectives (the issue's floors, with headroom):

* semantic: the highest off-topic recall whose false-refusal rate is at most ``max_false_refusal``
  (declining an in-domain question costs the user an answer; declining off-topic saves money);
* hybrid: the fewest wrong final decisions (the semantic decision where it is confident, the
  classifier LLM's elsewhere, both measured on the same questions), then the lowest escalation
  rate, with at most ``max_escalation`` of the questions escalated. Where the LLM is no better
  than the semantic router on the uncertain questions, this escalates little or nothing, as it
  should: the hybrid is worth its LLM calls only where they fix decisions.

Without a dataset the fit uses the reference prompts themselves, leave-one-out: each prompt is
classified by the others, which approximates questions the index has never seen without using any
evaluation data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from llm_router.config import OUT_OF_SCOPE, RoutesConfig, SemanticThresholds
from llm_router.decision.classifiers.semantic import Neighbours, SemanticClassifier, decide

from evaluation.metrics import OTHER

SIMILARITY_GRID = np.round(np.arange(0.0, 0.71, 0.01), 2)
MARGIN_GRID = np.round(np.arange(0.0, 0.31, 0.01), 2)
# The hybrid may also never escalate: a lead of -1 is cleared by every decision (similarities of
# normalised vectors differ by less than that in practice), so "the LLM only adds errors" can win.
NEVER_ESCALATE = -1.0
HYBRID_MARGIN_GRID = np.concatenate(([NEVER_ESCALATE], MARGIN_GRID))


@dataclass(frozen=True)
class Sample:
    question: str
    label: str  # a category or OUT_OF_SCOPE
    neighbours: Neighbours


@dataclass(frozen=True)
class FitResult:
    thresholds: SemanticThresholds
    source: str
    n: int
    semantic: dict
    hybrid: dict


def leave_one_out_samples(semantic: SemanticClassifier, config: RoutesConfig) -> list[Sample]:
    """Every reference prompt, classified by all the others."""
    samples = []
    for label, prompt in config.reference_prompts():
        neighbours, _ = semantic.neighbours(prompt, extra=1)
        kept = [(row, score) for row, score in neighbours if row.prompt != prompt]
        samples.append(Sample(prompt, label, kept))
    return samples


def dataset_samples(semantic: SemanticClassifier, rows: Iterable[dict]) -> list[Sample]:
    """Labelled questions ({"question", "label"}; label ``other`` = off-topic)."""
    return [
        Sample(
            row["question"],
            OUT_OF_SCOPE if row["label"] == OTHER else row["label"],
            semantic.neighbours(row["question"])[0],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class _Features:
    """Per sample, what the threshold rules read, from ``decide`` with all thresholds at zero."""

    labels: np.ndarray
    winners: np.ndarray
    top: np.ndarray
    oos_lead: np.ndarray  # top - best off-topic similarity (inf when none was read)
    margin: np.ndarray  # top - runner-up label's best similarity


def _features(samples: Sequence[Sample], config: RoutesConfig) -> _Features:
    zero = _with(config, SemanticThresholds({c: 0.0 for c in config.categories}, 0.0, 0.0, 0.0))
    details = [decide(s.neighbours, config.semantic_k, zero) for s in samples]
    return _Features(
        labels=np.array([s.label for s in samples]),
        winners=np.array([d["category"] for d in details]),
        top=np.array([d["top_similarity"] for d in details]),
        oos_lead=np.array(
            [
                d["top_similarity"] - d["label_similarity"].get(OUT_OF_SCOPE, -np.inf)
                for d in details
            ]
        ),
        margin=np.array([d["margin"] for d in details]),
    )


def _with(config: RoutesConfig, thresholds: SemanticThresholds) -> RoutesConfig:
    return replace(config, thresholds=thresholds)


def _decisions(f: _Features, min_similarity: dict[str, float], min_margin: float) -> np.ndarray:
    floor = np.array([min_similarity.get(w, 0.0) for w in f.winners])
    declined = (f.winners == OUT_OF_SCOPE) | (f.top < floor) | (f.oos_lead < min_margin)
    return np.where(declined, OUT_OF_SCOPE, f.winners)


def _rates(f: _Features, decisions: np.ndarray) -> dict:
    in_domain = f.labels != OUT_OF_SCOPE
    off_topic = ~in_domain
    return {
        "accuracy": float(np.mean(decisions[in_domain] == f.labels[in_domain])),
        "false_refusal_rate": float(np.mean(decisions[in_domain] == OUT_OF_SCOPE)),
        "out_of_scope_recall": (
            float(np.mean(decisions[off_topic] == OUT_OF_SCOPE)) if off_topic.any() else None
        ),
    }


def fit_semantic(f: _Features, categories: Sequence[str], max_false_refusal: float) -> tuple:
    """Per-category similarity floors and the off-topic margin (coordinate ascent on the grid)."""
    best_sim = {c: 0.0 for c in categories}
    best_margin = 0.0

    def score(sim: dict[str, float], margin: float) -> tuple[float, float] | None:
        rates = _rates(f, _decisions(f, sim, margin))
        if rates["false_refusal_rate"] > max_false_refusal:
            return None
        # More off-topic recall first, then fewer refusals, then the more lenient thresholds.
        return (rates["out_of_scope_recall"] or 0.0, -rates["false_refusal_rate"])

    current = score(best_sim, best_margin)
    for _ in range(3):  # a few sweeps settle it
        for margin in MARGIN_GRID:
            candidate = score(best_sim, float(margin))
            if candidate and candidate > current:
                current, best_margin = candidate, float(margin)
        for category in categories:
            for value in SIMILARITY_GRID:
                trial = {**best_sim, category: float(value)}
                candidate = score(trial, best_margin)
                if candidate and candidate > current:
                    current, best_sim = candidate, trial
    return best_sim, best_margin, _rates(f, _decisions(f, best_sim, best_margin))


def fit_hybrid(
    f: _Features, decisions: np.ndarray, llm_decisions: np.ndarray, max_escalation: float
) -> tuple[float, float, float, float]:
    """(min_similarity, min_margin, escalation rate, error rate) of the chosen confidence rule."""
    best: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    best_key: tuple[float, float] | None = None
    for sim in SIMILARITY_GRID:
        for margin in HYBRID_MARGIN_GRID:
            confident = (f.top >= sim) & (f.margin >= margin)
            escalation = float(np.mean(~confident))
            if escalation > max_escalation:
                continue
            final = np.where(confident, decisions, llm_decisions)
            error = float(np.mean(final != f.labels))
            if best_key is None or (error, escalation) < best_key:
                best_key, best = (error, escalation), (float(sim), float(margin), escalation, error)
    return best


def fit(
    samples: Sequence[Sample],
    config: RoutesConfig,
    source: str,
    llm_decisions: Sequence[str],
    max_false_refusal: float = 0.005,
    max_escalation: float = 0.2,
) -> FitResult:
    """Fit every threshold; ``llm_decisions`` are the classifier LLM's, one per sample."""
    f = _features(samples, config)
    categories = config.category_names
    sim, margin, semantic_rates = fit_semantic(f, categories, max_false_refusal)
    decisions = _decisions(f, sim, margin)
    hybrid_sim, hybrid_margin, escalation, error = fit_hybrid(
        f, decisions, np.array(llm_decisions), max_escalation
    )
    thresholds = SemanticThresholds(sim, margin, hybrid_sim, hybrid_margin)
    fitted = _with(config, thresholds)
    for sample, expected in zip(samples, decisions, strict=True):  # the vectorised rule == decide
        actual = decide(sample.neighbours, config.semantic_k, fitted)["category"]
        if actual != expected:
            raise AssertionError(f"fit and decide disagree: {actual!r} != {expected!r}")
    return FitResult(
        thresholds,
        source,
        len(samples),
        semantic_rates,
        {"escalation_rate": escalation, "error_rate": error},
    )


def write_thresholds(routes_file: Path, thresholds: SemanticThresholds) -> None:
    """Store the thresholds in routes.json, keeping everything else as it is."""
    raw = json.loads(routes_file.read_text(encoding="utf-8"))
    raw["semantic"]["min_similarity"] = dict(thresholds.min_similarity)
    raw["semantic"]["min_margin"] = thresholds.min_margin
    raw.setdefault("hybrid", {})
    raw["hybrid"]["min_similarity"] = thresholds.hybrid_min_similarity
    raw["hybrid"]["min_margin"] = thresholds.hybrid_min_margin
    routes_file.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
