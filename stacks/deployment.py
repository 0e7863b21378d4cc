"""The ``deployment`` section of routes.json: hardening options of the stacks, with safe defaults.

.. code-block:: json

    "deployment": {
      "reserved_concurrency": "usage_plan",
      "p99_answer_seconds": 10,
      "waf": {"enabled": false, "rate_limit_per_5_minutes": 1000},
      "cors_allowed_origins": ["*"]
    }

* ``reserved_concurrency``: reserved concurrent executions of each function of a router stack, a
  cap on concurrent Bedrock spend if a key leaks. ``"usage_plan"`` derives it from the stage's
  throttle (burst + rate × ``p99_answer_seconds``, :mod:`stacks.concurrency`), so API Gateway
  throttles with a 429 before Lambda would (which API Gateway reports as a 500); an integer must
  be at least that; ``null`` reserves nothing (needed in accounts whose Lambda concurrency quota
  is still the new-account 10).
* ``p99_answer_seconds``: the 99th percentile of the router's answer time (the dashboard's
  "Latency seen by callers" p99); the one figure the derived concurrency rests on.
* ``waf``: an AWS WAF web ACL on the API stage (the AWS managed common rule set plus a rate-based
  rule per client IP); off by default because a web ACL costs a monthly fee. ``cdk synth -c
  waf=true`` (or ``false``) overrides ``enabled``.
* ``cors_allowed_origins``: the origins browsers may call the API from; ``["*"]`` suits the public
  demo, a real deployment should name its site's origin.

Only the stacks read this section, so it is parsed here rather than in ``llm_router``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_router.config import ConfigError

from stacks.concurrency import FROM_USAGE_PLAN

DEFAULT_RESERVED_CONCURRENCY = FROM_USAGE_PLAN
DEFAULT_P99_ANSWER_SECONDS = 10.0
DEFAULT_WAF_RATE_LIMIT = 1000  # requests per client IP per 5 minutes
WAF_RATE_LIMIT_RANGE = (10, 2_000_000_000)  # what AWS WAF accepts for a rate-based rule
DEFAULT_CORS_ORIGINS = ("*",)
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class WafSettings:
    enabled: bool
    rate_limit_per_5_minutes: int


@dataclass(frozen=True)
class DeploymentSettings:
    reserved_concurrency: int | str | None  # str: FROM_USAGE_PLAN (stacks.concurrency)
    p99_answer_seconds: float
    waf: WafSettings
    cors_allowed_origins: tuple[str, ...]


def context_flag(value: Any, name: str) -> bool | None:
    """A boolean CDK context value (``-c waf=true`` arrives as the string "true"); None if unset."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    raise ConfigError(f"context {name} must be true or false, got {value!r}")


def parse_deployment(
    raw: Mapping[str, Any], waf_override: bool | None = None
) -> DeploymentSettings:
    """The section's settings; ``waf_override`` (from the CDK context) wins over ``waf.enabled``."""
    section = raw.get("deployment") or {}
    if not isinstance(section, Mapping):
        raise ConfigError("deployment must be an object")
    return DeploymentSettings(
        reserved_concurrency=_reserved_concurrency(
            section.get("reserved_concurrency", DEFAULT_RESERVED_CONCURRENCY)
        ),
        p99_answer_seconds=_p99(section.get("p99_answer_seconds", DEFAULT_P99_ANSWER_SECONDS)),
        waf=_waf(section.get("waf") or {}, waf_override),
        cors_allowed_origins=_origins(section.get("cors_allowed_origins", DEFAULT_CORS_ORIGINS)),
    )


def _reserved_concurrency(value: Any) -> int | str | None:
    if value is None or value == FROM_USAGE_PLAN:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f'deployment.reserved_concurrency must be "{FROM_USAGE_PLAN}", a positive integer '
            f"or null, got {value!r}"
        )
    return value


def _p99(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 900:
        raise ConfigError(
            f"deployment.p99_answer_seconds must be seconds, above 0 and at most 900, "
            f"got {value!r}"
        )
    return float(value)


def _waf(section: Any, override: bool | None) -> WafSettings:
    if not isinstance(section, Mapping):
        raise ConfigError("deployment.waf must be an object")
    enabled = section.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"deployment.waf.enabled must be true or false, got {enabled!r}")
    limit = section.get("rate_limit_per_5_minutes", DEFAULT_WAF_RATE_LIMIT)
    low, high = WAF_RATE_LIMIT_RANGE
    if isinstance(limit, bool) or not isinstance(limit, int) or not low <= limit <= high:
        raise ConfigError(
            f"deployment.waf.rate_limit_per_5_minutes must be an integer from {low} to {high}, "
            f"got {limit!r}"
        )
    return WafSettings(
        enabled=enabled if override is None else override, rate_limit_per_5_minutes=limit
    )


def _origins(value: Any) -> tuple[str, ...]:
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(o, str) and o for o in value)
    ):
        raise ConfigError(
            f"deployment.cors_allowed_origins must be a non-empty list of origins, got {value!r}"
        )
    origins = tuple(value)
    if "*" in origins and len(origins) > 1:
        raise ConfigError("deployment.cors_allowed_origins: '*' cannot be combined with origins")
    for origin in origins:
        scheme, _, host = origin.partition("://")
        if origin != "*" and (scheme not in ("https", "http") or not host or "/" in host):
            raise ConfigError(
                f"deployment.cors_allowed_origins: {origin!r} is not an origin "
                "(scheme://host[:port], no path or trailing slash)"
            )
    return origins
