"""Which model a request names, as Bedrock resolves it: model id, inference profile, or ARN.

Bedrock accepts a foundation model id (``anthropic.claude-3-haiku-20240307-v1:0``), a cross-region
inference profile id (``us.anthropic...``), or an ARN of either, of a provisioned model or of an
Intelligent Prompt Routing router. The stand-in resolves each to the foundation model whose request
format applies (the ``family``) and, for a prompt router, to the models it chooses between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BedrockError

GEO_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")
# The prompt routers AWS provides, by the name in their ARN: (fast model, strong model).
DEFAULT_PROMPT_ROUTERS = {
    "anthropic.claude:1": (
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
    ),
    "meta.llama:1": ("meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"),
    "amazon.nova:1": ("amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"),
}
_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:([a-z0-9-]*):(\d*):([a-z-]+)/(.+)$")
_FOUNDATION_ID = re.compile(r"^[a-z0-9-]+\.[A-Za-z0-9._:-]+$")
# Families by foundation model id; anything else of a known provider is a Converse chat model.
_FAMILIES = (
    (re.compile(r"^amazon\.titan-embed-text-v2"), "titan-embed-v2"),
    (re.compile(r"^amazon\.titan-text-"), "titan-text"),
    (re.compile(r"^anthropic\.claude"), "anthropic"),
)
_CHAT_PROVIDERS = (
    "amazon.nova",
    "meta.",
    "mistral.",
    "cohere.command",
    "ai21.",
    "deepseek.",
    "openai.",
    "qwen.",
    "writer.",
)
# Output token ceilings Bedrock enforces on native bodies (max_tokens / maxTokenCount).
_MAX_OUTPUT_TOKENS = {"titan-text": 8192, "anthropic": 8192}


@dataclass(frozen=True)
class ResolvedModel:
    requested: str  # what the request named
    foundation_id: str  # the model whose behaviour applies
    family: str  # titan-embed-v2 | titan-text | anthropic | chat
    router_targets: tuple[str, ...] = ()  # a prompt router's (fast, strong) models

    @property
    def is_prompt_router(self) -> bool:
        return bool(self.router_targets)

    @property
    def max_output_tokens(self) -> int:
        return _MAX_OUTPUT_TOKENS.get(self.family, 8192)


def family_of(foundation_id: str) -> str | None:
    for pattern, family in _FAMILIES:
        if pattern.match(foundation_id):
            return family
    if foundation_id.startswith(_CHAT_PROVIDERS):
        return "chat"
    return None


def _strip_profile(model_id: str) -> str:
    head, dot, rest = model_id.partition(".")
    return rest if dot and head in GEO_PREFIXES else model_id


def resolve(
    model_id: str, prompt_routers: dict[str, tuple[str, ...]] | None = None
) -> ResolvedModel:
    """Resolve ``model_id`` or raise the error Bedrock gives for it."""
    routers = {**DEFAULT_PROMPT_ROUTERS, **(prompt_routers or {})}
    match = _ARN.match(model_id)
    if match:
        kind, name = match.group(3), match.group(4)
        if kind in ("prompt-router", "default-prompt-router"):
            targets = routers.get(name) or routers.get(model_id)
            if not targets:
                raise BedrockError(
                    "ResourceNotFoundException", f"Prompt router {model_id} was not found."
                )
            return ResolvedModel(
                model_id,
                targets[0],
                "anthropic" if "claude" in targets[0] else family_of(targets[0]) or "chat",
                tuple(targets),
            )
        if kind in ("foundation-model", "inference-profile"):
            return _foundation(model_id, _strip_profile(name))
        raise BedrockError("ValidationException", "The provided model identifier is invalid.")
    if not _FOUNDATION_ID.match(model_id):
        raise BedrockError("ValidationException", "The provided model identifier is invalid.")
    return _foundation(model_id, _strip_profile(model_id))


def _foundation(requested: str, foundation_id: str) -> ResolvedModel:
    family = family_of(foundation_id)
    if family is None:
        raise BedrockError("ValidationException", "The provided model identifier is invalid.")
    return ResolvedModel(requested, foundation_id, family)
