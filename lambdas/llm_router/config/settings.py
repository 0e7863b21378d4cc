"""The operational sections of routes.json: tiers, resilience, response policy and prices.

:mod:`llm_router.config` reads what routes (categories, models, thresholds); this module reads how
the router behaves around that: which tier a caller is in, how long a request may take and how it
fails over, how much of the decision a response shows, and what each model costs. Each section is
optional in the file and has the defaults documented in the README.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..records import record
from .targets import TargetPlan, TargetSpecError, parse_plan

ROUTING_DETAILS = ("summary", "full")
GEO_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")
# The environment variable naming the daily budget's DynamoDB table (set by the stack). Here, not
# in llm_router.governance.budget, so the factory can tell whether a guard is wanted without
# importing it.
BUDGET_TABLE_ENV = "BUDGET_TABLE_NAME"
# The server-kept conversations' table (llm_router.governance.conversation_store), set by the stack.
CONVERSATION_TABLE_ENV = "CONVERSATION_TABLE_NAME"
TIER_KEYS_ENV = "ROUTER_TIER_API_KEYS"  # JSON {tier: API key id}, set by the stack


class SettingsError(ValueError):
    """A section of routes.json is malformed; the message names the key."""


def _positive(section: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = section.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}.{key} must be a number, got {value!r}") from None
    if not number > 0 or math.isinf(number):
        raise SettingsError(f"{where}.{key} must be positive, got {value!r}")
    return number


@record(frozen=True)
class Tier:
    """A class of callers with its own API key, usage plan, answer targets and daily budget."""

    name: str
    throttle_rate_limit: float
    throttle_burst_limit: int
    quota_requests_per_day: int
    answerers: Mapping[str, TargetPlan]  # overrides of the preset's targets, by category
    daily_budget_usd: float | None  # None: the stack-wide budget applies alone


def parse_tiers(
    raw: Mapping[str, Any],
    categories: tuple[str, ...],
    api_defaults: Mapping[str, float],
    preset: str,
) -> tuple[dict[str, Tier], str]:
    """The tiers and the default tier's name. Without a ``tiers`` section: one tier, ``standard``.

    A tier's ``answerers`` may be keyed by preset (``{"blog-2024": {"faq": ...}}``) or directly by
    category; limits it does not set are the ``api`` section's.
    """
    section = raw.get("tiers") or {"default": "standard", "definitions": {"standard": {}}}
    definitions = section.get("definitions")
    if not isinstance(definitions, Mapping) or not definitions:
        raise SettingsError("tiers.definitions must name at least one tier")
    tiers: dict[str, Tier] = {}
    for name, spec in definitions.items():
        where = f"tiers.definitions.{name}"
        if not isinstance(spec, Mapping):
            raise SettingsError(f"{where} must be an object")
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise SettingsError(f"tier names are letters, digits, '-' and '_', got {name!r}")
        overrides = spec.get("answerers", {})
        if preset in overrides and isinstance(overrides[preset], Mapping):
            overrides = overrides[preset]
        plans: dict[str, TargetPlan] = {}
        for category, target in overrides.items():
            if category not in categories:
                if category in raw.get("presets", {}):
                    continue  # another preset's overrides
                raise SettingsError(f"{where}.answerers names an unknown category {category!r}")
            try:
                plans[category] = parse_plan(target, f"{where}.answerers.{category}")
            except TargetSpecError as exc:
                raise SettingsError(str(exc)) from None
        budget = spec.get("daily_budget_usd")
        tiers[name] = Tier(
            name=name,
            throttle_rate_limit=_positive(
                spec, "throttle_rate_limit", api_defaults["throttle_rate_limit"], where
            ),
            throttle_burst_limit=int(
                _positive(spec, "throttle_burst_limit", api_defaults["throttle_burst_limit"], where)
            ),
            quota_requests_per_day=int(
                _positive(
                    spec, "quota_requests_per_day", api_defaults["quota_requests_per_day"], where
                )
            ),
            answerers=plans,
            daily_budget_usd=None if budget is None else _positive(
                spec, "daily_budget_usd", 0, where
            ),
        )
    default = section.get("default", next(iter(tiers)))
    if default not in tiers:
        raise SettingsError(f"tiers.default {default!r} is not a defined tier")
    return tiers, default


@record(frozen=True)
class BreakerSettings:
    failure_threshold: int  # failures within the window that open the breaker
    window_seconds: float
    cooldown_seconds: float  # how long an open breaker skips its target before a trial call


@record(frozen=True)
class ResilienceSettings:
    """How a request spends its time budget: attempts, back-off, per-stage timeouts, breaker."""

    attempts_per_target: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    classification_timeout_seconds: float
    answer_attempt_timeout_seconds: float
    response_margin_seconds: float  # the budget ends this long before API Gateway's timeout
    function_timeout_margin_seconds: float  # the function may live this long past the budget
    breaker: BreakerSettings


def parse_resilience(raw: Mapping[str, Any]) -> ResilienceSettings:
    section = raw.get("resilience", {})
    where = "resilience"
    breaker = section.get("breaker", {})
    attempts = int(_positive(section, "attempts_per_target", 2, where))
    return ResilienceSettings(
        attempts_per_target=attempts,
        backoff_base_seconds=_positive(section, "backoff_base_seconds", 0.1, where),
        backoff_max_seconds=_positive(section, "backoff_max_seconds", 1.0, where),
        classification_timeout_seconds=_positive(
            section, "classification_timeout_seconds", 5.0, where
        ),
        answer_attempt_timeout_seconds=_positive(
            section, "answer_attempt_timeout_seconds", 20.0, where
        ),
        response_margin_seconds=_positive(section, "response_margin_seconds", 1.0, where),
        function_timeout_margin_seconds=_positive(
            section, "function_timeout_margin_seconds", 2.0, where
        ),
        breaker=BreakerSettings(
            failure_threshold=int(_positive(breaker, "failure_threshold", 5, f"{where}.breaker")),
            window_seconds=_positive(breaker, "window_seconds", 60, f"{where}.breaker"),
            cooldown_seconds=_positive(breaker, "cooldown_seconds", 30, f"{where}.breaker"),
        ),
    )


@record(frozen=True)
class ResponseSettings:
    routing_details: str  # "summary" (deployed default) or "full" (adds the neighbours)


def parse_response(raw: Mapping[str, Any]) -> ResponseSettings:
    details = raw.get("response", {}).get("routing_details", "summary")
    if details not in ROUTING_DETAILS:
        raise SettingsError(f"response.routing_details must be one of {ROUTING_DETAILS}")
    return ResponseSettings(routing_details=details)


@record(frozen=True)
class ModelPrice:
    input_per_1k: float
    output_per_1k: float

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_1k + output_tokens * self.output_per_1k) / 1000


def parse_prices(raw: Mapping[str, Any]) -> dict[str, ModelPrice]:
    """USD per 1,000 tokens by foundation model id (keys starting with '_' are comments)."""
    prices: dict[str, ModelPrice] = {}
    for model_id, spec in raw.get("prices", {}).items():
        if model_id.startswith("_"):
            continue
        where = f"prices.{model_id}"
        try:
            price = ModelPrice(float(spec["input_per_1k"]), float(spec["output_per_1k"]))
        except (KeyError, TypeError, ValueError):
            raise SettingsError(f"{where} needs numeric input_per_1k and output_per_1k") from None
        if price.input_per_1k < 0 or price.output_per_1k < 0:
            raise SettingsError(f"{where}: prices must not be negative")
        prices[model_id] = price
    return prices


def priced_model_id(model_id: str) -> str:
    """The foundation model an id is billed as: an inference profile costs what its model does."""
    if model_id.startswith("arn:"):
        model_id = model_id.rsplit("/", 1)[-1]
    head, dot, rest = model_id.partition(".")
    return rest if dot and head in GEO_PREFIXES and "." in rest else model_id
