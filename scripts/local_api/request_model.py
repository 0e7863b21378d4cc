"""The request model of ``POST /ask``: the JSON schema API Gateway validates bodies against.

API Gateway models are JSON Schema draft 4, so the body is checked with ``jsonschema``'s draft 4
validator rather than by hand: the local API then accepts and rejects exactly what that schema
does. The schema is :func:`stacks.request_schemas.ask_body_schema`, the one the stack deploys
(``stacks.router_api.question_schema`` renders it, without the CDK being imported here);
``tests/test_local_api.py`` checks the rendered CloudFormation model. Without a configuration,
:func:`request_schema` is the function's own part of it
(:func:`llm_router.edge.http_api.ask_request_schema`).
A body too deep or with too large numbers for Python's parser is invalid, as it is to API Gateway.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft4Validator
from llm_router.config import RoutesConfig
from llm_router.edge.http_api import ask_request_schema

from stacks.request_schemas import ask_body_schema, feedback_body_schema  # noqa: E402


def request_schema(max_question_chars: int) -> dict[str, Any]:
    """The function's part of ``POST /ask``: ``question`` (1..max characters), ``category``."""
    return ask_request_schema(max_question_chars)


def deployed_schema(config: RoutesConfig) -> dict[str, Any]:
    """The body of ``POST /ask`` exactly as the stack's API Gateway model has it."""
    return ask_body_schema(config)


def deployed_feedback_schema(config: RoutesConfig) -> dict[str, Any]:
    """The body of ``POST /feedback`` exactly as the stack's API Gateway model has it."""
    return feedback_body_schema(config)


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
