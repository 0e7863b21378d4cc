"""The routing-quality knobs of routes.json: the ``routing`` section and the head's thresholds.

Parsed here from ``config.raw`` (``config.py`` parses the rest of the file) so the routing-quality
work can add settings without touching the core's parser. Every value is validated with a message
that names the key.

``routing``:

* ``false_refusal_cost`` (F, default 12): in the threshold fit, declining an in-domain question
  counts F times a leaked off-topic question (rates, so the fit set's mix does not matter). A
  leak costs one answer from the cheapest target, whose system prompt declines off-topic topics
  anyway (about $0.0006 with Claude 3 Haiku at the blog's question size); a false refusal tells a
  user with a real in-domain question to go away, and likely loses them. 12 is the
  smallest round F at which the fit, on the reference prompts' topic-held-out predictions, keeps
  false refusals under the issue's 2% floor (measured with the stand-in's MiniLM: F 8 -> 3.1%,
  10 -> 2.6%, 12 -> 1.9%, 20 -> 1.2% held-out false refusals). It also sits above the trade-off's
  slope the issue measured on MMLU (2% -> 6% false refusals bought 29 points of off-topic
  declines, about 7 to 1), so the fit stays at the low-refusal end: when in doubt, answer.
* ``ambiguous_to``: where a question that is legitimately either of two categories goes:
  ``likeliest`` (the default: the more probable of the two), a category name, or ``premium`` (the
  category whose answer target is dearest). Such questions are never declined. The default is the
  likeliest because ``premium`` answers every close call of every category with one model, which
  on a domain whose categories are not ordered by difficulty is simply the wrong category.
* ``ambiguous_min_probability`` (default 0.25): a question is ambiguous when its two likeliest
  categories each have at least this probability.
* ``max_input_chars`` (default ``normalize.DEFAULT_MAX_CHARS``): the routing text's length limit.
* ``degraded_target`` (default ``cheapest``): the dearest answer target a request may reach when
  its classification is unavailable or part of what the answer model would read is off-topic
  (``llm_router.decision.coverage``): ``cheapest`` (the cheapest category's primary target, by
  price) or a model id that answers some category. Its price is the cap.
* ``segment_min_words`` (default 3) and ``max_segments`` (default 12): how the coverage check cuts
  a text into separately classified segments (``llm_router.decision.coverage``).

``semantic.decision`` (``head``, the default when the index ships a head, or ``knn``),
``semantic.decline_probability`` (decline when P(off-topic) is at least this) and
``hybrid.min_probability`` (the hybrid escalates below it) are the head's thresholds, written by
``scripts/evaluate.py --fit``. ``semantic.knn_weight`` (default 0.0: the head alone; at most
``MAX_KNN_WEIGHT``) blends the vote of the question's ``semantic.k`` nearest reference prompts into
the head's probabilities before either threshold is applied: ``(1 - w) x head + w x vote shares``.
The fit chooses it too, by the out-of-fold log-loss of the blend on the reference prompts
(``scripts/evaluation/head_fit.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..config import ConfigError, RoutesConfig
from ..records import record
from .normalize import DEFAULT_MAX_CHARS

PREMIUM = "premium"
LIKELIEST = "likeliest"
DECISIONS = ("head", "knn")
DEFAULT_FALSE_REFUSAL_COST = 12.0
DEFAULT_AMBIGUOUS_MIN_PROBABILITY = 0.25
DEFAULT_DECLINE_PROBABILITY = 0.93
DEFAULT_KNN_WEIGHT = 0.0  # the head alone, until evaluate.py --fit chooses a weight
MAX_KNN_WEIGHT = 0.9  # below 1: the head always has a say (a pure vote is semantic.decision knn)
CHEAPEST = "cheapest"
DEFAULT_SEGMENT_MIN_WORDS = 3
DEFAULT_MAX_SEGMENTS = 12
_ROUTING_KEYS = ("false_refusal_cost", "ambiguous_to", "ambiguous_min_probability",
                 "max_input_chars", "degraded_target", "segment_min_words", "max_segments",
                 "_about")


@record(frozen=True)
class RoutingPolicy:
    false_refusal_cost: float
    ambiguous_to: str  # a category, LIKELIEST or PREMIUM
    ambiguous_min_probability: float
    max_input_chars: int
    decision: str  # "head" or "knn"
    decline_probability: float
    hybrid_min_probability: float
    degraded_target: str = CHEAPEST  # CHEAPEST or an answer model id
    segment_min_words: int = DEFAULT_SEGMENT_MIN_WORDS
    max_segments: int = DEFAULT_MAX_SEGMENTS
    knn_weight: float = DEFAULT_KNN_WEIGHT  # the nearest neighbours' share of the head's decision

    def degraded_model(self, config: RoutesConfig, tier: str | None = None) -> str:
        """The answer target whose price caps a degraded or partly off-topic request."""
        if self.degraded_target != CHEAPEST:
            return self.degraded_target
        return config.answerer_for(config.cheapest_category(tier), tier)

    def ambiguous_category(
        self, config: RoutesConfig, likeliest: str, tier: str | None = None
    ) -> str:
        """The category an ambiguous question is answered by: ``likeliest`` (the more probable
        candidate, passed in), the named category, or for ``premium`` the dearest target's."""
        if self.ambiguous_to == LIKELIEST:
            return likeliest
        if self.ambiguous_to != PREMIUM:
            return self.ambiguous_to
        return config.dearest_category(tier)


def _number(section: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}.{key} must be a number, got {value!r}")
    return float(value)


def _probability(section: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = _number(section, key, default, where)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}.{key} must be between 0 and 1, got {value!r}")
    return value


def parse_routing(config: RoutesConfig) -> RoutingPolicy:
    """The policy from ``config.raw``; ConfigError names the offending key."""
    raw = config.raw
    routing = raw.get("routing", {})
    if not isinstance(routing, Mapping):
        raise ConfigError("routing must be an object")
    unknown = set(routing) - set(_ROUTING_KEYS)
    if unknown:
        raise ConfigError(
            f"routing has unknown keys {sorted(unknown)}; known: {list(_ROUTING_KEYS[:-1])}"
        )
    cost = _number(routing, "false_refusal_cost", DEFAULT_FALSE_REFUSAL_COST, "routing")
    if cost <= 0:
        raise ConfigError(f"routing.false_refusal_cost must be positive, got {cost!r}")
    ambiguous_to = routing.get("ambiguous_to", LIKELIEST)
    if ambiguous_to not in (LIKELIEST, PREMIUM) and ambiguous_to not in config.categories:
        raise ConfigError(
            f"routing.ambiguous_to must be {LIKELIEST!r}, {PREMIUM!r} or a category "
            f"({', '.join(config.category_names)}), got {ambiguous_to!r}"
        )
    chars = routing.get("max_input_chars", DEFAULT_MAX_CHARS)
    if isinstance(chars, bool) or not isinstance(chars, int) or chars < 50:
        raise ConfigError(f"routing.max_input_chars must be an integer >= 50, got {chars!r}")
    degraded = routing.get("degraded_target", CHEAPEST)
    if degraded != CHEAPEST and degraded not in config.answerer_model_ids():
        raise ConfigError(
            f"routing.degraded_target must be {CHEAPEST!r} or a model that answers a category, "
            f"got {degraded!r}"
        )
    if degraded != CHEAPEST and config.price_of(degraded) is None:
        raise ConfigError(f"routing.degraded_target {degraded!r} has no price in prices")
    semantic = raw.get("semantic", {})
    hybrid = raw.get("hybrid", {})
    decision = semantic.get("decision", "head")
    if decision not in DECISIONS:
        raise ConfigError(f"semantic.decision must be one of {DECISIONS}, got {decision!r}")
    return RoutingPolicy(
        false_refusal_cost=cost,
        ambiguous_to=ambiguous_to,
        ambiguous_min_probability=_probability(
            routing, "ambiguous_min_probability", DEFAULT_AMBIGUOUS_MIN_PROBABILITY, "routing"
        ),
        max_input_chars=chars,
        decision=decision,
        decline_probability=_probability(
            semantic, "decline_probability", DEFAULT_DECLINE_PROBABILITY, "semantic"
        ),
        hybrid_min_probability=_probability(hybrid, "min_probability", 0.0, "hybrid"),
        degraded_target=degraded,
        segment_min_words=_count(routing, "segment_min_words", DEFAULT_SEGMENT_MIN_WORDS),
        max_segments=_count(routing, "max_segments", DEFAULT_MAX_SEGMENTS),
        knn_weight=_knn_weight(semantic),
    )


def _knn_weight(semantic: Mapping[str, Any]) -> float:
    value = _number(semantic, "knn_weight", DEFAULT_KNN_WEIGHT, "semantic")
    if not 0.0 <= value <= MAX_KNN_WEIGHT:
        raise ConfigError(
            f"semantic.knn_weight must be between 0 (the head alone) and {MAX_KNN_WEIGHT}, "
            f"got {value!r}"
        )
    return value


def _count(section: Mapping[str, Any], key: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"routing.{key} must be a whole number >= 1, got {value!r}")
    return value
