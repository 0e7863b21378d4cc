"""The request model of ``POST /ask``: the JSON schema API Gateway validates bodies against.

API Gateway models are JSON Schema draft 4, so the body is checked with ``jsonschema``'s draft 4
validator rather than by hand: the local API then accepts and rejects exactly what that schema
does. The schema is :func:`llm_router.http_api.ask_request_schema`, the one the stack deploys
(``stacks.router_api.question_schema`` renders it); ``tests/test_local_api.py`` checks the rendered
CloudFormation model. The question limit comes from ``routes.json`` (``api.max_question_chars``).
A body too deep or with too large numbers for Python's parser is invalid, as it is to API Gateway.
"""

from __future__ import annotations

import json
from typing import Any

import _bootstrap  # noqa: F401  (puts lambdas/ and scripts/ on sys.path)
from jsonschema import Draft4Validator
from llm_router.http_api import ask_request_schema


def request_schema(max_question_chars: int) -> dict[str, Any]:
    """The body of ``POST /ask``: ``question`` (1..max characters), optional ``category``."""
    return ask_request_schema(max_question_chars)


class RequestModel:
    """Validates raw request bodies against one schema, as API Gateway's request validator does."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft4Validator.check_schema(schema)
        self._validator = Draft4Validator(schema)

    def accepts(self, body: bytes) -> bool:
        """True when the body is UTF-8 JSON that the schema allows."""
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
            return False
        return self._validator.is_valid(document)
