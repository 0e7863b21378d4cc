"""The bodies API Gateway validates, as JSON Schema dicts: ``POST /ask`` and ``POST /feedback``.

Kept free of ``aws_cdk`` imports on purpose: the OpenAPI generator and the local API can render
the exact schemas the stacks deploy without starting the CDK's jsii runtime. The stacks turn them
into API Gateway models with :func:`stacks.router_api.cdk_json_schema`.

``/ask`` is :func:`llm_router.edge.http_api.ask_request_schema` (what the function itself accepts)
plus
the optional conversation ``history``, bounded by ``conversation.max_turns`` (and each turn by
``conversation.max_total_chars``), so an over-long history is refused before it costs an
invocation.
"""

from __future__ import annotations

import copy
from typing import Any

from llm_router.config import OUT_OF_SCOPE, RoutesConfig
from llm_router.decision.conversation import parse_conversation
from llm_router.edge.feedback import (
    COMMENT_MAX_CHARS,
    FIELDS,
    MODEL_ID_MAX_CHARS,
    REQUEST_ID_MAX_CHARS,
)
from llm_router.edge.http_api import ask_request_schema, closed_object, request_schema
from llm_router.governance.provenance import TOKEN_MAX_CHARS

HISTORY_ROLES = ("user", "assistant")


def history_schema(config: RoutesConfig) -> dict[str, Any]:
    """The optional ``history``: previous turns as chat clients send them, oldest first.

    The limits are the function's (:func:`llm_router.decision.conversation.parse_conversation`);
    the total
    over all turns is the function's to check, a schema can only bound each turn by it.
    """
    limits = parse_conversation(config.raw)
    content = {"type": "string", "minLength": 1, "maxLength": limits.max_total_chars}
    return {
        "type": "array",
        "maxItems": limits.max_turns,
        "items": closed_object(
            ["role", "content"],
            {"role": {"type": "string", "enum": list(HISTORY_ROLES)}, "content": content},
        ),
    }


def ask_body_schema(config: RoutesConfig) -> dict[str, Any]:
    """The body of ``POST /ask`` as deployed: the function's request schema plus ``history``."""
    schema = copy.deepcopy(ask_request_schema(config.api.max_question_chars))
    schema["properties"]["history"] = history_schema(config)
    return schema


def feedback_body_schema(config: RoutesConfig) -> dict[str, Any]:
    """The body of ``POST /feedback``: which request, and what the caller thinks of it.

    Fields and bounds are the handler's (:mod:`llm_router.edge.feedback`); a field it adds without a
    schema here fails the synth rather than being refused by API Gateway at run time.
    """
    labels = [*config.category_names, OUT_OF_SCOPE]
    schema = request_schema(
        "FeedbackRequest",
        ["feedback_token"],
        {
            # The signed token of the /ask answer: which request, to which key, until when.
            "feedback_token": {"type": "string", "minLength": 1, "maxLength": TOKEN_MAX_CHARS},
            # Optional; when sent, it must be the token's request id.
            "request_id": {"type": "string", "minLength": 1, "maxLength": REQUEST_ID_MAX_CHARS},
            "helpful": {"type": "boolean"},
            "correct_category": {"type": "string", "enum": labels},
            # The category /ask chose, as the client echoes it (for corrections by pair).
            "question_classification": {"type": "string", "enum": labels},
            "question": {
                "type": "string",
                "minLength": 1,
                "maxLength": config.api.max_question_chars,
            },
            "comment": {"type": "string", "maxLength": COMMENT_MAX_CHARS},
            # The answer's model as the client echoes it from /ask (for helpful rate by target).
            "answerer_LLM": {"type": "string", "minLength": 1, "maxLength": MODEL_ID_MAX_CHARS},
        },
    )
    if set(schema["properties"]) != set(FIELDS):
        raise AssertionError("POST /feedback schema and llm_router.edge.feedback.FIELDS differ")
    return schema
