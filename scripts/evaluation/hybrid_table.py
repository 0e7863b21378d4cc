"""The hybrid router per escalation threshold on a dataset (``evaluate.py --hybrid-table``).

Reported, never fitted on: the escalation rate, the final accuracy, false refusals, off-topic
declined, the fit's objective (F x false-refusal rate + leak rate) and the monthly cost, for each
``hybrid.min_probability`` of ``head_fit.ESCALATION_GRID``, so a reader sees what the fitted
threshold trades. The semantic and llm-assisted routers each decide every question once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from llm_router.config import OUT_OF_SCOPE, RoutesConfig
from llm_router.decision.routing_policy import parse_routing
from llm_router.pipeline.factory import build_service

from evaluation.dataset import EvaluationError
from evaluation.decisions import decide
from evaluation.head_fit import hybrid_rows
from evaluation.metrics import OTHER, summarise
from evaluation.monthly_cost import monthly_cost


def hybrid_table(
    config: RoutesConfig, backend: Any, index_dir: Path, rows: Sequence[dict[str, str]]
) -> list[dict[str, Any]]:
    """Per escalation threshold on ``rows``: the hybrid's rates and monthly cost.

    Both halves decide every question once (the head's probabilities come with the semantic
    decision), then each threshold picks, per question, the semantic decision or the LLM's.
    """
    semantic = decide(
        build_service("semantic", config, backend.client, index_dir, backend.embedding_source),
        rows,
    )
    llm = decide(build_service("llm-assisted", config, backend.client), rows)
    classes = [*config.category_names, OUT_OF_SCOPE]
    probabilities = [o.details.get("probabilities") for o in semantic]
    if any(p is None for p in probabilities):
        raise EvaluationError("--hybrid-table needs the head (semantic.decision: head)")
    matrix = np.array([[p.get(c, 0.0) for c in classes] for p in probabilities])
    labels = np.array([OUT_OF_SCOPE if r["label"] == OTHER else r["label"] for r in rows], object)
    table = hybrid_rows(
        matrix,
        np.array([o.decision for o in semantic], dtype=object),
        np.array([o.decision for o in llm], dtype=object),
        labels,
        parse_routing(config).false_refusal_cost,
    )
    top = matrix.max(axis=1)
    for row in table:
        outcomes = [
            s if t >= row["min_probability"] else replace(m, escalated=True)
            for s, m, t in zip(semantic, llm, top, strict=True)
        ]
        outcomes = [replace(o, escalated=bool(o.escalated)) for o in outcomes]
        summary = summarise(outcomes, config.category_names)
        row["monthly_cost"] = monthly_cost(summary, outcomes, "hybrid", config)["total"]
        row["out_of_scope_recall"] = summary["out_of_scope_recall"]
    return table


def render_hybrid_table(table: Sequence[dict[str, Any]]) -> str:
    lines = [
        "hybrid.min_probability  escalated  accuracy  false refusals  off-topic declined  "
        "F*FR+leak  monthly cost",
    ]
    for r in table:
        lines.append(
            f"{r['min_probability']:>22}  {r['escalation_rate'] * 100:>8.1f}%  "
            f"{r['accuracy'] * 100:>7.1f}%  {r['false_refusal_rate'] * 100:>13.1f}%  "
            f"{r['out_of_scope_recall'] * 100:>17.1f}%  {r['objective']:>9.3f}  "
            f"${r['monthly_cost']:>11,.2f}"
        )
    return "\n".join(lines)
