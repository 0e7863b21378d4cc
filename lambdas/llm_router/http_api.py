"""The HTTP contract of POST /ask: request parsing, status codes and JSON error bodies.

Bad input is a 400 naming what is wrong; a Bedrock failure is a 502 or 503 naming the model, the
stage and Bedrock's error code; nothing else escapes as a stack trace. API Gateway validates the
body against the same schema before the Lambda runs; these checks keep the handler safe on its own
(direct invokes, the local server, a model change that skipped the API).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .config import RoutesConfig

ALLOWED_FIELDS = ("question", "category")
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type,X-Api-Key",
    "Access-Control-Allow-Methods": "OPTIONS,POST",
}


class BadRequest(ValueError):
    """The request body is not a valid question."""


@dataclass(frozen=True)
class AskRequest:
    question: str
    category: str | None = None  # static routing: the caller names the category


def parse_request(event: dict[str, Any], config: RoutesConfig) -> AskRequest:
    """Read the question from an API Gateway proxy event (REST, payload v1)."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest('the request body must be a JSON object like {"question": "..."}')
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("the request body is not valid base64-encoded UTF-8") from exc
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest('the request body must be a JSON object like {"question": "..."}')
    unknown = sorted(set(body) - set(ALLOWED_FIELDS))
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(ALLOWED_FIELDS)}"
        )
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadRequest('"question" must be a non-empty string')
    limit = config.api.max_question_chars
    if len(question) > limit:
        raise BadRequest(f'"question" is {len(question)} characters; the maximum is {limit}')
    category = body.get("category")
    if category is not None and (not isinstance(category, str) or not category.strip()):
        raise BadRequest('"category" must be a non-empty string when given')
    return AskRequest(question=question.strip(), category=category.strip() if category else None)


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway proxy integration response."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **CORS_HEADERS, **(headers or {})},
        "body": json.dumps(body, ensure_ascii=False),
    }


def error_response(status: int, error: str, **details: Any) -> dict[str, Any]:
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return json_response(status, {"error": error, **details}, headers)
