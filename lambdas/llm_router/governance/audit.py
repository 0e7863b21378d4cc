"""The audit record of one request: the one dict telemetry turns into metrics and the audit line.

Built by the handler from whatever the request ended in (a response body, an error, a bad
request) and the request context (tier, attempts, breakers opened), so that every request, the
failed ones included, is counted the same way. The question and answer texts are put in the
record; :mod:`llm_router.observability.telemetry` drops them unless ``logging.include_text`` is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models.request_context import RequestContext

# Error codes (llm_router.errors) by the outcome they count as.
_OUTCOME_BY_CODE = {
    "bad_request": "bad_request",
    "unknown_category": "bad_request",
    "category_not_allowed": "bad_request",
    "over_budget": "over_budget",
    "deadline_exceeded": "deadline_exceeded",
    "models_unavailable": "unavailable",
    "router_unavailable": "unavailable",
}
SCORE_KEYS = ("label_similarity", "label_probability", "probabilities")


def _scores(routing: Mapping[str, Any]) -> dict[str, float]:
    for key in SCORE_KEYS:
        value = routing.get(key)
        if isinstance(value, Mapping):
            return {str(k): v for k, v in value.items() if isinstance(v, int | float)}
    return {}


def audit_record(
    *,
    request_id: str | None,
    strategy: str,
    tier: str | None,
    status: int,
    body: Mapping[str, Any],
    context: RequestContext | None,
    question: str | None = None,
    total_seconds: float | None = None,
) -> dict[str, Any]:
    """The contract's audit record for a response ``body`` with ``status``."""
    routing = body.get("routing") if status == 200 else None
    usage = body.get("usage") if status == 200 else None
    attempts = [a.as_dict() for a in context.attempts] if context else []
    if routing is not None:
        outcome = "declined" if routing.get("declined") else "answered"
    else:
        outcome = _OUTCOME_BY_CODE.get(str(body.get("code")), "error")
    record: dict[str, Any] = {
        "request_id": request_id,
        "tier": tier,
        "strategy": strategy,
        "status": status,
        "outcome": outcome,
        "error_code": body.get("code") if status != 200 else None,
        "degraded": routing.get("degraded") if routing else None,
        "fallback_used": bool(routing and routing.get("fallback_used")),
        "category": body.get("question_classification") if routing else None,
        "decided_by": routing.get("decided_by") if routing else None,
        "escalated": bool(routing and routing.get("escalated")),
        "answer_target": routing.get("answer_target") if routing else None,
        "targets_tried": attempts,
        "breaker_opened": list(context.breaker_opened) if context else [],
        "classification_seconds": body.get("classification_time"),
        "answer_seconds": body.get("answer_generation_time"),
        "total_seconds": body.get("total_response_time", total_seconds),
        "usage": _usage(usage),
        "cost_usd": usage["cost_usd"]["total"] if usage else None,
        "budget_level": routing.get("budget", "off") if routing else "off",
        "cache": routing.get("cache") if routing else None,
        "cache_saved_usd": routing.get("cache_saved_usd") if routing else None,
        "scores": _scores(routing) if routing else {},
    }
    if question is not None:
        record["question"] = question
    if routing is not None:
        record["answer"] = body.get("answer")
    return record


def _usage(usage: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every billed call as {model_id, stage, input_tokens, output_tokens, cost_usd}."""
    if not usage:
        return []
    calls = [{**call, "stage": "classification"} for call in usage.get("classification", [])]
    if usage.get("answer"):
        calls.append({**usage["answer"], "stage": "answer"})
    return calls
