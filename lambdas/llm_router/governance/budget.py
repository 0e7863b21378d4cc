"""The daily budget guard: count what routing spends per UTC day and say when to economise or stop.

``routes.json`` sets a daily USD budget per stack (``budget.daily_usd``) and optionally per tier
(``tiers.definitions.<tier>.daily_budget_usd``)::

    "budget": {"daily_usd": 20, "soft_fraction": 0.8, "ttl_days": 3}

Below ``soft_fraction`` of a budget the level is ``ok``; from there ``soft`` (the core answers
with the cheapest target of each category); at the budget ``hard`` (the core answers 429 with
Retry-After until midnight UTC). With two budgets (stack and tier) the stricter level wins.
``daily_usd: null`` turns the stack-wide budget off; a tier's own budget still applies, and with
no budget anywhere the guard is off (``BudgetGuard.from_env`` returns None).

The default, $20 a day, is far above a demo (the blog's question costs $0.0004 with Claude 3 Haiku
and $0.005 with Claude 3.5 Sonnet: 4,000 Sonnet answers a day), yet caps what a leaked API key can
spend in a day well below the usage plan's request quota at Sonnet's longest answers.

Spend lives in DynamoDB (``BUDGET_TABLE_NAME``: partition key ``pk`` string, TTL attribute
``expires_at``), one item per day and scope: ``spend#2026-11-23#stack`` and
``spend#2026-11-23#tier#pro``, with the USD amount in ``usd``. ``record`` adds with UpdateItem's
atomic ADD, so concurrent functions never lose an increment, and sets ``expires_at`` so that old
days expire after ``ttl_days``. A new day is a new key: the count starts at zero by itself.

DynamoDB failures never fail a request: ``check`` logs and answers ``ok``, ``record`` logs and
drops the increment. The guard protects against a runaway bill over a day, which a few minutes of
an unavailable table cannot produce (the usage plan's throttle still bounds the rate), whereas
failing closed would turn a DynamoDB incident into an outage of the router itself. The client has
short timeouts and few retries so that the guard cannot eat the request's time budget.

Hand-written over a library because it is two DynamoDB calls; the low-level client (not the boto3
resource layer) keeps the import cheap. Creating a DynamoDB client still costs about as much as
the Bedrock one (botocore loads DynamoDB's service model: ~100 ms measured on a busy 2-core
machine), so ``from_env`` creates it in a background thread at init, overlapping the rest of the
cold start and the first request's model calls. Until it is ready ``check`` does not wait: the
first request of a cold function is served unchecked, like a request during a DynamoDB failure.
``record`` waits for it (briefly), so no spend goes uncounted because of the warm-up.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..config import ConfigError, RoutesConfig
from ..config.settings import BUDGET_TABLE_ENV
from ..observability.tracing import traced_call
from ..records import record

DEFAULT_DAILY_USD = 20.0
DEFAULT_SOFT_FRACTION = 0.8
DEFAULT_TTL_DAYS = 3
LEVELS = ("off", "ok", "soft", "hard")  # in order of severity
STACK_SCOPE = "stack"
_SECONDS_PER_DAY = 86_400
_RECORD_WAIT_SECONDS = 2.0  # how long record() waits for a client still being created
logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@record(frozen=True)
class BudgetSettings:
    daily_usd: float | None  # None: no stack-wide budget
    soft_fraction: float
    ttl_days: int


def parse_budget(raw: Mapping[str, Any]) -> BudgetSettings:
    """The ``budget`` section of routes.json, with defaults; ``ConfigError`` names a bad key."""
    section = raw.get("budget", {})
    if not isinstance(section, Mapping):
        raise ConfigError("budget must be an object")
    unknown = set(section) - {"daily_usd", "soft_fraction", "ttl_days"}
    unknown = {key for key in unknown if not key.startswith("_")}
    if unknown:
        raise ConfigError(f"budget: unknown key(s) {', '.join(sorted(unknown))}")
    daily = section.get("daily_usd", DEFAULT_DAILY_USD)
    if daily is not None:
        daily = _number(daily, "budget.daily_usd")
        if not daily > 0:
            raise ConfigError(f"budget.daily_usd must be positive or null, got {daily!r}")
    soft = _number(section.get("soft_fraction", DEFAULT_SOFT_FRACTION), "budget.soft_fraction")
    if not 0 < soft <= 1:
        raise ConfigError(f"budget.soft_fraction must be in (0, 1], got {soft!r}")
    ttl = section.get("ttl_days", DEFAULT_TTL_DAYS)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise ConfigError(f"budget.ttl_days must be a whole number of days >= 1, got {ttl!r}")
    return BudgetSettings(daily, soft, ttl)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{where} must be finite, got {value!r}")
    return number


@record(frozen=True)
class BudgetState:
    """Where today's spend stands against the strictest budget that applies."""

    level: str  # "off", "ok", "soft" or "hard"
    spent_usd: float
    limit_usd: float | None
    retry_after_seconds: float  # until midnight UTC, when a new day's budget starts
    scope: str | None = None  # "stack" or "tier#<name>": the budget that set the level
    error: str | None = None  # set when DynamoDB failed and the level is an assumed "ok"


def spend_key(day: str, scope: str) -> str:
    return f"spend#{day}#{scope}"


def tier_scope(tier: str) -> str:
    return f"tier#{tier}"


def dynamodb_client(
    endpoint_url: str | None = None, timeout_seconds: float = 1, **kwargs: Any
) -> Any:
    """A low-level DynamoDB client that gives up fast: the guard must not hold a request up.

    The local run passes a longer ``timeout_seconds``: its moto server is a thread of the same
    busy process, where a one-second read can time out and drop the spend it records."""
    from botocore.config import Config

    from ..models.bedrock import aws_client

    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return aws_client("dynamodb", endpoint_url=endpoint_url, config=config, **kwargs)


class BudgetGuard:
    """Checks and records the day's spend for the stack and the caller's tier."""

    def __init__(
        self,
        config: RoutesConfig,
        table_name: str,
        client: Any | None = None,
        clock: Clock = utc_now,
        settings: BudgetSettings | None = None,
    ) -> None:
        self.config = config
        self.table_name = table_name
        self.settings = settings or parse_budget(config.raw)
        self._client = client
        self._clock = clock
        self._warming: threading.Thread | None = None

    @classmethod
    def from_env(
        cls, config: RoutesConfig, clock: Clock = utc_now, client: Any | None = None
    ) -> BudgetGuard | None:
        """The guard on ``BUDGET_TABLE_NAME``; None when there is no table or no budget at all."""
        table = os.environ.get(BUDGET_TABLE_ENV)
        if not table:
            return None
        guard = cls(config, table, client=client, clock=clock)
        if not guard.enabled:
            return None
        if client is None:
            guard.warm_up()
        return guard

    def warm_up(self) -> None:
        """Create the DynamoDB client in a background thread (see the module's docstring)."""

        def create() -> None:
            try:
                self._client = dynamodb_client()
            except Exception as exc:  # noqa: BLE001 - check/record retry and log it
                logger.warning("budget: creating the DynamoDB client failed: %r", exc)

        self._warming = threading.Thread(target=create, name="budget-warm-up", daemon=True)
        self._warming.start()

    def _ready(self, wait: float) -> bool:
        """Whether the client may be used now, waiting up to ``wait`` s for the warm-up."""
        if self._warming is not None:
            self._warming.join(wait)
            if self._warming.is_alive():
                return False
            self._warming = None
        return True

    @property
    def enabled(self) -> bool:
        return self.settings.daily_usd is not None or any(
            t.daily_budget_usd is not None for t in self.config.tiers.values()
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = dynamodb_client()
        return self._client

    def limits(self, tier: str) -> dict[str, float]:
        """{scope: daily USD} of the budgets that apply to a tier's requests."""
        limits = {}
        if self.settings.daily_usd is not None:
            limits[STACK_SCOPE] = self.settings.daily_usd
        tier_config = self.config.tiers.get(tier)
        if tier_config is not None and tier_config.daily_budget_usd is not None:
            limits[tier_scope(tier)] = tier_config.daily_budget_usd
        return limits

    def _today(self) -> tuple[str, datetime, float]:
        """(day key, start of the day, seconds until the next midnight UTC)."""
        now = self._clock().astimezone(UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        until_midnight = (start + timedelta(days=1) - now).total_seconds()
        return start.date().isoformat(), start, until_midnight

    def check(self, tier: str) -> BudgetState:
        """The day's level for a tier's request: the stricter of the stack's and the tier's."""
        day, _, retry_after = self._today()
        limits = self.limits(tier)
        if not limits:
            return BudgetState("off", 0.0, None, retry_after)
        if not self._ready(wait=0):
            return BudgetState("ok", 0.0, None, retry_after, error="warming up")
        try:
            spent = self._read(day, limits)
        except Exception as exc:  # noqa: BLE001 - any failure of the table must not fail a request
            logger.warning("budget check failed; treating the budget as ok: %r", exc)
            return BudgetState("ok", 0.0, None, retry_after, error=type(exc).__name__)
        worst = BudgetState("ok", 0.0, None, retry_after)
        for scope, limit in limits.items():
            state = BudgetState(
                self._level(spent[scope], limit), spent[scope], limit, retry_after, scope
            )
            ratio = state.spent_usd / limit
            worst_ratio = worst.spent_usd / worst.limit_usd if worst.limit_usd else -1.0
            more_severe = LEVELS.index(state.level) > LEVELS.index(worst.level)
            if more_severe or (state.level == worst.level and ratio > worst_ratio):
                worst = state
        return worst

    def _level(self, spent: float, limit: float) -> str:
        if spent >= limit:
            return "hard"
        return "soft" if spent >= self.settings.soft_fraction * limit else "ok"

    def _read(self, day: str, limits: Mapping[str, float]) -> dict[str, float]:
        keys = {scope: spend_key(day, scope) for scope in limits}
        response = traced_call(
            self.client,
            "batch_get_item",
            {
                "RequestItems": {
                    self.table_name: {
                        "Keys": [{"pk": {"S": key}} for key in keys.values()],
                        "ProjectionExpression": "pk, usd",
                    }
                }
            },
        )
        if response.get("UnprocessedKeys"):
            raise RuntimeError("DynamoDB left keys unprocessed")
        found = {
            item["pk"]["S"]: float(item["usd"]["N"])
            for item in response["Responses"].get(self.table_name, [])
            if "usd" in item
        }
        return {scope: found.get(key, 0.0) for scope, key in keys.items()}

    def record(self, tier: str, cost_usd: float) -> None:
        """Add a request's cost to the day's stack total and, with a tier budget, the tier's."""
        if not cost_usd or cost_usd <= 0 or not math.isfinite(cost_usd):
            return
        day, start, _ = self._today()
        expires = int(start.timestamp()) + self.settings.ttl_days * _SECONDS_PER_DAY
        scopes = [STACK_SCOPE]
        tier_config = self.config.tiers.get(tier)
        if tier_config is not None and tier_config.daily_budget_usd is not None:
            scopes.append(tier_scope(tier))
        self._ready(wait=_RECORD_WAIT_SECONDS)  # a client still not there fails below: logged
        # DynamoDB numbers are decimal strings: the float's shortest repr, without an exponent.
        amount = format(Decimal(repr(cost_usd)), "f")
        for scope in scopes:
            try:
                traced_call(
                    self.client,
                    "update_item",
                    {
                        "TableName": self.table_name,
                        "Key": {"pk": {"S": spend_key(day, scope)}},
                        "UpdateExpression": "ADD usd :cost SET expires_at = :expires",
                        "ExpressionAttributeValues": {
                            ":cost": {"N": amount},
                            ":expires": {"N": str(expires)},
                        },
                    },
                )
            except Exception as exc:  # noqa: BLE001 - spend not counted beats a failed request
                logger.warning("budget record failed for %s; spend not counted: %r", scope, exc)
