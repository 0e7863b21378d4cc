"""Tokens a model call consumed: what pricing, budgets and the response count."""

from __future__ import annotations

from typing import Any

from ..records import record


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
