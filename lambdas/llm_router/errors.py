"""The errors a request can end in, each with a stable code and a fixed sentence for the caller.

A response names what failed in terms the caller can act on: the stable ``code``, the ``stage``,
the model id we called and Bedrock's error code. It never carries Bedrock's free-text message,
which can name the account id, role ARNs or endpoint URLs; the handler logs that under the
response's ``request_id``.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from .records import record

CIRCUIT_OPEN = "CircuitOpen"  # the code of an attempt skipped because its breaker is open

# code -> (HTTP status, short error phrase, what the caller should do)
ERRORS: dict[str, tuple[int, str, str]] = {
    "bad_request": (400, "bad request", "Fix the request as the error says and send it again."),
    "unknown_category": (
        400, "unknown category", "Name one of valid_categories, or leave category out.",
    ),
    "category_not_allowed": (
        400, "category not allowed", "This router decides the category itself; leave it out.",
    ),
    "conversation_not_found": (
        404, "conversation not found",
        "No conversation of yours has this conversation_id (it may have expired); leave it out "
        "to start a new one.",
    ),
    "over_budget": (
        429, "daily budget exhausted",
        "The router's daily spending limit is reached; retry after Retry-After seconds.",
    ),
    "invalid_feedback_token": (
        403, "invalid feedback token",
        "Send the feedback_token of the /ask response you give feedback on, with the same API "
        "key, before it expires.",
    ),
    "feedback_conflict": (
        409, "feedback belongs to another caller",
        "Feedback on this answer was already given with another API key.",
    ),
    "models_access_denied": (
        502, "model access denied",
        "The router's account may not call any model that could answer; retrying will not help "
        "until the operator grants model access (the logs name the models).",
    ),
    "model_error": (
        502, "model request failed",
        "A model rejected the request and retrying will not help; the operator can find the "
        "details in the logs under this request_id.",
    ),
    "models_unavailable": (
        503, "all answer targets unavailable",
        "Every model that could answer is unavailable or throttled; retry after Retry-After "
        "seconds.",
    ),
    "answer_interrupted": (
        502, "answer interrupted",
        "The model stopped after it had begun answering (streams only: the answer is not "
        "switched to another model mid-way); ask again.",
    ),
    "conversation_unavailable": (
        503, "conversation unavailable",
        "The conversation's turns could not be read; retry after Retry-After seconds.",
    ),
    "router_unavailable": (
        503, "router unavailable",
        "The router cannot start; the operator can find why in the logs.",
    ),
    "deadline_exceeded": (
        504, "deadline exceeded",
        "The models did not answer within the time limit; retry, or ask a shorter question.",
    ),
    "internal_error": (
        500, "internal error", "Something failed inside the router; the operator can find "
        "the details in the logs under this request_id.",
    ),
}


@record
class RoutingError(Exception):
    """A request that ends in an error response; ``details`` are safe to show the caller."""

    code: str
    details: dict[str, Any] = field(default_factory=dict)
    retry_after_seconds: int | None = None
    error: str | None = None  # a more specific phrase than the code's, when one helps

    @property
    def status(self) -> int:
        return ERRORS[self.code][0]

    def body(self) -> dict[str, Any]:
        _, phrase, sentence = ERRORS[self.code]
        return {"error": self.error or phrase, "code": self.code, "message": sentence,
                **self.details}

    def __str__(self) -> str:
        return f"{self.code}: {self.error or ERRORS[self.code][1]}"
