"""The cost cap: which answer targets a request may reach when its decision cannot be trusted.

Two situations end here: classification was unavailable (every classifier failed, so the decision
is the configured default, not a reading of the text), or part of what the answer model would
read is off-topic (:mod:`.coverage`). Neither may cost more than the degraded target
(``routing.degraded_target``; by default the cheapest category's primary target): the request is
answered by its category's targets priced at most the degraded target's price, or, when none is,
by the degraded target itself. Off-topic text is then never answered by a dearer model, whatever
the configuration's categories and prices; the configured system prompt, which every target gets,
still declines the off-topic part.

Prices are ``prices`` in routes.json (input plus output per 1,000 tokens); a target with no price
counts as dearer than any cap, so an unpriced model is never reached through a cap.
"""

from __future__ import annotations

import math

from ..config import RoutesConfig
from ..config.targets import AnswerTarget, TargetPlan


def unit_price(config: RoutesConfig, model_id: str) -> float:
    """Input plus output USD per 1,000 tokens; infinite when the model has no price."""
    price = config.price_of(model_id)
    return price.input_per_1k + price.output_per_1k if price else math.inf


def within_cap(config: RoutesConfig, plan: TargetPlan, cap_model: str) -> bool:
    """Whether every target of ``plan`` costs at most ``cap_model``."""
    cap = unit_price(config, cap_model)
    return all(unit_price(config, model) <= cap for model in plan.model_ids())


def pool_within_cap(config: RoutesConfig, plan: TargetPlan, cap_model: str) -> bool:
    """Whether the targets that answer when nothing fails (the pool) cost at most ``cap_model``;
    its fallbacks answer only when the pool fails."""
    cap = unit_price(config, cap_model)
    return all(unit_price(config, target.model_id) <= cap for target in plan.pool)


def capped_plan(config: RoutesConfig, plan: TargetPlan, cap_model: str) -> TargetPlan:
    """``plan``'s targets priced at most ``cap_model``, in plan order; when none is,
    ``cap_model`` with the configuration's other answer targets within its price as fallbacks."""
    if within_cap(config, plan, cap_model):
        return plan
    cap = unit_price(config, cap_model)
    allowed = [model for model in plan.model_ids() if unit_price(config, model) <= cap]
    if not allowed:
        others = [m for m in config.answerer_model_ids() if m != cap_model]
        allowed = [cap_model, *(m for m in others if unit_price(config, m) <= cap)]
    return TargetPlan((AnswerTarget(allowed[0]),), tuple(allowed[1:]))


def premium_models(config: RoutesConfig, tier: str | None = None) -> frozenset[str]:
    """The dearest answer targets (by unit price) over every category's plan for ``tier``."""
    models = {m for c in config.categories for m in config.plan_for(c, tier).model_ids()}
    top = max(unit_price(config, m) for m in models)
    return frozenset(m for m in models if unit_price(config, m) == top)
