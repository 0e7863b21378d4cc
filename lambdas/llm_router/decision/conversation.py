"""Conversations: the optional ``history`` of ``POST /ask``, and routing a follow-up in context.

A tutor is a conversation, but the stack stays stateless: the client sends the previous turns with
each question (``{"role": "user" | "assistant", "content": "..."}``, oldest first), as chat
clients do, and nothing is stored server-side.

**Validation** (:func:`parse_history`). Roles alternate, starting with ``user`` and ending with
``assistant``, so that the new question continues the conversation: the Converse API rejects two
messages of one role in a row, and merging or dropping turns to repair a history would change what
the client meant, so a malformed history is a 400 naming the first bad turn instead. Each content
is a non-empty string with no unpaired surrogate. Limits come from ``routes.json``
``conversation`` (``max_turns`` messages, ``max_total_chars`` over all contents): exceeding one is
a **400 naming the limit**, not a silent trim oldest-first. API Gateway's request model already
refuses more than ``max_turns`` turns, so the function agrees with it; a client that keeps a long
chat trims it itself and knows exactly what the answer model saw, and the cost a request can run
up (every turn is billed as answer-model input) stays bounded by the configuration.

**Routing** (:func:`route_followup`) is a pure function over the router's ``classify`` so every
router (semantic, LLM-assisted, hybrid) follows the same rule through the one core:

1. classify the previous user turns (the newest ``context_turns``, within the classifiers' input
   limit ``api.max_question_chars``): the conversation's category; and the new question alone;
2. a question that is *clearly* in a category other than the conversation's re-routes
   (``topic_changed``); a question that is clearly off-topic is declined, even mid-conversation;
3. anything else is a follow-up and keeps the conversation's category (``kept``): "why?" after a
   history question is not declined, and "what about a pentagon?" after a geometry question stays
   with math even if, alone, it leans to history;
4. a conversation that was itself off-topic gives no context: the question decides alone
   (``new_conversation``).

*Clearly* is measured where the classifier measures: for a semantic decision, its label's best
similarity must reach ``conversation.clear_min_similarity`` and lead every other label by
``conversation.clear_min_margin``. Follow-ups such as "why?" resemble no reference prompt (best
similarity below 0.36 on the dev set with the stand-in's embeddings), whereas off-topic questions
resemble the off-topic references and topic switches their category's. An LLM names a label without
a confidence: an explicit in-scope label counts as clear; its ``none`` does not on its own (a
bare "why?" has no topic), so the conversation plus the question is classified once more and the
question is declined only if that is off-topic too. The decision and its reason are in
``details["conversation"]``; every classifier call is in ``usages``, so cost reflects the context.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..config import OUT_OF_SCOPE, ConfigError, RoutesConfig
from ..records import record
from .classification import Classification
from .normalize import has_lone_surrogate

ROLES = ("user", "assistant")
USER, ASSISTANT = ROLES
KEPT, TOPIC_CHANGED, NEW_CONVERSATION = "kept", "topic_changed", "new_conversation"
DEFAULT_MAX_TURNS = 20  # messages (user and assistant) in one history
DEFAULT_MAX_TOTAL_CHARS = 20_000  # over all history contents, bounding the answer's input tokens
DEFAULT_CONTEXT_TURNS = 2  # previous user turns the router reads for the conversation's category
DEFAULT_CLEAR_MIN_SIMILARITY = 0.4
DEFAULT_CLEAR_MIN_MARGIN = 0.05
# An LLM's label for a bare "why?" or "how so?" is a guess: such a question has no topic of its own.
DEFAULT_CLEAR_MIN_WORDS = 3
_KEYS = frozenset(
    {
        "max_turns",
        "max_total_chars",
        "context_turns",
        "clear_min_similarity",
        "clear_min_margin",
        "clear_min_words",
        "ttl_hours",  # server-kept conversations: llm_router.governance.conversation_store
    }
)


class ConversationError(ValueError):
    """The ``history`` field is invalid; the message is for the client (a 400)."""


@record(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str

    def as_message(self) -> dict[str, Any]:
        """The turn as a Converse message."""
        return {"role": self.role, "content": [{"text": self.content}]}


@record(frozen=True)
class ConversationSettings:
    max_turns: int
    max_total_chars: int
    context_turns: int
    clear_min_similarity: float
    clear_min_margin: float
    clear_min_words: int = DEFAULT_CLEAR_MIN_WORDS


def _whole(section: Mapping[str, Any], key: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"conversation.{key} must be a whole number >= 1, got {value!r}")
    return value


def _fraction(section: Mapping[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"conversation.{key} must be a number, got {value!r}")
    if not -1 <= value <= 1:
        raise ConfigError(f"conversation.{key} must be a similarity in [-1, 1], got {value!r}")
    return float(value)


def parse_conversation(raw: Mapping[str, Any]) -> ConversationSettings:
    """The ``conversation`` section of routes.json, with defaults; ConfigError names a bad key."""
    section = raw.get("conversation", {})
    if not isinstance(section, Mapping):
        raise ConfigError("conversation must be an object")
    unknown = sorted(key for key in set(section) - _KEYS if not key.startswith("_"))
    if unknown:
        raise ConfigError(
            f"conversation: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    return ConversationSettings(
        max_turns=_whole(section, "max_turns", DEFAULT_MAX_TURNS),
        max_total_chars=_whole(section, "max_total_chars", DEFAULT_MAX_TOTAL_CHARS),
        context_turns=_whole(section, "context_turns", DEFAULT_CONTEXT_TURNS),
        clear_min_similarity=_fraction(
            section, "clear_min_similarity", DEFAULT_CLEAR_MIN_SIMILARITY
        ),
        clear_min_margin=_fraction(section, "clear_min_margin", DEFAULT_CLEAR_MIN_MARGIN),
        clear_min_words=_whole(section, "clear_min_words", DEFAULT_CLEAR_MIN_WORDS),
    )


# -- validation -------------------------------------------------------------------------------


def _turn(index: int, item: Any) -> Turn:
    where = f'"history"[{index}]'
    if not isinstance(item, Mapping):
        raise ConversationError(f'{where} must be an object {{"role": ..., "content": ...}}')
    extra = sorted(str(key) for key in set(item) - {"role", "content"})
    if extra:
        raise ConversationError(f"{where} has unknown field(s) {', '.join(extra)}")
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        raise ConversationError(f'{where}.role must be "user" or "assistant"')
    if not isinstance(content, str) or not content.strip():
        raise ConversationError(f"{where}.content must be a non-empty string")
    if has_lone_surrogate(content):
        raise ConversationError(f"{where}.content is not valid Unicode (an unpaired surrogate)")
    expected = ROLES[index % 2]
    if role != expected:
        raise ConversationError(
            f'{where}.role is "{role}" but "{expected}" was expected: turns alternate, starting '
            'with "user"'
        )
    return Turn(role, content)


def parse_history(value: Any, config: RoutesConfig) -> tuple[Turn, ...]:
    """The validated ``history`` of a request body (None or absent: no history).

    Raises :class:`ConversationError` with a message for the client, naming the limit or the turn.
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConversationError('"history" must be an array of {"role", "content"} turns')
    settings = parse_conversation(config.raw)
    if len(value) > settings.max_turns:
        raise ConversationError(
            f'"history" has {len(value)} turns; the maximum is {settings.max_turns} '
            "(conversation.max_turns): send only the most recent turns"
        )
    turns = tuple(_turn(index, item) for index, item in enumerate(value))
    if turns and turns[-1].role != ASSISTANT:
        raise ConversationError(
            '"history" must end with an "assistant" turn: the question is the next user turn'
        )
    total = sum(len(turn.content) for turn in turns)
    if total > settings.max_total_chars:
        raise ConversationError(
            f'"history" has {total} characters; the maximum is {settings.max_total_chars} '
            "(conversation.max_total_chars): send fewer or shorter turns"
        )
    return turns


def history_messages(history: Sequence[Turn]) -> list[dict[str, Any]]:
    """The history as Converse messages (what ``RouterService.ask`` takes as ``history``)."""
    return [turn.as_message() for turn in history]


def converse_messages(history: Sequence[Turn], question: str) -> list[dict[str, Any]]:
    """Converse ``messages``: the history, then the question as the next user turn."""
    return [*history_messages(history), Turn(USER, question).as_message()]


# -- routing ----------------------------------------------------------------------------------


def context_text(history: Sequence[Turn], turns: int, max_chars: int, question: str = "") -> str:
    """The newest ``turns`` user turns (and ``question``), oldest first, within ``max_chars``.

    Older turns are dropped first; a single turn longer than the limit keeps its end, the part
    nearest the question.
    """
    parts = [t.content.strip() for t in history if t.role == USER][-turns:]
    if question:
        parts.append(question.strip())
    kept: list[str] = []
    room = max_chars
    for part in reversed(parts):
        if room <= 0:
            break
        kept.append(part[-room:])
        room -= len(kept[-1]) + 1  # and the newline that joins it to the next
    return "\n".join(reversed(kept))


def _label_similarity(details: Mapping[str, Any]) -> Mapping[str, float] | None:
    if details.get("decided_by") == "llm":
        return None
    scores = details.get("label_similarity")
    return scores if isinstance(scores, Mapping) and scores else None


def is_clear(
    decision: Classification,
    categories: Sequence[str],
    settings: ConversationSettings,
    question: str = "",
) -> bool | None:
    """Whether the decision stands on its own: True, False, or None (cannot be measured).

    Semantic: the decided label (a category or the off-topic references) is the most similar label,
    at least ``clear_min_similarity``, ahead of every other by ``clear_min_margin``. LLM: an
    explicit in-scope label is clear when the question has ``clear_min_words`` words or more (a
    bare "why?" names no topic, so an LLM's label for it is a guess); its off-topic verdict cannot
    be measured (None).
    """
    scores = _label_similarity(decision.details)
    if scores is None:
        if decision.category in categories and not decision.used_fallback:
            return len(question.split()) >= settings.clear_min_words if question else True
        return False if decision.used_fallback else None
    own = scores.get(decision.category, -1.0)
    others = max((s for label, s in scores.items() if label != decision.category), default=-1.0)
    return own >= settings.clear_min_similarity and own - others >= settings.clear_min_margin


def _merge(
    chosen: Classification, calls: Sequence[Classification], conversation: dict[str, Any]
) -> Classification:
    """``chosen`` with every classifier call's usage and time, and the conversation decision."""
    usages = tuple(usage for call in calls for usage in call.usages)
    seconds = sum(call.seconds for call in calls)
    degraded = next((call.degraded for call in calls if call.degraded), None)
    return replace(
        chosen,
        seconds=seconds,
        usages=usages,
        details={**chosen.details, "conversation": conversation},
        degraded=chosen.degraded or degraded,
    )


def route_followup(
    question: str,
    history: Sequence[Turn],
    classify: Callable[[str], Classification],
    config: RoutesConfig,
) -> Classification:
    """The routing decision for ``question`` continuing ``history`` (see the module docstring).

    ``classify`` is the router's own decision for a text (``RouterService.classify``, so a failing
    classifier degrades the same way). Without a previous user turn this is ``classify(question)``
    plus ``details["conversation"]``.
    """
    settings = parse_conversation(config.raw)
    categories = config.category_names
    limit = config.api.max_question_chars
    previous_text = context_text(history, settings.context_turns, limit)
    if not previous_text:
        alone = classify(question)
        return _merge(alone, [alone], _note(NEW_CONVERSATION, "no previous turn", None, alone))
    previous = classify(previous_text)
    alone = classify(question)
    calls = [previous, alone]
    before = previous.category
    if before == OUT_OF_SCOPE:
        reason = "the conversation so far is off-topic, so the question decides alone"
        return _merge(alone, calls, _note(NEW_CONVERSATION, reason, before, alone))
    clear = is_clear(alone, categories, settings, question)
    if alone.category == before:
        reason = f"the question is about {before!r}, as the conversation is"
        return _merge(alone, calls, _note(KEPT, reason, before, alone))
    if clear:
        if alone.category == OUT_OF_SCOPE:
            reason = "the question is clearly off-topic, although the conversation is not"
        else:
            reason = f"the question is clearly about {alone.category!r}: a new topic"
        return _merge(alone, calls, _note(TOPIC_CHANGED, reason, before, alone))
    if clear is None:  # an LLM's off-topic verdict: ask again with the conversation
        context = classify(context_text(history, settings.context_turns, limit, question))
        calls.append(context)
        if context.category == OUT_OF_SCOPE:
            reason = "the question is off-topic, alone and with the conversation"
            return _merge(alone, calls, _note(TOPIC_CHANGED, reason, before, alone))
    reason = (
        f"a follow-up: alone the question is {_described(alone)}, not clearly a new topic, so "
        f"it stays with the conversation's category {before!r}"
    )
    kept = replace(previous, model_id=alone.model_id, details=dict(previous.details))
    return _merge(kept, calls, _note(KEPT, reason, before, alone))


def _described(decision: Classification) -> str:
    return "off-topic" if decision.category == OUT_OF_SCOPE else f"{decision.category!r}"


def _note(
    affinity: str, reason: str, previous: str | None, alone: Classification
) -> dict[str, Any]:
    return {
        "affinity": affinity,
        "reason": reason,
        "previous_category": previous,
        "question_alone": alone.category,
    }
