"""The head's thresholds, fitted cost-aware on held-out reference-prompt predictions only.

The semantic head (``llm_router.classifiers.semantic.decide_by_head``) declines a question when
P(off-topic) reaches ``semantic.decline_probability`` (unless the question is ambiguous between
two categories, which is never declined); the hybrid escalates to the classifier LLM when the
head's largest probability is below ``hybrid.min_probability``. Both are chosen here from the
head's **out-of-fold** probabilities of the reference prompts (topic-held-out cross-validation,
computed at index-build time and stored in ``head.npz``): never from an evaluation set, and never
from the head's predictions on its own training rows, which would be far too sure.

The rule (issue 9): minimise ``F x false-refusal rate + leak rate``, F =
``routing.false_refusal_cost``, as rates so the fit set's mix does not matter. Ties go to the
higher (more lenient) decline threshold and, for the hybrid, to fewer escalations: an LLM call
must fix decisions to be worth it. The vectorised rule is checked against ``decide_by_head``
itself before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from llm_router.classifiers.semantic import decide_by_head
from llm_router.config import OUT_OF_SCOPE, RoutesConfig
from llm_router.linear_head import LinearHead
from llm_router.routing_policy import RoutingPolicy

DECLINE_GRID = np.round(np.arange(0.50, 0.996, 0.005), 3)
# 0 never escalates (every probability clears it); the rest escalate ever more.
ESCALATION_GRID = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class HeadFitError(RuntimeError):
    """The head cannot be fitted (no out-of-fold predictions); the message says what to do."""


@dataclass(frozen=True)
class HeadFit:
    decline_probability: float
    hybrid_min_probability: float
    n: int
    semantic: dict  # false_refusal_rate, leak_rate, objective at the chosen threshold
    decline_table: list[dict]  # per decline threshold: the same three
    hybrid_table: list[dict]  # per escalation threshold: escalation_rate, accuracy, objective


def head_decisions(
    probabilities: np.ndarray, classes: Sequence[str], policy: RoutingPolicy,
    config: RoutesConfig, decline_probability: float,
) -> np.ndarray:
    """The head's decision per row (a category or OUT_OF_SCOPE), as ``decide_by_head`` makes it."""
    p = np.asarray(probabilities)
    cats = [i for i, c in enumerate(classes) if c != OUT_OF_SCOPE]
    off = classes.index(OUT_OF_SCOPE)
    ranked = np.array(cats)[np.argsort(-p[:, cats], axis=1, kind="stable")]
    rows = np.arange(len(p))
    best = np.array(classes, dtype=object)[ranked[:, 0]]
    ambiguous = p[rows, ranked[:, 1]] >= policy.ambiguous_min_probability
    declined = ~ambiguous & (p[:, off] >= decline_probability)
    out = np.where(declined, OUT_OF_SCOPE, best).astype(object)
    out[ambiguous] = policy.ambiguous_category(config)
    return out


def rates(decisions: np.ndarray, labels: np.ndarray, cost: float) -> dict:
    """False-refusal rate, leak rate, in-domain accuracy and ``cost x FR + leak``."""
    in_domain = labels != OUT_OF_SCOPE
    fr = float(np.mean(decisions[in_domain] == OUT_OF_SCOPE))
    leak = float(np.mean(decisions[~in_domain] != OUT_OF_SCOPE)) if (~in_domain).any() else 0.0
    return {
        "false_refusal_rate": round(fr, 4),
        "leak_rate": round(leak, 4),
        "accuracy": round(float(np.mean(decisions[in_domain] == labels[in_domain])), 4),
        "objective": round(cost * fr + leak, 4),
    }


def hybrid_rows(
    probabilities: np.ndarray, semantic: np.ndarray, llm: np.ndarray, labels: np.ndarray,
    cost: float, grid: Sequence[float] = ESCALATION_GRID,
) -> list[dict]:
    """Per escalation threshold: escalation rate and the final decisions' rates.

    Used for the fit (reference prompts) and for the report on a dataset (``evaluate.py
    --hybrid-table``): the semantic decision stands where the head's top probability reaches the
    threshold, the LLM's elsewhere.
    """
    top = np.asarray(probabilities).max(axis=1)
    table = []
    for threshold in grid:
        confident = top >= threshold
        final = np.where(confident, semantic, llm)
        table.append(
            {"min_probability": threshold, "escalation_rate": round(float(np.mean(~confident)), 4),
             **rates(final, labels, cost)}
        )
    return table


def fit_head(
    head: LinearHead, config: RoutesConfig, policy: RoutingPolicy, llm_decisions: Sequence[str],
) -> HeadFit:
    """Both thresholds from ``head``'s out-of-fold probabilities; ``llm_decisions`` are the
    classifier LLM's on the same reference prompts, in ``config.reference_prompts()`` order."""
    if head.oof_probabilities is None or head.oof_labels is None:
        raise HeadFitError("the index's head has no out-of-fold predictions: rebuild the index")
    p, classes = head.oof_probabilities, list(head.classes)
    labels = np.array([classes[i] for i in head.oof_labels], dtype=object)
    if len(llm_decisions) != len(labels):
        raise HeadFitError(
            f"{len(llm_decisions)} classifier decisions for {len(labels)} reference prompts"
        )
    cost = policy.false_refusal_cost
    table = []
    for threshold in DECLINE_GRID:
        decisions = head_decisions(p, classes, policy, config, float(threshold))
        table.append({"decline_probability": float(threshold), **rates(decisions, labels, cost)})
    chosen = min(table, key=lambda r: (r["objective"], -r["decline_probability"]))
    decline = chosen["decline_probability"]
    semantic = head_decisions(p, classes, policy, config, decline)
    fitted = RoutingPolicy(**{**policy.__dict__, "decline_probability": decline})
    for row, expected in zip(p, semantic, strict=True):  # the vectorised rule == decide_by_head
        actual = decide_by_head(dict(zip(classes, map(float, row), strict=True)), fitted, config)
        if actual["category"] != expected:
            raise AssertionError(f"fit and decide_by_head disagree: {actual!r} != {expected!r}")
    hybrid = hybrid_rows(p, semantic, np.array(llm_decisions, dtype=object), labels, cost)
    best_hybrid = min(hybrid, key=lambda r: (r["objective"], r["escalation_rate"]))
    return HeadFit(
        decline_probability=decline,
        hybrid_min_probability=best_hybrid["min_probability"],
        n=len(labels),
        semantic=chosen,
        decline_table=table,
        hybrid_table=hybrid,
    )


def write_head_thresholds(routes_file: Path, fitted: HeadFit) -> None:
    """Store the two thresholds in routes.json (read-modify-write of those keys only)."""
    raw = json.loads(routes_file.read_text(encoding="utf-8"))
    raw.setdefault("semantic", {})["decline_probability"] = fitted.decline_probability
    raw.setdefault("hybrid", {})["min_probability"] = fitted.hybrid_min_probability
    routes_file.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
