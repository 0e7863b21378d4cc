"""Hybrid classification: the semantic router decides when it is confident, the LLM otherwise.

Semantic routing costs one embedding and answers in tens of milliseconds; the classifier LLM is
slower and dearer but reads questions the reference prompts do not cover. The hybrid pays for the
LLM only on the questions whose semantic decision falls below the fitted ``hybrid`` thresholds.
The response says which path decided and why.
"""

from __future__ import annotations

from dataclasses import replace

from ..classification import Classification
from .llm import LlmClassifier
from .semantic import SemanticClassifier


class HybridClassifier:
    strategy = "hybrid"
    model_field = "embedding_LLM"

    def __init__(self, semantic: SemanticClassifier, llm: LlmClassifier) -> None:
        self._semantic = semantic
        self._llm = llm

    @property
    def model_id(self) -> str:
        return self._semantic.model_id

    def classify(self, question: str) -> Classification:
        first = self._semantic.classify(question)
        if first.details["confident"]:
            details = {
                **first.details,
                "decided_by": "semantic",
                "why": (
                    f"similarity {first.details['top_similarity']:.3f} and margin "
                    f"{first.details['margin']:.3f} clear the hybrid thresholds"
                ),
            }
            return replace(first, details=details)
        second = self._llm.classify(question)
        details = {
            "decided_by": "llm",
            "why": (
                f"semantic decision {first.category!r} was not confident (similarity "
                f"{first.details['top_similarity']:.3f}, margin {first.details['margin']:.3f})"
            ),
            "semantic": {"category": first.category, **first.details},
            "classifier_LLM": second.model_id,
            **second.details,
        }
        return Classification(
            category=second.category,
            model_id=first.model_id,
            seconds=first.seconds + second.seconds,
            usages=first.usages + second.usages,
            details=details,
            fallback_reason=second.fallback_reason,
        )
