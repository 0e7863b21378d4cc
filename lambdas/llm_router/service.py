"""The routing core: classify a question, answer it with its category's model, shape the response.

Every edge — the Lambda handler, the local API server, the evaluation script — calls
:class:`RouterService`, so the decision and the response are the same wherever the router runs.
"""

from __future__ import annotations

import time
from typing import Any

from .answering import Answer, ConverseAnswerer
from .classification import Classification, Classifier
from .config import RoutesConfig


def shape_response(
    classifier: Classifier, classification: Classification, answer: Answer, total_seconds: float
) -> dict[str, Any]:
    """The original sample's fields, with their names, plus token usage and routing details."""
    routing: dict[str, Any] = {
        "strategy": classifier.strategy,
        "fallback_to_default": classification.used_fallback,
        **classification.details,
    }
    if classification.fallback_reason:
        routing["fallback_reason"] = classification.fallback_reason
    if answer.invoked_model_id != answer.requested_model_id:
        routing["answerer_requested"] = answer.requested_model_id
    return {
        "answer": answer.text,
        "question_classification": classification.category,
        classifier.model_field: classification.model_id,
        "classification_time": round(classification.seconds, 6),
        "answerer_LLM": answer.invoked_model_id,
        "answer_generation_time": round(answer.seconds, 6),
        "total_response_time": round(total_seconds, 6),
        "usage": {
            "classification": classification.usage.as_dict() if classification.usage else None,
            "answer": answer.usage.as_dict(),
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

    def classify(self, question: str) -> Classification:
        """The routing decision alone (no answer): what evaluation measures."""
        return self.classifier.classify(question)

    def ask(self, question: str) -> dict[str, Any]:
        started = time.perf_counter()
        classification = self.classifier.classify(question)
        answer = self.answerer.answer(
            question, self.config.answerer_for(classification.category)
        )
        return shape_response(
            self.classifier, classification, answer, time.perf_counter() - started
        )
