"""What a cached answer is keyed by: the question, its category, the answer configuration, the
caller's scope and the conversation before it.

A hit must be an answer the router would give now to this caller, so the key holds

* the **normalised question** (Unicode NFKC, case folded, whitespace collapsed, closing
  punctuation dropped: "What is the capital of Peru?" and "what is the capital of  peru" are one
  question);
* the **category** the router decided;
* the **answer configuration's version**: a hash of the system prompt, max tokens, temperature
  and the category's answer targets (primary and fallbacks). Editing any of them in routes.json
  invalidates every entry it shaped, with no purge;
* the **scope**: the caller's tier, or the hash of its API key id when ``cache.scope`` is
  ``api_key`` (no tier's or key's question ever reads another's answer);
* the **context**: a hash of the conversation history, empty for a lone question, so a follow-up
  is only served an answer given after the same conversation.

Keys are SHA-256 digests: the table never holds a question in its keys (the question and the
answer are attributes, encrypted at rest with the table).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from ...config import RoutesConfig
from ...config.targets import TargetPlan

KEY_FORMAT = 1  # bump to invalidate every entry after a change of the key's layout
_WHITESPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?.!。？！]+$")


def digest(*parts: Any) -> str:
    payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def cache_text(question: str) -> str:
    """The question as the exact cache compares it."""
    text = unicodedata.normalize("NFKC", question).casefold()
    return _TRAILING.sub("", _WHITESPACE.sub(" ", text).strip())


def config_version(config: RoutesConfig, plan: TargetPlan) -> str:
    """A short hash of everything that shapes an answer besides the question."""
    answering = config.answering
    return digest(
        KEY_FORMAT,
        answering.system_prompt,
        answering.max_tokens,
        answering.temperature,
        list(plan.model_ids()),
    )[:16]


def scope_of(mode: str, tier: str, api_key_id: str | None) -> str:
    """``tier#<tier>``, or ``key#<hash>`` when entries are per API key and the key is known
    (a direct invoke has no key: it falls back to its tier's scope)."""
    if mode == "api_key" and api_key_id:
        return "key#" + hashlib.sha256(api_key_id.encode("utf-8")).hexdigest()[:24]
    return f"tier#{tier}"


def context_of(history: Sequence[Any]) -> str:
    """A hash of the conversation before the question; empty for a lone question."""
    if not history:
        return ""
    return digest([[turn.role, cache_text(turn.content)] for turn in history])[:32]
