"""The project's topic bank: questions on many topics that a routes file may train against.

Why: a user writes 20-40 reference prompts per category and a few dozen off-topic ones. The head
learns "off-topic" from those few, so questions on subjects nobody listed (an exam question on
economics for a science desk, say) get whatever probability the nearest category leaves. The bank
(``routing/topic_bank.json``, about 500 hand-written questions in 45 topics, everyday and
academic) gives every routes file that sets ``out_of_scope.topic_bank: true`` a broad picture of
the world to decline, without writing it. Which of its topics count as off-topic depends on the
routes file's categories (a science desk must not train against the bank's physics), so the
matching happens where the embeddings are, at index build time
(``llm_router.decision.topic_adoption``).

Read lazily: only building an index and hashing the reference prompts need it, and a compiled
configuration inside the Lambda asset carries that hash already, so the function never opens it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

TOPIC_BANK_FILE = Path(__file__).resolve().parents[3] / "routing" / "topic_bank.json"
# The version of the matching rule (``decision.topic_adoption``), part of the reference prompts'
# hash when the bank is used, so an index matched by an older rule is rebuilt. Bump on a change.
MATCHING_VERSION = 2


# ``out_of_scope.topic_bank``: true, false, or AUTO (the default): the bank is used when the
# routes file has fewer than AUTO_BELOW off-topic prompts of its own. Measured (stand-in MiniLM,
# docs/routing-quality.md): with 30-40 off-topic prompts the bank raised off-topic declines by
# 0-23 points and never raised false refusals; the shipped routes.json, with 405, declined fewer
# with it (63.3% -> 54.2% on mmlu_dev), so a file that already describes its off-topic world
# keeps it.
AUTO = "auto"
AUTO_BELOW = 100


class TopicBankError(ValueError):
    """The topic bank file is missing or malformed."""


def uses_topic_bank(setting: object, off_topic_prompts: int) -> bool:
    """Whether a routes file trains against the bank (``out_of_scope.topic_bank``)."""
    if setting == AUTO:
        return off_topic_prompts < AUTO_BELOW
    if not isinstance(setting, bool):
        raise TopicBankError(
            f"out_of_scope.topic_bank must be true, false or {AUTO!r}, got {setting!r}"
        )
    return setting


@cache
def load_topic_bank(path: Path = TOPIC_BANK_FILE) -> Mapping[str, tuple[str, ...]]:
    """Topic name -> its questions, in the file's order (the order is part of the index's hash)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TopicBankError(f"cannot read the topic bank {path}: {exc}") from exc
    topics = raw.get("topics") if isinstance(raw, Mapping) else None
    if not isinstance(topics, Mapping) or not topics:
        raise TopicBankError(f"{path}: 'topics' must be an object of topic -> questions")
    bank: dict[str, tuple[str, ...]] = {}
    for name, questions in topics.items():
        if (
            not isinstance(questions, list)
            or not questions
            or not all(isinstance(q, str) and q.strip() for q in questions)
        ):
            raise TopicBankError(f"{path}: topic {name!r} must be a non-empty list of questions")
        bank[name] = tuple(questions)
    return bank
