"""Reserved concurrency that holds the usage plan: API Gateway throttles (429) before Lambda.

Why derived: API Gateway's Lambda proxy integration reports a Lambda throttle (the Invoke API's
``TooManyRequestsException``, HTTP 429) to the caller as a bare ``500 {"message": "Internal
server error"}`` (AWS Lambda developer guide, "Handling Lambda errors with an API Gateway API":
"If the Lambda API rejects the invocation request, API Gateway returns a 500 error code"). No
gateway response type is specific to it: remapping ``DEFAULT_5XX`` to 429 would also turn real
faults into "retry later". So the stack sizes each function's reserved concurrency so that the
stage's throttle is always the limit that trips first, and API Gateway's own ``THROTTLED``
response (429, with ``Retry-After``) is what an overloaded client sees.

The bound: the stage admits at most ``burst`` requests at once and ``rate`` a second after that
(a token bucket), so if every request finishes within ``T`` seconds no more than
``burst + rate × T`` run at the same time (Little's law, ``L = λW``, plus the bucket's burst).
``T`` is routes.json ``deployment.p99_answer_seconds``: beyond it, only the slowest 1 % of answers
arriving at the full rate could push the function past its cap.

Only the functions that call models (the router and the streaming router) reserve: the cap is also
a bound on concurrent Bedrock spend. The feedback function calls no model; reserving for it too
would put three stacks over what an account with the default quota of 1,000 may reserve (all but
100): 3 stacks x 2 functions x 120 = 720 does not.

Pure arithmetic on routes.json (no CDK import), so the local API models the same caps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_router.config import ConfigError, RoutesConfig

# The value of routes.json deployment.reserved_concurrency that derives it from the usage plan.
FROM_USAGE_PLAN = "usage_plan"
# Lambda's default concurrency quota less the 100 executions an account must leave unreserved.
DEFAULT_RESERVABLE = 900
# What the THROTTLED gateway response tells clients: the bucket refills `rate` tokens a second.
THROTTLED_RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class StageThrottle:
    rate: float  # requests a second, per method
    burst: int


def stage_throttle(config: RoutesConfig) -> StageThrottle:
    """The stage's method throttle: at least every tier's, so no tier is capped below its plan."""
    tiers = config.tiers.values()
    rate = max([config.api.throttle_rate_limit, *(t.throttle_rate_limit for t in tiers)])
    burst = max([config.api.throttle_burst_limit, *(t.throttle_burst_limit for t in tiers)])
    return StageThrottle(rate, burst)


def required_concurrency(throttle: StageThrottle, latency_seconds: float) -> int:
    """The most executions the stage can keep in flight when each takes ``latency_seconds``."""
    return math.ceil(throttle.burst + throttle.rate * latency_seconds)


def reserved_concurrency(
    config: RoutesConfig, setting: int | str | None, p99_answer_seconds: float
) -> int | None:
    """Each function's reserved concurrency: derived, checked, or none.

    ``"usage_plan"`` derives it; an integer must be at least the derived figure (a smaller cap
    would make Lambda throttle first, and callers would get 500s instead of 429s); ``None``
    reserves nothing (an account whose concurrency quota is still the new-account 10).
    """
    if setting is None:
        return None
    throttle = stage_throttle(config)
    needed = required_concurrency(throttle, p99_answer_seconds)
    if setting == FROM_USAGE_PLAN:
        return needed
    if isinstance(setting, int) and setting < needed:
        raise ConfigError(
            f"deployment.reserved_concurrency {setting} cannot hold the usage plan: the stage "
            f"admits a burst of {throttle.burst} plus {throttle.rate:g} requests/s, each taking "
            f"up to {p99_answer_seconds:g} s (deployment.p99_answer_seconds), so up to {needed} "
            "run at once; beyond the cap Lambda throttles and API Gateway answers 500. Use "
            f'"{FROM_USAGE_PLAN}", at least {needed}, lower the tiers\' throttle, or null'
        )
    return int(setting)
