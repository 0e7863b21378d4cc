"""The routing core: classify a question, answer it with its category's model, shape the response.

Every edge — the Lambda handler, the local API server, the evaluation script — calls
:class:`RouterService`, so the decision and the response are the same wherever the router runs.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from .answering import Answer, ConverseAnswerer
from .classification import Classification, Classifier
from .config import OUT_OF_SCOPE, RoutesConfig


class UnknownCategory(ValueError):
    """The caller named a category that is not configured (static routing)."""


def shape_response(
    classifier: Classifier,
    classification: Classification,
    answer: Answer | None,
    answer_text: str,
    total_seconds: float,
) -> dict[str, Any]:
    """The original sample's fields, with their names, plus token usage and routing details.

    ``answer`` is None when the question was declined: no answer model was called.
    """
    routing: dict[str, Any] = {
        "strategy": classifier.strategy,
        "fallback_to_default": classification.used_fallback,
        "declined": answer is None,
        **classification.details,
    }
    if classification.fallback_reason:
        routing["fallback_reason"] = classification.fallback_reason
    if answer and answer.invoked_model_id != answer.requested_model_id:
        routing["answerer_requested"] = answer.requested_model_id
    return {
        "answer": answer_text,
        "question_classification": classification.category,
        classifier.model_field: classification.model_id,
        "classification_time": round(classification.seconds, 6),
        "answerer_LLM": answer.invoked_model_id if answer else None,
        "answer_generation_time": round(answer.seconds, 6) if answer else 0.0,
        "total_response_time": round(total_seconds, 6),
        "usage": {
            "classification": [u.as_dict() for u in classification.usages],
            "answer": answer.usage.as_dict() if answer else None,
        },
        "routing": routing,
    }


class RouterService:
    def __init__(
        self, config: RoutesConfig, classifier: Classifier, answerer: ConverseAnswerer
    ) -> None:
        self.config = config
        self.classifier = classifier
        self.answerer = answerer

    @property
    def strategy(self) -> str:
        return self.classifier.strategy

    def static_classification(self, category: str) -> Classification:
        """The caller named the category: validate it and skip classification (no cost)."""
        if category not in self.config.categories:
            raise UnknownCategory(
                f"unknown category {category!r}; valid categories: "
                f"{', '.join(self.config.category_names)}"
            )
        return Classification(category, None, 0.0, (), {"decided_by": "caller"})

    def resolve_out_of_scope(self, classification: Classification) -> Classification:
        """Apply the configured out-of-scope action: keep the decline, or use the default."""
        if classification.category != OUT_OF_SCOPE or self.config.out_of_scope.action == "decline":
            return classification
        default = self.config.default_category
        return replace(
            classification,
            category=default,
            details={**classification.details, "out_of_scope": True},
            fallback_reason=(
                f"the question matched no category; out_of_scope.action is 'default', so it "
                f"went to the default category {default!r}"
            ),
        )

    def decide(self, question: str, category: str | None = None) -> Classification:
        """The routing decision ``ask`` acts on (a category, or OUT_OF_SCOPE to decline)."""
        if category is not None:
            return self.static_classification(category)
        return self.resolve_out_of_scope(self.classifier.classify(question))

    def ask(self, question: str, category: str | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        classification = self.decide(question, category)
        if classification.category == OUT_OF_SCOPE:
            return shape_response(
                self.classifier,
                classification,
                None,
                self.config.out_of_scope.decline_message,
                time.perf_counter() - started,
            )
        answer = self.answerer.answer(question, self.config.answerer_for(classification.category))
        return shape_response(
            self.classifier, classification, answer, answer.text, time.perf_counter() - started
        )
