"""The daily budget guard: reserve each request's worst case before any model runs, settle after.

``routes.json`` sets a daily USD budget per stack (``budget.daily_usd``) and optionally per tier
(``tiers.definitions.<tier>.daily_budget_usd``)::

    "budget": {"daily_usd": 20, "soft_fraction": 0.8, "ttl_days": 3}

Below ``soft_fraction`` of a budget the level is ``ok``; from there ``soft`` (the core answers
with the cheapest target of each category); when a request's worst case no longer fits, ``hard``
(the core answers 429 with Retry-After until midnight UTC, and nothing else: the body names
neither the spend nor the limit). With two budgets (stack and tier) the stricter level wins.
``daily_usd: null`` turns the stack-wide budget off; a tier's own budget still applies, and with
no budget anywhere the guard is off (``BudgetGuard.from_env`` returns None).

Why a reservation. Checking the spend when a request starts and adding its cost when it ends lets
every request in flight pass the same check: 100 concurrent requests against $0.05 spent $0.244.
So, before the first model call, :meth:`BudgetGuard.reserve` adds the request's *worst case*
(:func:`worst_case_usd`: every UTF-8 byte of the system prompt, history and question counted as
an input token, plus ``answering.max_tokens`` of output, at the most expensive target the tier
can reach) with ONE conditional UpdateItem that reserves and reads at once: it succeeds only
while every budget that applies still has room for the whole worst case, and returns the new
totals (the level). :meth:`BudgetGuard.settle` then replaces the reservation by the request's
real cost (one more UpdateItem, after the answer); a failed request settles at what it is known
to have cost (its classification), so its reservation is released.

Beside the decision, when there is room. The reservation is a round trip before any model; it
runs *while* the decision's model call does (the embedding, the classifier) when this instance's
last reading of the budget (one GetItem at init, then every reservation's answer) left every
budget of the tier at ``ok`` and no request of the instance was refused today
(:meth:`BudgetGuard.room_expected`). Otherwise, and always near a limit, it runs first, so a
request the budget refuses calls no model. A refused request whose decision ran beside its
reservation has spent that classification: it is recorded (:meth:`BudgetGuard.record`), and the
instance reserves first for the rest of the day.

The bound. A reservation is never smaller than the answer it pays for (a token is at least one
byte in the models' byte-level vocabularies), so answers alone never take a day's recorded spend
past its limit. What is not reserved is the classification (it runs after or beside the
reservation and is settled at its real cost), so::

    spend of a day  <=  limit  +  (N + M) x (one request's classification cost)

where N is the number of requests in flight when the limit is reached: at most the function's
reserved concurrency (``deployment.reserved_concurrency``, 10 by default) per router stack; and M
the instances whose last reading said ``ok`` then, each refused once beside its decision before
it reserves first: at most as many again. With
Titan Text Express a classification costs about $0.0001, so the overshoot is about $0.001 a day.
Outside the bound: requests served while DynamoDB fails (see below) and models without a price
(their cost is unknown and never counted). Near the limit, a request whose worst case does not
fit is refused even if its real cost would have fitted, and a request killed before it settles
(the function timed out) leaves its reservation counted for the rest of the day: the guard errs
towards the budget, never past it.

Spend lives in DynamoDB (``BUDGET_TABLE_NAME``: partition key ``pk`` string, TTL attribute
``expires_at``), one item per UTC day (``spend#2026-11-23``) with one number attribute per scope
(``usd#stack``, ``usd#tier#pro``), so that both budgets are reserved by one atomic UpdateItem,
and the part of each that is reservations still in flight (``held#stack``...). A refused request
is told to retry at midnight UTC when the settled spend leaves no room for it, and after one
request budget (``api.integration_timeout_seconds`` less its margin) when only reservations in
flight fill the budget: by then they have settled.
A new day is a new key: the count starts at zero by itself; ``expires_at`` drops old days after
``ttl_days``. One item takes every request's writes: DynamoDB allows 1,000 writes a second per
item, a hundred times the default throttle.

DynamoDB failures never fail a request: ``reserve`` logs and answers ``ok`` (no reservation),
``settle`` logs and drops the correction. The guard protects against a runaway bill over a day,
which a few minutes of an unavailable table cannot produce (the usage plan's throttle still
bounds the rate), whereas failing closed would turn a DynamoDB incident into an outage of the
router itself. The client has short timeouts and few retries so that the guard cannot eat the
request's time budget.

Hand-written over a library because it is two UpdateItem calls; the low-level client (not the
boto3 resource layer) keeps the import cheap. Creating a DynamoDB client costs about as much as
the Bedrock one (botocore loads DynamoDB's service model: ~100 ms on a busy 2-core machine), so
``from_env`` creates it in a background thread at init, which makes no call and overlaps the rest
of the cold start; the first ``reserve`` waits for it (briefly), so no request goes unreserved
because of the warm-up.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..config import ConfigError, RoutesConfig
from ..config.settings import BUDGET_TABLE_ENV
from ..models.bedrock import aws_error_code
from ..models.warm_up import SharedClient, WarmUp
from ..observability.tracing import traced_call
from ..records import record

DEFAULT_DAILY_USD = 20.0
DEFAULT_SOFT_FRACTION = 0.8
DEFAULT_TTL_DAYS = 3
LEVELS = ("off", "ok", "soft", "hard")  # in order of severity
STACK_SCOPE = "stack"
_SECONDS_PER_DAY = 86_400
_CLIENT_WAIT_SECONDS = 2.0  # how long reserve() and settle() wait for a client being created
MESSAGE_OVERHEAD_TOKENS = 16  # role markers and separators per message, on top of its bytes
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
class Reservation:
    """What :meth:`BudgetGuard.reserve` added for one request, to be settled once it ends."""

    level: str  # "off", "ok", "soft" or "hard" (refused: nothing was reserved)
    retry_after_seconds: float
    day: str = ""
    scopes: tuple[str, ...] = ()  # the budgets the amount was added to
    amount_usd: float = 0.0  # 0: nothing reserved (off, hard, or DynamoDB failed)
    error: str | None = None


def spend_key(day: str) -> str:
    return f"spend#{day}"


def spend_attribute(scope: str) -> str:
    return f"usd#{scope}"


def held_attribute(scope: str) -> str:
    """The part of a scope's spend that is reservations of requests still in flight."""
    return f"held#{scope}"


def _names(scopes: Iterable[str]) -> dict[str, str]:
    names = {}
    for i, scope in enumerate(scopes):
        names[f"#s{i}"] = spend_attribute(scope)
        names[f"#h{i}"] = held_attribute(scope)
    return names


def _number_of(item: Mapping[str, Any], name: str) -> float:
    value = item.get(name)
    return float(value["N"]) if isinstance(value, Mapping) and "N" in value else 0.0


def tier_scope(tier: str) -> str:
    return f"tier#{tier}"


def worst_case_usd(config: RoutesConfig, tier: str, texts: Iterable[str]) -> float:
    """The most one answer to ``texts`` (system prompt added here) can cost in ``tier``.

    Input: every UTF-8 byte counted as a token (a byte-level vocabulary never needs more tokens
    than bytes) plus a per-message allowance; output: ``answering.max_tokens``; price: the most
    expensive priced target of any category's plan for the tier, fallbacks included (the soft
    level reorders a plan but keeps its fallbacks). 0 when no target has a price."""
    messages = [config.answering.system_prompt, *texts]
    input_tokens = sum(len(text.encode("utf-8", "surrogatepass")) for text in messages)
    input_tokens += MESSAGE_OVERHEAD_TOKENS * len(messages)
    costs = [
        price.cost_usd(input_tokens, config.answering.max_tokens)
        for category in config.categories
        for model_id in config.plan_for(category, tier).model_ids()
        if (price := config.price_of(model_id)) is not None
    ]
    return max(costs, default=0.0)


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


def table_client(shared: SharedClient | None) -> Any:
    """The client a table's store uses: the shared one (the guard's), else its own, short-timeout
    one (the response cache and the conversation store, first use)."""
    return shared.client() if shared is not None else dynamodb_client()


def _amount(usd: float) -> str:
    """A DynamoDB number: the float's shortest repr as a decimal string, without an exponent."""
    return format(Decimal(repr(usd)), "f")


class BudgetGuard:
    """Reserves and settles the day's spend for the stack and the caller's tier. The function
    reads it once per instance (GetItem at init, :meth:`read_today`) and otherwise sees it in
    its reservations' answers; ``scripts/budget_state.py`` reads it for people."""

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
        self._warming = WarmUp()
        # (day, {attribute: number}) of the day's item as last seen: read at init, updated by
        # each reservation; and the day this instance last had a request refused.
        self._reading: tuple[str, dict[str, float]] | None = None
        self._refused_on: str | None = None

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
        """Create the DynamoDB client in a background thread, then read the day's spend (see
        the module's docstring); requests wait for the client only."""

        def create() -> None:
            self._client = dynamodb_client()

        def failed(exc: Exception) -> None:  # reserve/settle retry and log it
            logger.warning("budget: warming up failed: %r", exc)

        self._warming.start(create, "budget-warm-up", failed, then=self.read_today)

    def read_today(self) -> None:
        """Read the day's spend (one GetItem): the instance's first reading of the budget."""
        day = self.today()[0]
        response = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": spend_key(day)}}
        )
        item = response.get("Item", {})
        self._reading = (day, {name: _number_of(item, name) for name in item})

    def room_expected(self, tier: str) -> bool:
        """Whether this instance's last reading of today's budgets (at init, then from each
        reservation) left every budget of the tier at ``ok``, and no request of the instance was
        refused today: then the reservation may run beside the decision."""
        reading, day = self._reading, self.today()[0]
        if reading is None or reading[0] != day or self._refused_on == day:
            return False
        limits = self.limits(tier)
        spent = reading[1]
        return bool(limits) and all(
            self.level(spent.get(spend_attribute(scope), 0.0), limit) == "ok"
            for scope, limit in limits.items()
        )

    def client_ready(self, wait: float) -> bool:
        """Whether the client may be used now, waiting up to ``wait`` s for the warm-up (the
        response cache, which shares this client, asks too)."""
        return self._warming.ready(wait)

    def shared_client(self) -> SharedClient:
        """This guard's client for the function's other tables (made by its warm-up)."""
        return SharedClient(lambda: self.client, self.client_ready)

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

    def today(self) -> tuple[str, int, float]:
        """(day key, when the day's item expires, seconds until the next midnight UTC)."""
        now = self._clock().astimezone(UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        until_midnight = (start + timedelta(days=1) - now).total_seconds()
        expires = int(start.timestamp()) + self.settings.ttl_days * _SECONDS_PER_DAY
        return start.date().isoformat(), expires, until_midnight

    def level(self, spent: float, limit: float) -> str:
        """The level of one budget at a spend: ok, soft from soft_fraction, hard at the limit."""
        if spent >= limit:
            return "hard"
        return "soft" if spent >= self.settings.soft_fraction * limit else "ok"

    def _strictest(self, spent: Mapping[str, float], limits: Mapping[str, float]) -> str:
        levels = [self.level(spent.get(scope, 0.0), limit) for scope, limit in limits.items()]
        return max(levels, key=LEVELS.index)

    # -- the request path: one conditional UpdateItem before the models, one after ----------------

    def reserve(self, tier: str, worst_case: float) -> Reservation:
        """Add ``worst_case`` USD to every budget of the tier if all of them still have room.

        Refused (``hard``) when any budget's spend plus ``worst_case`` would pass its limit; the
        level otherwise comes from the spend before this request (in-flight reservations count).
        A refusal that only in-flight reservations cause says to retry soon, not at midnight."""
        day, expires, until_midnight = self.today()
        limits = self.limits(tier)
        if not limits:
            return Reservation("off", until_midnight)
        amount = worst_case if worst_case > 0 and math.isfinite(worst_case) else 0.0
        if any(amount > limit for limit in limits.values()):
            logger.warning("budget: one request's worst case $%.6f exceeds a daily budget", amount)
            self._refused_on = day
            return Reservation("hard", until_midnight, day)
        if not self.client_ready(wait=_CLIENT_WAIT_SECONDS):
            return Reservation("ok", until_midnight, day, error="warming up")
        names = _names(limits)
        values: dict[str, Any] = {":r": {"N": _amount(amount)}, ":e": {"N": str(expires)}}
        conditions = []
        for i, limit in enumerate(limits.values()):
            values[f":c{i}"] = {"N": _amount(limit - amount)}
            conditions.append(f"(attribute_not_exists(#s{i}) OR #s{i} <= :c{i})")
        try:
            response = traced_call(
                self.client,
                "update_item",
                {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": spend_key(day)}},
                    "UpdateExpression": f"ADD {', '.join(f'{n} :r' for n in names)} "
                    "SET expires_at = :e",
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValues": "UPDATED_NEW",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
        except Exception as exc:  # noqa: BLE001 - any failure of the table must not fail a request
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                old = getattr(exc, "response", {}).get("Item", {})
                fits_later = all(
                    _number_of(old, spend_attribute(scope)) - _number_of(old, held_attribute(scope))
                    + amount <= limit
                    for scope, limit in limits.items()
                )
                retry = until_midnight
                if fits_later:
                    retry = min(until_midnight, self.busy_retry_seconds)
                self._refused_on = day
                return Reservation("hard", retry, day)
            logger.warning("budget reservation failed; treating the budget as ok: %r", exc)
            return Reservation("ok", until_midnight, day, error=type(exc).__name__)
        attributes = response.get("Attributes", {})
        seen = dict(self._reading[1]) if self._reading and self._reading[0] == day else {}
        seen.update({name: _number_of(attributes, name) for name in attributes})
        self._reading = (day, seen)
        spent = {s: _number_of(attributes, spend_attribute(s)) - amount for s in limits}
        return Reservation(
            self._strictest(spent, limits), until_midnight, day, tuple(limits), amount
        )

    @property
    def busy_retry_seconds(self) -> float:
        """When a request refused only for reservations in flight may retry: by then they have
        settled (a request ends within the request budget)."""
        return self.config.request_budget_seconds

    def settle(self, reservation: Reservation, cost_usd: float | None) -> None:
        """Replace the reservation by the request's real cost (None: unknown, keep it)."""
        if not reservation.scopes:
            return
        known = cost_usd is not None and math.isfinite(cost_usd)
        delta = max(cost_usd, 0.0) - reservation.amount_usd if known else 0.0  # type: ignore[arg-type]
        self._add(reservation.day, reservation.scopes, delta, held=-reservation.amount_usd)

    def record(self, tier: str, cost_usd: float) -> None:
        """Add a cost to today's budgets of the tier without a reservation (tools and tests)."""
        if not cost_usd or cost_usd <= 0 or not math.isfinite(cost_usd):
            return
        self._add(self.today()[0], tuple(self.limits(tier)), cost_usd)

    def _add(self, day: str, scopes: tuple[str, ...], delta: float, held: float = 0.0) -> None:
        """ADD ``delta`` to the spend of ``scopes`` and ``held`` to their in-flight amounts."""
        if not scopes or (delta == 0 and held == 0):
            return
        _, expires, _ = self.today()
        self.client_ready(wait=_CLIENT_WAIT_SECONDS)  # a client still not there fails below: logged
        names = _names(scopes)
        additions = [f"#s{i} :d" for i in range(len(scopes))]
        if held:
            additions += [f"#h{i} :h" for i in range(len(scopes))]
        else:
            names = {k: v for k, v in names.items() if k.startswith("#s")}
        values = {":d": {"N": _amount(delta)}, ":e": {"N": str(expires)}}
        if held:
            values[":h"] = {"N": _amount(held)}
        try:
            traced_call(
                self.client,
                "update_item",
                {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": spend_key(day)}},
                    "UpdateExpression": f"ADD {', '.join(additions)} SET expires_at = :e",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                },
            )
        except Exception as exc:  # noqa: BLE001 - spend not counted beats a failed request
            logger.warning("budget settlement failed; %s USD not counted: %r", delta, exc)
