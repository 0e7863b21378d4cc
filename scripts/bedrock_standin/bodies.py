"""Request validation the way Bedrock does it, and the normalised requests the models answer.

Each model family's native InvokeModel body has a JSON schema on Bedrock's side; a body that breaks
it is a 400 ValidationException with a "Malformed input request" message naming the JSON path. The
Converse API has one schema for all chat models. The checks here are the ones a client is likely to
get wrong: required keys, unknown keys, types, value ranges and conversation shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import BedrockError, malformed
from .models import ResolvedModel
from .titan_space import TITAN_V2_DIMENSIONS

ANTHROPIC_VERSION = "bedrock-2023-05-31"
TITAN_EMBED_MAX_CHARS = 50_000


@dataclass(frozen=True)
class ChatRequest:
    """A text-generation request, whatever API and body it came in."""

    system: str
    messages: tuple[tuple[str, str], ...]  # (role, text)
    max_tokens: int
    temperature: float | None

    @property
    def last_user_text(self) -> str:
        return next((text for role, text in reversed(self.messages) if role == "user"), "")


@dataclass(frozen=True)
class EmbedRequest:
    text: str
    dimensions: int
    normalize: bool
    embedding_types: tuple[str, ...]


def parse_json(raw: bytes) -> Any:
    """The JSON body, or the ValidationException Bedrock answers for a malformed one.

    A string with an unpaired surrogate (``"\\ud800"``) is not valid Unicode: refused here like
    any malformed input rather than failing later inside a model.
    """
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BedrockError(
            "ValidationException",
            f"Malformed input request: {exc}, please reformat your input and try again.",
        ) from exc
    except (ValueError, RecursionError) as exc:  # too deep, or an integer too long to convert
        raise BedrockError(
            "ValidationException",
            "Malformed input request: the body is too deeply nested or has a number too large, "
            "please reformat your input and try again.",
        ) from exc
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BedrockError(
            "ValidationException",
            "Malformed input request: a string is not valid Unicode (unpaired surrogate), "
            "please reformat your input and try again.",
        ) from exc
    return body


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(path, f"expected type: JSONObject, found: {type(value).__name__}")
    return value


def _no_extra(body: dict[str, Any], allowed: set[str], path: str = "#") -> None:
    for key in body:
        if key not in allowed:
            raise malformed(path, f"extraneous key [{key}] is not permitted")


def _required(body: dict[str, Any], key: str, path: str = "#") -> Any:
    if key not in body:
        raise malformed(path, f"required key [{key}] not found")
    return body[key]


def _number(value: Any, path: str, low: float, high: float, integer: bool = False) -> float:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise malformed(
            path,
            f"expected type: {'Integer' if integer else 'Number'}, found: {type(value).__name__}",
        )
    if value < low:
        raise malformed(path, f"{value} is not greater or equal to {low:g}")
    if value > high:
        raise malformed(path, f"{value} is not less or equal to {high:g}")
    return value


def _string(value: Any, path: str, min_length: int = 0) -> str:
    if not isinstance(value, str):
        raise malformed(path, f"expected type: String, found: {type(value).__name__}")
    if len(value) < min_length:
        raise malformed(path, f"expected minLength: {min_length}, actual: {len(value)}")
    return value


def _alternating(roles: list[str], path: str) -> None:
    if not roles:
        raise BedrockError(
            "ValidationException",
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message.",
        )
    if roles[0] != "user":
        raise BedrockError(
            "ValidationException",
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message.",
        )
    for earlier, later in zip(roles, roles[1:], strict=False):
        if earlier == later:
            raise BedrockError(
                "ValidationException",
                "A conversation must alternate between user and assistant roles. Make sure the "
                "conversation alternates between user and assistant roles and try again.",
            )
    for i, role in enumerate(roles):
        if role not in ("user", "assistant"):
            raise malformed(f"{path}/{i}/role", f"{role} is not a valid enum value")


# --- InvokeModel native bodies -----------------------------------------------------------------


def titan_embed(body: Any) -> EmbedRequest:
    body = _object(body, "#")
    _no_extra(body, {"inputText", "dimensions", "normalize", "embeddingTypes"})
    text = _string(_required(body, "inputText"), "#/inputText", min_length=1)
    if len(text) > TITAN_EMBED_MAX_CHARS:
        raise malformed(
            "#/inputText", f"expected maxLength: {TITAN_EMBED_MAX_CHARS}, actual: {len(text)}"
        )
    dimensions = body.get("dimensions", 1024)
    if isinstance(dimensions, bool) or dimensions not in TITAN_V2_DIMENSIONS:
        raise malformed("#/dimensions", f"{dimensions} is not a valid enum value")
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise malformed("#/normalize", f"expected type: Boolean, found: {type(normalize).__name__}")
    types = body.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or any(t not in ("float", "binary") for t in types):
        raise malformed("#/embeddingTypes", f"{types} is not a valid enum value")
    return EmbedRequest(text, int(dimensions), normalize, tuple(types))


def titan_text(body: Any, model: ResolvedModel) -> ChatRequest:
    body = _object(body, "#")
    _no_extra(body, {"inputText", "textGenerationConfig"})
    text = _string(_required(body, "inputText"), "#/inputText", min_length=1)
    config = _object(body.get("textGenerationConfig", {}), "#/textGenerationConfig")
    path = "#/textGenerationConfig"
    _no_extra(config, {"maxTokenCount", "temperature", "topP", "stopSequences"}, path)
    max_tokens = int(
        _number(
            config.get("maxTokenCount", 512),
            f"{path}/maxTokenCount",
            0,
            model.max_output_tokens,
            integer=True,
        )
    )
    temperature = _number(config.get("temperature", 0.7), f"{path}/temperature", 0, 1)
    _number(config.get("topP", 0.9), f"{path}/topP", 0, 1)
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise malformed(f"{path}/stopSequences", "expected type: JSONArray of String")
    return ChatRequest("", (("user", text),), max_tokens, float(temperature))


def _anthropic_text(content: Any, path: str) -> str:
    if isinstance(content, str):
        return _string(content, path, min_length=1)
    if not isinstance(content, list) or not content:
        raise malformed(path, "expected a non-empty string or array of content blocks")
    texts = []
    for i, block in enumerate(content):
        block = _object(block, f"{path}/{i}")
        kind = _required(block, "type", f"{path}/{i}")
        if kind == "text":
            texts.append(_string(_required(block, "text", f"{path}/{i}"), f"{path}/{i}/text", 1))
        elif kind not in ("image", "document", "tool_use", "tool_result"):
            raise malformed(f"{path}/{i}/type", f"{kind} is not a valid enum value")
    return "\n".join(texts)


def anthropic_messages(body: Any, model: ResolvedModel) -> ChatRequest:
    body = _object(body, "#")
    _no_extra(
        body,
        {
            "anthropic_version",
            "anthropic_beta",
            "max_tokens",
            "messages",
            "system",
            "temperature",
            "top_p",
            "top_k",
            "stop_sequences",
            "tools",
            "tool_choice",
            "metadata",
            "thinking",
        },
    )
    version = _required(body, "anthropic_version")
    if version != ANTHROPIC_VERSION:
        raise malformed("#/anthropic_version", f"{version} is not a valid enum value")
    max_tokens = int(
        _number(
            _required(body, "max_tokens"), "#/max_tokens", 1, model.max_output_tokens, integer=True
        )
    )
    messages = _required(body, "messages")
    if not isinstance(messages, list):
        raise malformed("#/messages", "expected type: JSONArray")
    parsed = []
    for i, message in enumerate(messages):
        message = _object(message, f"#/messages/{i}")
        _no_extra(message, {"role", "content"}, f"#/messages/{i}")
        role = _required(message, "role", f"#/messages/{i}")
        text = _anthropic_text(
            _required(message, "content", f"#/messages/{i}"), f"#/messages/{i}/content"
        )
        parsed.append((role, text))
    _alternating([role for role, _ in parsed], "#/messages")
    system = body.get("system", "")
    if isinstance(system, list):
        system = _anthropic_text(system, "#/system")
    system = _string(system, "#/system")
    temperature = body.get("temperature")
    if temperature is not None:
        temperature = float(_number(temperature, "#/temperature", 0, 1))
    if "top_p" in body:
        _number(body["top_p"], "#/top_p", 0, 1)
    return ChatRequest(system, tuple(parsed), max_tokens, temperature)


# --- Converse ----------------------------------------------------------------------------------

_CONTENT_KINDS = {
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
}


def _converse_text(blocks: Any, where: str) -> str:
    if not isinstance(blocks, list) or not blocks:
        raise BedrockError(
            "ValidationException",
            f"The content field in the {where} object is "
            "empty. Add a ContentBlock object to the content field and try again.",
        )
    texts = []
    for block in blocks:
        if (
            not isinstance(block, dict)
            or len(block) != 1
            or next(iter(block)) not in _CONTENT_KINDS
        ):
            raise BedrockError(
                "ValidationException",
                f"A ContentBlock must set exactly one of {', '.join(sorted(_CONTENT_KINDS))}.",
            )
        if "text" in block:
            if not isinstance(block["text"], str) or not block["text"].strip():
                raise BedrockError(
                    "ValidationException",
                    "The text field in the ContentBlock "
                    "object is blank. Add text to the text field, and try again.",
                )
            texts.append(block["text"])
    return "\n".join(texts)


def converse(body: Any, model: ResolvedModel) -> ChatRequest:
    if model.family == "titan-embed-v2":
        raise BedrockError(
            "ValidationException",
            "This action doesn't support the model that you provided. Try again "
            "with a supported text or chat model.",
        )
    body = _object(body, "#")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BedrockError(
            "ValidationException",
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message.",
        )
    parsed = []
    for message in messages:
        message = _object(message, "#/messages")
        parsed.append((message.get("role"), _converse_text(message.get("content"), "Message")))
    _alternating([role for role, _ in parsed], "#/messages")
    system_blocks = body.get("system", [])
    if not isinstance(system_blocks, list):
        raise BedrockError("ValidationException", "system must be a list of SystemContentBlock")
    system = "\n".join(
        block["text"] for block in system_blocks if isinstance(block, dict) and "text" in block
    )
    config = _object(body.get("inferenceConfig", {}), "#/inferenceConfig")
    max_tokens = config.get("maxTokens", min(model.max_output_tokens, 4096))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BedrockError(
            "ValidationException", "The maximum tokens you requested must be at least 1."
        )
    if max_tokens > model.max_output_tokens:
        raise BedrockError(
            "ValidationException",
            f"The maximum tokens you requested exceeds the "
            f"model limit of {model.max_output_tokens}. Try again with a maximum "
            "tokens value that is lower than the limit.",
        )
    temperature = config.get("temperature")
    if temperature is not None and not (0 <= temperature <= 1):
        raise BedrockError("ValidationException", "The temperature must be between 0 and 1.")
    top_p = config.get("topP")
    if top_p is not None and not (0 <= top_p <= 1):
        raise BedrockError("ValidationException", "topP must be between 0 and 1.")
    stops = config.get("stopSequences", [])
    if len(stops) > 4:
        raise BedrockError("ValidationException", "You can provide at most 4 stop sequences.")
    return ChatRequest(
        system, tuple(parsed), int(max_tokens), None if temperature is None else float(temperature)
    )
