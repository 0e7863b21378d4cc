"""The request model of ``POST /ask``: the JSON schema API Gateway validates bodies against.

API Gateway models are JSON Schema draft 4, so the body is checked with ``jsonschema``'s draft 4
validator rather than by hand: the local API then accepts and rejects exactly what that schema
does. The schema mirrors ``stacks.router_api.question_schema`` (a CDK object, and importing the
CDK starts a Node.js process, too slow for a local run); ``tests/test_local_api.py`` checks that
the two agree. The question limit comes from ``routes.json`` (``api.max_question_chars``).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft4Validator

DRAFT4 = "http://json-schema.org/draft-04/schema#"
CATEGORY_MAX_CHARS = 64  # stacks.router_api.CATEGORY_MAX_CHARS


def request_schema(max_question_chars: int) -> dict[str, Any]:
    """The body of ``POST /ask``: ``question`` (1..max characters), optional ``category``."""
    return {
        "$schema": DRAFT4,
        "title": "AskRequest",
        "type": "object",
        "required": ["question"],
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": max_question_chars},
            "category": {"type": "string", "minLength": 1, "maxLength": CATEGORY_MAX_CHARS},
        },
        "additionalProperties": False,
    }


class RequestModel:
    """Validates raw request bodies against one schema, as API Gateway's request validator does."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft4Validator.check_schema(schema)
        self._validator = Draft4Validator(schema)

    def accepts(self, body: bytes) -> bool:
        """True when the body is UTF-8 JSON that the schema allows."""
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return False
        return self._validator.is_valid(document)
