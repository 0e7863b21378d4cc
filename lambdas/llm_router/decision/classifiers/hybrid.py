"""Hybrid classification: the semantic router decides when it is confident, the LLM otherwise.

Semantic routing costs one embedding and answers in tens of milliseconds; the classifier LLM is
slower and dearer but reads questions the reference prompts do not cover. The hybrid pays for the
LLM only on the questions whose semantic decision falls below the fitted ``hybrid`` thresholds.
The response says which path decided and why.

Each half backs the other up: when the embedding model fails, the classifier LLM decides; when
the classifier LLM fails on an escalated question, the semantic decision stands. Either way the
decision carries ``degraded`` with the reason. Only when both fail does the failure propagate (the
core then uses the default category).
"""

from __future__ import annotations

from dataclasses import replace

from ...models.bedrock import BedrockFailure
from ...models.request_context import DeadlineExceeded
from ..classification import Classification
from .llm import LlmClassifier
from .semantic import SemanticClassifier

_CLASSIFIER_FAILURES = (BedrockFailure, DeadlineExceeded)


def _code(exc: Exception) -> str:
    return exc.code if isinstance(exc, BedrockFailure) else type(exc).__name__


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
        try:
            first = self._semantic.classify(question)
        except _CLASSIFIER_FAILURES as exc:
            second = self._llm.classify(question)  # if this fails too, the core degrades
            return replace(
                second,
                model_id=self.model_id,
                details={
                    **second.details,
                    "decided_by": "llm",
                    "escalated": True,
                    "classifier_LLM": second.model_id,
                    "why": "the embedding model failed, so the classifier LLM decided",
                },
                degraded=f"embedding failed: {_code(exc)}",
            )
        if first.details["confident"]:
            details = {
                **first.details,
                "decided_by": "semantic",
                "escalated": False,
                "why": (
                    f"similarity {first.details['top_similarity']:.3f} and margin "
                    f"{first.details['margin']:.3f} clear the hybrid thresholds"
                ),
            }
            return replace(first, details=details)
        try:
            second = self._llm.classify(question)
        except _CLASSIFIER_FAILURES as exc:
            return replace(
                first,
                details={
                    **first.details,
                    "decided_by": "semantic",
                    "escalated": True,
                    "why": "the semantic decision was not confident and the classifier LLM "
                    "failed, so the semantic decision stands",
                },
                degraded=f"classification failed: {_code(exc)}",
            )
        details = {
            "decided_by": "llm",
            "escalated": True,
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
            embedding=first.embedding,
        )
