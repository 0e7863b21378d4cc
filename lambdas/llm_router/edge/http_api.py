"""The HTTP contract of POST /ask: request parsing, status codes and JSON error bodies.

Bad input is a 400 naming what is wrong; a Bedrock failure is a 502 or 503 naming the model, the
stage and Bedrock's error code; nothing else escapes as a stack trace. API Gateway validates the
body against the same schema (:func:`ask_request_schema`, which the stack, the local API and the
OpenAPI document all render) before the Lambda runs; these checks keep the handler safe on its own
(direct invokes, the local server, a model change that skipped the API).

:func:`parse_request` cannot throw anything but :class:`BadRequest`, whatever the event:

* the event and the body must be JSON objects; ``isBase64Encoded``, when present, a real boolean;
* JSON parsing is bounded: nesting deeper than :data:`MAX_JSON_DEPTH` and integers longer than
  :data:`MAX_INTEGER_DIGITS` digits are refused *before* Python's parser would raise
  ``RecursionError`` (about 1,000 levels) or ``ValueError`` (4,300 digits); the body of
  ``POST /ask`` holds no numbers and nests two levels, so the limits only ever stop abuse;
* invalid Unicode (a lone surrogate such as ``"\\ud800"``, in any string or key) is a 400, so it
  never reaches a model;
* a question must contain at least one letter or digit once whitespace and Unicode format
  characters (category Cf: zero-width spaces, the BOM) are removed, so nobody pays for an answer
  to nothing.

:func:`json_response` makes any text encodable: a model answer carrying a lone surrogate becomes
U+FFFD instead of an unencodable body. The depth scan is hand-written (a regex that blanks out
string literals, then a running sum over the brackets, both in C) because the standard library's
parser has no depth limit and a full alternative parser would be a new dependency of the function.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from ..config import RoutesConfig
from ..decision.conversation import ConversationError, Turn, parse_history
from ..decision.normalize import LONE_SURROGATE, has_lone_surrogate
from ..records import record

MAX_JSON_DEPTH = 32  # nesting levels of objects and arrays in a request body
MAX_INTEGER_DIGITS = 100  # digits of one JSON integer (Python's own limit raises at 4,300)
CATEGORY_MAX_CHARS = 64
CONVERSATION_ID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DRAFT4 = "http://json-schema.org/draft-04/schema#"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type,X-Api-Key,Cache-Control",
    "Access-Control-Allow-Methods": "OPTIONS,POST",
}
# A string literal, or an unterminated one up to the end of the text (optionally ending in a lone
# backslash): every quote starts a match, so the scan never retries from a later quote and stays
# linear on invalid JSON (a pattern that needs the closing quote took 20 s on 64k characters).
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
_OBJECT_HINT = 'the request body must be a JSON object like {"question": "..."}'


def ask_request_schema(max_question_chars: int) -> dict[str, Any]:
    """The body of ``POST /ask`` as JSON Schema draft 4 (API Gateway's model dialect).

    The one definition of the request: the stack's API Gateway model, the local API's request
    validator and the OpenAPI document are all rendered from it. A new field is a new property.
    """
    return request_schema(
        "AskRequest",
        ["question"],
        {
            "question": {"type": "string", "minLength": 1, "maxLength": max_question_chars},
            # For static routing: a caller that knows the category may name it.
            "category": {"type": "string", "minLength": 1, "maxLength": CATEGORY_MAX_CHARS},
            # A conversation the server keeps: the id a previous answer returned.
            "conversation_id": {
                "type": "string",
                "minLength": 36,
                "maxLength": 36,
                "pattern": CONVERSATION_ID_PATTERN,
            },
        },
    )


def closed_object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object with these properties and no others: every body (and history turn) the API
    takes is one, so a field it does not know is refused rather than ignored."""
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def request_schema(
    title: str, required: list[str], properties: dict[str, Any]
) -> dict[str, Any]:
    """A request body's schema: a :func:`closed_object` in draft 4, API Gateway's dialect."""
    return {"$schema": DRAFT4, "title": title, **closed_object(required, properties)}


# "history" is validated by llm_router.decision.conversation.parse_history here; the stack's model
# adds its
# schema from the same conversation settings (stacks.request_schemas.ask_body_schema).
ALLOWED_FIELDS = (*ask_request_schema(1)["properties"], "history")


class BadRequest(ValueError):
    """The request body is not a valid question."""


@record(frozen=True)
class AskRequest:
    question: str
    category: str | None = None  # static routing: the caller names the category
    history: tuple[Turn, ...] = ()  # earlier turns of the conversation, oldest first
    conversation_id: str | None = None  # a server-kept conversation to continue


def json_depth(text: str) -> int:
    """How deeply objects and arrays nest in ``text`` (brackets inside strings do not count)."""
    brackets = _NOT_A_BRACKET.sub("", _STRING_LITERAL.sub('""', text))
    return max(accumulate(map(_BRACKET_DELTA.__getitem__, brackets)), default=0)


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise BadRequest(
            f"the request body has an integer of more than {MAX_INTEGER_DIGITS} digits "
            f"(the limit is {MAX_INTEGER_DIGITS})"
        )
    return int(digits)


def _no_constant(name: str) -> Any:
    raise BadRequest(f"the request body is not valid JSON: {name} is not a JSON value")


def load_json(raw: str) -> Any:
    """``json.loads`` with the limits of this module; BadRequest names the limit exceeded."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise BadRequest(
            f"the request body nests deeper than {MAX_JSON_DEPTH} levels "
            f"(the limit is {MAX_JSON_DEPTH})"
        )
    try:
        return json.loads(raw, parse_int=_bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc.msg} at {exc.pos}") from exc
    except (RecursionError, ValueError) as exc:  # a last guard; the scan above should stop both
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest("the request body is not valid JSON") from exc


def _meaningful(text: str) -> bool:
    """At least one letter or digit once whitespace and format characters (Cf) are ignored."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def _strip(text: str) -> str:
    """Whitespace and format characters (zero-width spaces, BOM) trimmed from both ends."""
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start]) == "Cf"):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1]) == "Cf"):
        end -= 1
    return text[start:end]


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages that should not read like Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list | tuple) else "a value of another type"


def _body_text(event: Any) -> str:
    if not isinstance(event, dict):
        raise BadRequest(
            f"the event must be an API Gateway proxy event (a JSON object), not {_json_type(event)}"
        )
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest(_OBJECT_HINT)
    if not isinstance(raw, str):
        raise BadRequest("the event's body must be a string (the JSON text of the request)")
    encoded = event.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise BadRequest('"isBase64Encoded" must be true or false')
    if encoded:
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise BadRequest("the request body is not valid base64-encoded UTF-8") from exc
    if has_lone_surrogate(raw):
        raise BadRequest("the request body is not valid Unicode (it has an unpaired surrogate)")
    return raw


def load_body(event: Any, hint: str = _OBJECT_HINT) -> dict[str, Any]:
    """The JSON object in a proxy event's body, bounded and valid Unicode; else BadRequest.

    Every endpoint reads its body here, so ``/feedback`` refuses what ``/ask`` refuses (a lone
    surrogate written as ``"\\ud800"`` is only visible once parsed, in values and keys alike)."""
    body = load_json(_body_text(event))
    if not isinstance(body, dict):
        raise BadRequest(hint)
    if has_lone_surrogate(json.dumps(body, ensure_ascii=False)):
        raise BadRequest(
            "the request body is not valid Unicode (it has an unpaired surrogate such as \\ud800)"
        )
    return body


def request_context_of(event: Any) -> Mapping[str, Any]:
    """The event's ``requestContext``, or an empty mapping for events without one."""
    if isinstance(event, Mapping):
        context = event.get("requestContext")
        if isinstance(context, Mapping):
            return context
    return {}


def api_key_id_of(event: Any) -> str | None:
    """The id of the API key the caller used, as API Gateway passes it (never the key itself)."""
    identity = request_context_of(event).get("identity")
    key_id = identity.get("apiKeyId") if isinstance(identity, Mapping) else None
    return key_id if isinstance(key_id, str) and key_id else None


def parse_request(event: Any, config: RoutesConfig) -> AskRequest:
    """Read the question from an API Gateway proxy event (REST, payload v1); else BadRequest."""
    body = load_body(event)
    unknown = sorted(set(body) - set(ALLOWED_FIELDS))
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(ALLOWED_FIELDS)}"
        )
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadRequest('"question" must be a non-empty string')
    if not _meaningful(question):
        raise BadRequest('"question" must contain at least one letter or digit')
    limit = config.api.max_question_chars
    if len(question) > limit:
        raise BadRequest(f'"question" is {len(question)} characters; the maximum is {limit}')
    category = body.get("category")
    if category is not None and (not isinstance(category, str) or not _strip(category)):
        raise BadRequest('"category" must be a non-empty string when given')
    try:
        history = parse_history(body.get("history"), config)
    except ConversationError as exc:
        raise BadRequest(str(exc)) from None
    conversation_id = body.get("conversation_id")
    if conversation_id is not None:
        if not isinstance(conversation_id, str) or not re.fullmatch(
            CONVERSATION_ID_PATTERN, conversation_id
        ):
            raise BadRequest('"conversation_id" must be the id a previous answer returned')
        if history:
            raise BadRequest(
                'send either "conversation_id" (the server keeps the turns) or "history", '
                "not both"
            )
    return AskRequest(
        question=_strip(question),
        category=_strip(category) if category else None,
        history=history,
        conversation_id=conversation_id,
    )


def encodable(text: str) -> str:
    """``text`` with every unpaired surrogate replaced by U+FFFD, so it encodes as UTF-8."""
    return LONE_SURROGATE.sub("\ufffd", text) if has_lone_surrogate(text) else text


def allowed_origins(config: RoutesConfig | None) -> tuple[str, ...]:
    """``deployment.cors_allowed_origins`` (validated by the stack at synth; ``*`` by default)."""
    if config is None:
        return ("*",)
    origins = config.raw.get("deployment", {}).get("cors_allowed_origins", ["*"])
    return tuple(o for o in origins if isinstance(o, str)) or ("*",)


def header_of(event: Any, name: str) -> str | None:
    """A request header's value (names compare case-insensitively); None when absent."""
    headers = event.get("headers") if isinstance(event, Mapping) else None
    if not isinstance(headers, Mapping):
        return None
    wanted = name.lower()
    value = next(
        (v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted), None
    )
    return value if isinstance(value, str) else None


def with_cors(response: dict[str, Any], event: Any, origins: tuple[str, ...]) -> dict[str, Any]:
    """Answer a browser's ``Origin`` as the configured origins allow: ``*``, the origin itself
    when it is listed (with ``Vary: Origin``), or no Allow-Origin header at all."""
    if "*" in origins:
        return response
    headers = response["headers"]
    origin = header_of(event, "Origin")
    if origin in origins:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    else:
        headers.pop("Access-Control-Allow-Origin", None)
    return response


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway proxy integration response whose body is always valid UTF-8 JSON."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **CORS_HEADERS, **(headers or {})},
        "body": encodable(json.dumps(body, ensure_ascii=False)),
    }


def error_response(status: int, error: str, **details: Any) -> dict[str, Any]:
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return json_response(status, {"error": error, **details}, headers)
