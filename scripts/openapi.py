"""The OpenAPI 3 document of the router API, generated from routes.json: ``docs/openapi.json``.

    python scripts/openapi.py            # write docs/openapi.json
    python scripts/openapi.py --check    # exit 1 if the committed file is stale
    python scripts/openapi.py --stdout   # print it

API Gateway can import it and users can generate clients from it. The request body is
:func:`stacks.request_schemas.ask_body_schema` (and ``feedback_body_schema``), the same dicts the
stack's API Gateway models and the local API's validator are built from, so they cannot drift; a
new request field lands in all of them at once. Each operation is one entry of :data:`OPERATIONS`
(path, method, request schema, success schema): a new endpoint is one more entry. The errors are
the ones API Gateway produces itself (``{"message": ...}``) and the function's JSON errors
(``{"error": ...}``, with more fields as the contract grows, so extra properties are allowed).
Hand-written because the API is not served by a web framework that could emit the document.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cli
from llm_router.config import RoutesConfig, load_routes
from llm_router.edge import ASK_RESOURCE, FEEDBACK_RESOURCE, STREAM_RESOURCE  # noqa: E402
from llm_router.edge.feedback import KINDS  # noqa: E402
from routes_file import add_routes_argument, use_routes_file

from layers import REPO_ROOT
from stacks.request_schemas import ask_body_schema, feedback_body_schema  # noqa: E402

OPENAPI_VERSION = "3.0.3"  # the version API Gateway imports
DOCUMENT = REPO_ROOT / "docs" / "openapi.json"
API_KEY_HEADER = "x-api-key"
REF = "#/components/schemas/"


def openapi_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """A draft-4 JSON Schema as an OpenAPI 3.0 Schema Object (which has no ``$schema``)."""
    return {k: v for k, v in json_schema.items() if k != "$schema"}


def ask_response_schema(config: RoutesConfig) -> dict[str, Any]:
    """The 200 body of POST /ask: the original sample's fields, plus usage and routing."""
    number = {"type": "number", "minimum": 0}
    return {
        "title": "AskResponse",
        "type": "object",
        "required": ["answer", "question_classification", "answerer_LLM"],
        "properties": {
            "answer": {"type": "string"},
            "question_classification": {
                "type": "string",
                "description": "the category that answered, or out_of_scope: "
                + ", ".join(config.category_names),
            },
            "classifier_LLM": {"type": "string", "description": "llm-assisted router"},
            "embedding_LLM": {"type": "string", "description": "semantic and hybrid routers"},
            "answerer_LLM": {"type": "string", "nullable": True},
            "classification_time": number,
            "answer_generation_time": number,
            "total_response_time": number,
            "usage": {"type": "object", "description": "tokens per model call"},
            "routing": {"type": "object", "description": "how the decision was made"},
            "request_id": {"type": "string"},
            "feedback_token": {
                "type": "string",
                "description": "send it to POST /feedback, with the same API key, to give "
                "feedback on this answer; signed, it expires after feedback.token_ttl_hours",
            },
            "conversation_id": {
                "type": "string",
                "nullable": True,
                "description": "when the router keeps conversations: send it back with the next "
                "question to continue (null: nothing was stored, e.g. a declined first question)",
            },
        },
        "additionalProperties": True,
    }


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    operation_id: str
    summary: str
    request: Callable[[RoutesConfig], dict[str, Any]]  # JSON Schema draft 4
    response: Callable[[RoutesConfig], dict[str, Any]]
    response_type: str = "application/json"


OPERATIONS = (
    Operation(
        ASK_RESOURCE,
        "post",
        "ask",
        "Route a question to the model of its category and return the answer",
        ask_body_schema,
        ask_response_schema,
    ),
    Operation(
        STREAM_RESOURCE,
        "post",
        "askStream",
        "Route a question and stream the answer as server-sent events",
        ask_body_schema,
        lambda config: {
            "title": "AskStreamEvents",
            "type": "string",
            "description": (
                "text/event-stream: 'event: routing' (the decision) first, 'event: delta' with "
                '{"text": ...} per piece of the answer, then \'event: done\' (the /ask body '
                "without answer) or 'event: error' (the /ask error body with its code); each "
                "event's data is one line of JSON. Refusals before routing are /ask's JSON errors."
            ),
        },
        "text/event-stream",
    ),
    Operation(
        FEEDBACK_RESOURCE,
        "post",
        "feedback",
        "Say whether an answer helped and which category was right",
        feedback_body_schema,
        lambda config: {
            "title": "FeedbackResponse",
            "type": "object",
            "properties": {
                "stored": {"type": "boolean"},
                "request_id": {"type": "string", "description": "the token's request"},
                "kind": {"type": "string", "enum": list(KINDS)},
            },
            "additionalProperties": True,
        },
    ),
)

GATEWAY_ERROR = {
    "title": "GatewayError",
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
FUNCTION_ERROR = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": True,
}
# status: (description, schemas the body may follow)
ERROR_RESPONSES = {
    "400": ("Invalid request (API Gateway's model or the function's checks)", ("Gateway", "Fn")),
    "403": (
        "Missing or wrong API key, an undefined route, or (feedback) a feedback_token that is "
        "forged, expired or another key's (code invalid_feedback_token)",
        ("Gateway", "Fn"),
    ),
    "409": ("Feedback on this answer was given with another API key", ("Fn",)),
    "404": ("No conversation of this API key has this conversation_id", ("Fn",)),
    "413": ("Request body above 10 MB", ("Gateway",)),
    "429": (
        "Throttled or daily quota exhausted (the usage plan), or the daily budget (code "
        "over_budget; Retry-After says when to retry)",
        ("Gateway", "Fn"),
    ),
    "502": (
        "A model refused the request (model_error), or no target may be called "
        "(models_access_denied, no Retry-After)",
        ("Fn", "Gateway"),
    ),
    "503": ("Models unavailable or throttled; see Retry-After", ("Fn",)),
    "504": ("No answer within the deadline or the integration timeout", ("Fn", "Gateway")),
}


def _error_response(description: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    refs = [{"$ref": f"{REF}{'GatewayError' if k == 'Gateway' else 'Error'}"} for k in kinds]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(op: Operation, config: RoutesConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    request_name = op.request(config).get("title", f"{op.operation_id}Request")
    response_name = op.response(config).get("title", f"{op.operation_id}Response")
    schemas = {
        request_name: openapi_schema(op.request(config)),
        response_name: op.response(config),
    }
    operation = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{"apiKey": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"{REF}{request_name}"}}},
        },
        "responses": {
            "200": {
                "description": op.summary,
                "content": {op.response_type: {"schema": {"$ref": f"{REF}{response_name}"}}},
            },
            **{code: _error_response(*spec) for code, spec in ERROR_RESPONSES.items()},
        },
    }
    return operation, schemas


def build_document(config: RoutesConfig) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"GatewayError": GATEWAY_ERROR, "Error": FUNCTION_ERROR}
    for op in OPERATIONS:
        operation, op_schemas = _operation(op, config)
        paths.setdefault(op.path, {})[op.method] = operation
        schemas.update(op_schemas)
    api = config.api
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Multi-LLM router",
            "version": str(config.raw.get("schema_version", "1")),
            "description": (
                "Routes each question to the Amazon Bedrock model of its category. One API per "
                "router stack (llm-assisted, semantic, hybrid), all with this contract. Usage "
                f"plan: {api.throttle_rate_limit:g} requests/s, burst {api.throttle_burst_limit}, "
                f"{api.quota_requests_per_day} a day per key. Generated from routes.json by "
                "scripts/openapi.py."
            ),
        },
        "servers": [
            {
                "url": "https://{apiId}.execute-api.{region}.amazonaws.com/prod",
                "variables": {
                    "apiId": {"default": "API_ID", "description": "the stack's ApiId output"},
                    "region": {"default": "us-east-1"},
                },
            },
            {"url": "http://127.0.0.1:3000/{router}", "description": "scripts/local.py",
             "variables": {"router": {"default": "semantic",
                                      "enum": ["llm-assisted", "semantic", "hybrid"]}}},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
            },
        },
    }


def render(config: RoutesConfig) -> str:
    return json.dumps(build_document(config), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if docs/openapi.json is stale")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    parser.add_argument(
        "--output", type=Path, default=DOCUMENT, help="where to write the document"
    )
    add_routes_argument(parser)
    args = parser.parse_args(argv)
    use_routes_file(args.routes)
    text = render(load_routes())
    if args.stdout:
        sys.stdout.write(text)
    elif args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python scripts/openapi.py", file=sys.stderr)
            return 1
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    cli.run(main)
