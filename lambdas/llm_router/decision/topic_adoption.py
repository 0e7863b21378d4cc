"""Match the project's topic bank to a routes file's categories, at index build time.

Why: with 20-40 reference prompts per category and a few dozen off-topic ones, the head's picture
of "off-topic" is whatever the user thought of, and its picture of each category is a few dozen
phrasings. The topic bank (``config.topic_bank``) holds questions on many topics; which of them
are off-topic depends on the categories (a science desk must not train against the bank's
physics, a legal help desk must not train against its law topics). Each topic is judged as a
whole, by a logistic head (``linear_head.fit_logistic``) trained on the routes file's own prompts
only:

* **adopted** into category C when at least ``ADOPT_SHARE`` of its questions are predicted C, and
  ``DOMINANCE`` times the share of any other category: its questions join C's training rows (more
  phrasings of the user's domain than the user wrote; a topic split between two categories is
  not one of them);
* **left out** when at least ``NEAR_SHARE`` of them are predicted some category: it sits near the
  domain, so training against it would refuse in-domain questions, and adopting it is not safe;
* **off-topic** otherwise: its questions join the off-topic rows.

Whole topics, not single questions: a topic's share is an average over a dozen questions, so one
odd phrasing neither adopts nor drops it, and a topic the user's domain covers is never split
into "in" and "against" halves. The shares are rates of the head's own predictions, so they mean
the same for any embedding model (no similarity threshold to retune for Titan or MiniLM).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..config import OUT_OF_SCOPE
from ..records import record
from .linear_head import fit_logistic

ADOPT_SHARE = 0.6  # of a topic's questions predicted one category: the topic may join it
DOMINANCE = 2.0  # ... if that category has this many times the share of any other category
NEAR_SHARE = 0.25  # of a topic's questions predicted any category: the topic is left out
ADOPTED, LEFT_OUT, OFF_TOPIC = "adopted", "left out", "off-topic"


@record(frozen=True)
class TopicDecision:
    topic: str
    outcome: str  # ADOPTED, LEFT_OUT or OFF_TOPIC
    label: str | None  # the category (adopted), OUT_OF_SCOPE (off-topic) or None (left out)
    shares: Mapping[str, float]  # per label, the share of the topic's questions predicted it


def match_topics(
    vectors: np.ndarray,
    labels: Sequence[str],
    classes: Sequence[str],
    bank_vectors: np.ndarray,
    bank_topics: Sequence[str],
) -> list[TopicDecision]:
    """One decision per topic (in first-seen order) from the routes file's own rows.

    ``vectors``/``labels``: the routes file's reference prompts (unit rows; labels among
    ``classes``, which hold OUT_OF_SCOPE); ``bank_vectors``/``bank_topics``: the bank's rows.
    Two rounds: the first judges every topic by the routes file's rows alone; the second judges
    the topics the first did not find off-topic again, by a head that also trains against the
    ones it did (a user's few off-topic prompts rarely cover code or statistics, so a topic that
    merely resembles a category more than those prompts would otherwise be adopted).
    """
    x = np.asarray(vectors, dtype=np.float64)
    bank = np.asarray(bank_vectors, dtype=np.float64)
    topics = np.array(bank_topics, dtype=object)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    first = _judge(x, y, classes, bank, topics)
    off = np.isin(topics, [d.topic for d in first if d.outcome == OFF_TOPIC])
    x2 = np.vstack([x, bank[off]])
    y2 = np.concatenate([y, np.full(int(off.sum()), index[OUT_OF_SCOPE])])
    second = {d.topic: d for d in _judge(x2, y2, classes, bank[~off], topics[~off])}
    return [second.get(d.topic, d) for d in first]


def _judge(
    x: np.ndarray, y: np.ndarray, classes: Sequence[str], bank: np.ndarray, topics: np.ndarray
) -> list[TopicDecision]:
    """Every topic's decision by a head trained on ``x``/``y`` (the module's rule)."""
    w, b = fit_logistic(x, y, len(classes))
    predicted = np.argmax(bank @ w + b, axis=1)
    categories = [c for c in classes if c != OUT_OF_SCOPE]
    decisions = []
    for topic in dict.fromkeys(topics):
        counts = np.bincount(predicted[topics == topic], minlength=len(classes))
        shares = {c: round(float(counts[i] / counts.sum()), 4) for i, c in enumerate(classes)}
        best = max(categories, key=lambda c: shares[c])
        runner_up = max((shares[c] for c in categories if c != best), default=0.0)
        if shares[best] >= ADOPT_SHARE and shares[best] >= DOMINANCE * runner_up:
            decisions.append(TopicDecision(topic, ADOPTED, best, shares))
        elif sum(shares[c] for c in categories) >= NEAR_SHARE:
            decisions.append(TopicDecision(topic, LEFT_OUT, None, shares))
        else:
            decisions.append(TopicDecision(topic, OFF_TOPIC, OUT_OF_SCOPE, shares))
    return decisions
