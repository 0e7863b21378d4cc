"""The response body of an answered or declined request: the original sample's fields, with
their names (``answer``, ``question_classification``, ``classifier_LLM`` or ``embedding_LLM``,
``classification_time``, ``answerer_LLM``, ``answer_generation_time``, ``total_response_time``),
plus usage, cost and the routing details the response policy allows.

Apart from :mod:`llm_router.pipeline.service` because it is the contract with callers, not the
pipeline: what a client reads, whatever path (model, cache, stream) produced the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import RoutesConfig
from ..decision.classification import Classification, Classifier, ModelUsage
from ..governance.pricing import cost_usd
from ..models.answering import Answer
from ..models.request_context import RequestContext, current

# Details only ``response.routing_details = "full"`` shows: the reference prompts a question is
# near, which would help someone shape adversarial input.
FULL_ONLY_DETAILS = frozenset({"neighbours", "votes"})
_COST_DIGITS = 10


def summarize(details: Mapping[str, Any], level: str) -> dict[str, Any]:
    """The decision details the response policy allows (nested dicts filtered too)."""
    if level == "full":
        return dict(details)
    return {
        key: summarize(value, level) if isinstance(value, Mapping) else value
        for key, value in details.items()
        if key not in FULL_ONLY_DETAILS
    }


def usage_with_cost(usage: ModelUsage, config: RoutesConfig) -> dict[str, Any]:
    cost = cost_usd(config, usage.model_id, usage.input_tokens, usage.output_tokens)
    return {**usage.as_dict(), "cost_usd": None if cost is None else round(cost, _COST_DIGITS)}


def total_cost(costs: Sequence[float | None]) -> float | None:
    """The sum, or None when any part is unknown: an unknown price is never counted as zero."""
    if any(c is None for c in costs):
        return None
    return round(sum(c for c in costs if c is not None), _COST_DIGITS)


def shape_response(
    classifier: Classifier,
    classification: Classification,
    answer: Answer | None,
    answer_text: str,
    total_seconds: float,
    config: RoutesConfig,
    context: RequestContext | None = None,
    extra_routing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The original sample's fields, with their names, plus usage, cost and routing details.

    ``answer`` is None when the question was declined: no answer model was called.
    """
    context = context or current()
    details = summarize(classification.details, config.response.routing_details)
    routing: dict[str, Any] = {
        "strategy": classifier.strategy,
        "fallback_to_default": classification.used_fallback,
        "declined": answer is None,
        "degraded": classification.degraded,
        "fallback_used": bool(answer and answer.fallback_used),
        "answer_target": answer.requested_model_id if answer else None,
        "tier": context.tier or config.default_tier,
        "targets": [attempt.as_dict() for attempt in context.attempts],
        **details,
        **(extra_routing or {}),
    }
    if classification.fallback_reason:
        routing["fallback_reason"] = classification.fallback_reason
    if answer and answer.invoked_model_id != answer.requested_model_id:
        routing["answerer_requested"] = answer.requested_model_id
    classification_usage = [usage_with_cost(u, config) for u in classification.usages]
    answer_usage = usage_with_cost(answer.usage, config) if answer else None
    call_costs = [u["cost_usd"] for u in classification_usage]
    if answer_usage:
        call_costs.append(answer_usage["cost_usd"])
    return {
        "answer": answer_text,
        "question_classification": classification.category,
        classifier.model_field: classification.model_id,
        "classification_time": round(classification.seconds, 6),
        "answerer_LLM": answer.invoked_model_id if answer else None,
        "answer_generation_time": round(answer.seconds, 6) if answer else 0.0,
        "total_response_time": round(total_seconds, 6),
        "request_id": context.request_id,
        "usage": {
            "classification": classification_usage,
            "answer": answer_usage,
            "cost_usd": {
                "classification": [u["cost_usd"] for u in classification_usage],
                "answer": answer_usage["cost_usd"] if answer_usage else None,
                "total": total_cost(call_costs),
            },
        },
        "routing": routing,
    }
