"""What every classifier returns, so the core and the response never depend on which one ran."""

from __future__ import annotations

from dataclasses import field
from typing import Any, Protocol

from ..models.usage import ModelUsage
from ..records import record

__all__ = ["Classification", "Classifier", "ModelUsage"]


@record(frozen=True)
class Classification:
    category: str
    model_id: str | None  # reported as classifier_LLM or embedding_LLM; None if none ran
    seconds: float
    usages: tuple[ModelUsage, ...]  # every model call the decision made
    details: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None  # set when the default category was used instead
    degraded: str | None = None  # why a classifier failed and a fallback decision was used
    # The routing text's embedding when the decision computed one (semantic, hybrid): the
    # semantic cache reuses it instead of embedding the question again.
    embedding: Any = field(default=None, compare=False, repr=False)

    @property
    def used_fallback(self) -> bool:
        return self.fallback_reason is not None


class Classifier(Protocol):
    strategy: str
    model_field: str  # "classifier_LLM" or "embedding_LLM"

    @property
    def model_id(self) -> str: ...

    def classify(self, question: str) -> Classification: ...
