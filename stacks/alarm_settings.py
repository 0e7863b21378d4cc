"""The ``alarms`` section of routes.json: when each router stack's CloudWatch alarms fire.

Every threshold may be ``null`` to leave that alarm out. Rates are fractions (0.05 = 5 %) and are
judged only over periods with at least ``min_requests`` requests, so one off-topic question at
3 a.m. is not a 100 % decline rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from llm_router.config import ConfigError

DEFAULTS: dict[str, float | None] = {
    "period_minutes": 5,
    "evaluation_periods": 3,
    "min_requests": 10,
    "server_error_rate": 0.05,
    "latency_p99_timeout_fraction": 0.8,
    "bedrock_failures": 10,
    "decline_rate": 0.3,
    "daily_cost_usd": 10,
}
_REQUIRED = ("period_minutes", "evaluation_periods", "min_requests")
_RATES = ("server_error_rate", "latency_p99_timeout_fraction", "decline_rate")


@dataclass(frozen=True)
class AlarmSettings:
    period_minutes: int
    evaluation_periods: int
    min_requests: int
    server_error_rate: float | None  # API Gateway 5XXError / Count over a period
    latency_p99_timeout_fraction: float | None  # p99 Latency vs api.integration_timeout_seconds
    bedrock_failures: int | None  # failed Bedrock calls in a period
    decline_rate: float | None  # Declined / Requests: the expected rate plus headroom
    daily_cost_usd: float | None  # CostUSD summed over a rolling day


def parse_alarms(raw: Mapping[str, Any]) -> AlarmSettings:
    section = raw.get("alarms") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"alarms must be an object, got {section!r}")
    unknown = sorted(k for k in section if not str(k).startswith("_") and k not in DEFAULTS)
    if unknown:
        raise ConfigError(f"alarms: unknown keys {unknown}; known: {sorted(DEFAULTS)}")
    values: dict[str, Any] = {}
    for item in fields(AlarmSettings):
        key = item.name
        value = section.get(key, DEFAULTS[key])
        if value is None and key not in _REQUIRED:
            values[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"alarms.{key} must be a number{_or_null(key)}, got {value!r}")
        if not 0 < value < math.inf:
            raise ConfigError(f"alarms.{key} must be positive, got {value!r}")
        if key in _RATES and value > 1:
            raise ConfigError(f"alarms.{key} is a fraction of 1, got {value!r}")
        if key in (*_REQUIRED, "bedrock_failures"):
            if value != int(value):
                raise ConfigError(f"alarms.{key} must be a whole number, got {value!r}")
            value = int(value)
        values[key] = value
    return AlarmSettings(**values)


def _or_null(key: str) -> str:
    return "" if key in _REQUIRED else " or null"
