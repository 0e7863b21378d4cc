"""Routing quality figures from (label, decision) pairs: what ``scripts/evaluate.py`` reports.

Hand-written rather than scikit-learn's: the figures are few (accuracy, per-class precision and
recall, a confusion matrix, percentiles) and routing adds its own (a decline is an error for an
in-domain question and the right answer for an off-topic one; the hybrid's escalation rate), so
a dependency of ~100 MB would buy little.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from llm_router.config import OUT_OF_SCOPE

OTHER = "other"  # the dataset's label for off-topic questions


@dataclass(frozen=True)
class Outcome:
    """One evaluated question."""

    question: str
    label: str  # a category, or OTHER
    decision: str  # a category, or OUT_OF_SCOPE (declined)
    seconds: float  # classification time
    escalated: bool | None  # hybrid: decided by the LLM; None for other routers
    source: str = ""  # the dataset's ``source`` (e.g. an MMLU subject), "" when it has none
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def predicted(self) -> str:
        """The decision in the dataset's vocabulary (a decline is OTHER)."""
        return OTHER if self.decision == OUT_OF_SCOPE else self.decision


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def summarise(outcomes: Sequence[Outcome], categories: Sequence[str]) -> dict:
    """Every figure of the report, JSON-ready."""
    in_domain = [o for o in outcomes if o.label != OTHER]
    off_topic = [o for o in outcomes if o.label == OTHER]
    classes = [*categories, OTHER]
    confusion = Counter((o.label, o.predicted) for o in outcomes)
    per_class = {}
    for name in classes:
        true_positive = confusion[(name, name)]
        predicted = sum(confusion[(label, name)] for label in classes)
        actual = sum(confusion[(name, p)] for p in classes)
        per_class[name] = {
            "precision": _share(true_positive, predicted),
            "recall": _share(true_positive, actual),
            "support": actual,
        }
    escalations = [o.escalated for o in outcomes if o.escalated is not None]
    seconds = np.array([o.seconds for o in outcomes]) if outcomes else np.zeros(1)
    return {
        "n": len(outcomes),
        "n_in_domain": len(in_domain),
        "n_off_topic": len(off_topic),
        "accuracy": _share(sum(o.predicted == o.label for o in in_domain), len(in_domain)),
        "out_of_scope_recall": _share(sum(o.predicted == OTHER for o in off_topic), len(off_topic)),
        "false_refusal_rate": _share(sum(o.predicted == OTHER for o in in_domain), len(in_domain)),
        "escalation_rate": _share(sum(escalations), len(escalations)) if escalations else None,
        "per_class": per_class,
        "confusion": {label: {p: confusion[(label, p)] for p in classes} for label in classes},
        "classification_latency_ms": {
            "p50": round(float(np.percentile(seconds, 50)) * 1000, 2),
            "p95": round(float(np.percentile(seconds, 95)) * 1000, 2),
        },
        "errors": [
            {"question": o.question, "label": o.label, "predicted": o.predicted}
            for o in outcomes
            if o.predicted != o.label
        ],
    }
