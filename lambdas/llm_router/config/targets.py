"""Answer targets: which models may answer a category, in which proportions, and what backs them up.

``routes.json`` names, per category and preset (and optionally per tier), either a plain model id
(a pool of one, no fallbacks: the original sample's shape) or an object::

    {"pool": [{"model_id": "...", "weight": 3}, {"model_id": "us....", "weight": 1}],
     "fallbacks": ["us.anthropic...", "anthropic..."]}

The *pool* holds equivalent targets spread by weight (load balancing across models or cross-region
inference profiles, A/B splits). The *fallbacks* are tried in order when the chosen target fails
with an error worth failing over for. A request's attempt order is the chosen pool member, the rest
of the pool by weight, then the fallbacks, each model once.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from ..records import record


class TargetSpecError(ValueError):
    """An answer-target spec in routes.json is malformed."""


@record(frozen=True)
class AnswerTarget:
    model_id: str
    weight: float = 1.0


@record(frozen=True)
class TargetPlan:
    """The targets of one category: a weighted pool and an ordered fallback chain."""

    pool: tuple[AnswerTarget, ...]
    fallbacks: tuple[str, ...] = ()

    @property
    def primary(self) -> str:
        """The pool's heaviest target (the first on ties): what a single-model report names."""
        return max(self.pool, key=lambda t: t.weight).model_id

    def model_ids(self) -> tuple[str, ...]:
        """Every model this plan may call, pool first, each once."""
        return tuple(dict.fromkeys((*(t.model_id for t in self.pool), *self.fallbacks)))

    def choose(self, rng: random.Random | None = None) -> str:
        """One pool member, drawn with probability proportional to its weight."""
        if len(self.pool) == 1:
            return self.pool[0].model_id
        draw = (rng or random).random() * sum(t.weight for t in self.pool)
        for target in self.pool:
            draw -= target.weight
            if draw < 0:
                return target.model_id
        return self.pool[-1].model_id

    def attempt_order(self, rng: random.Random | None = None) -> tuple[str, ...]:
        """The chosen pool member, the rest of the pool by weight, then the fallbacks."""
        chosen = self.choose(rng)
        rest = sorted((t for t in self.pool if t.model_id != chosen), key=lambda t: -t.weight)
        return tuple(
            dict.fromkeys((chosen, *(t.model_id for t in rest), *self.fallbacks))
        )


def parse_plan(spec: Any, where: str) -> TargetPlan:
    """A TargetPlan from a plain model id or a ``{"pool": [...], "fallbacks": [...]}`` object."""
    if isinstance(spec, str):
        if not spec.strip():
            raise TargetSpecError(f"{where}: a model id must not be empty")
        return TargetPlan((AnswerTarget(spec),))
    if not isinstance(spec, Mapping):
        raise TargetSpecError(f"{where}: expected a model id or an object with 'pool'")
    unknown = set(spec) - {"pool", "fallbacks"}
    if unknown:
        raise TargetSpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    pool_spec = spec.get("pool")
    if isinstance(pool_spec, str):
        pool_spec = [pool_spec]
    if not isinstance(pool_spec, Sequence) or not pool_spec:
        raise TargetSpecError(f"{where}.pool: at least one target is required")
    pool = tuple(_pool_member(item, f"{where}.pool[{i}]") for i, item in enumerate(pool_spec))
    ids = [t.model_id for t in pool]
    if len(set(ids)) != len(ids):
        raise TargetSpecError(f"{where}.pool: a model appears twice")
    fallbacks = spec.get("fallbacks", [])
    if not isinstance(fallbacks, Sequence) or isinstance(fallbacks, str) or not all(
        isinstance(f, str) and f.strip() for f in fallbacks
    ):
        raise TargetSpecError(f"{where}.fallbacks: expected a list of model ids")
    return TargetPlan(pool, tuple(f for f in fallbacks if f not in ids))


def _pool_member(item: Any, where: str) -> AnswerTarget:
    if isinstance(item, str):
        return AnswerTarget(item)
    if not isinstance(item, Mapping) or not isinstance(item.get("model_id"), str):
        raise TargetSpecError(f"{where}: expected a model id or {{'model_id', 'weight'}}")
    try:
        weight = float(item.get("weight", 1.0))
    except (TypeError, ValueError):
        raise TargetSpecError(f"{where}.weight: expected a number") from None
    if not weight > 0:
        raise TargetSpecError(f"{where}.weight must be positive, got {weight}")
    return AnswerTarget(item["model_id"], weight)
