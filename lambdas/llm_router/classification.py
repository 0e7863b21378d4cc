"""What every classifier returns, so the core and the response never depend on which one ran."""

from __future__ import annotations

from dataclasses import field
from typing import Any, Protocol

from .records import record


@record(frozen=True)
class ModelUsage:
    """Tokens one model call consumed, as Bedrock reported them."""

    model_id: str
    input_tokens: int
    output_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@record(frozen=True)
class Classification:
    category: str
    model_id: str | None  # reported as classifier_LLM or embedding_LLM; None if none ran
    seconds: float
    usages: tuple[ModelUsage, ...]  # every model call the decision made
    details: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None  # set when the default category was used instead
    degraded: str | None = None  # why a classifier failed and a fallback decision was used

    @property
    def used_fallback(self) -> bool:
        return self.fallback_reason is not None


class Classifier(Protocol):
    strategy: str
    model_field: str  # "classifier_LLM" or "embedding_LLM"

    @property
    def model_id(self) -> str: ...

    def classify(self, question: str) -> Classification: ...
