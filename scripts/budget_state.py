"""Where a day's spend stands against the budgets of a tier: for tools and tests, not the function.

The router function may only ``UpdateItem`` its budget table (it reserves and settles, and reads
the totals from the reservation's own answer: ``llm_router.governance.budget``); reading the
day's item with ``GetItem`` is an operator's or a test's, with their own credentials, so it lives
here rather than in the core, whose every call must be granted to a function.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from llm_router.governance.budget import LEVELS, spend_attribute, spend_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetState:
    """Where today's spend stands against the strictest budget that applies."""

    level: str  # "off", "ok", "soft" or "hard"
    spent_usd: float
    limit_usd: float | None
    retry_after_seconds: float  # until midnight UTC, when a new day's budget starts
    scope: str | None = None  # "stack" or "tier#<name>": the budget that set the level
    error: str | None = None  # set when DynamoDB failed and the level is an assumed "ok"


def spend_state(guard: Any, tier: str) -> BudgetState:
    """The day's level for a tier: the stricter of the stack's and the tier's (one GetItem).
    Spend includes reservations still in flight."""
    day, _, retry_after = guard.today()
    limits = guard.limits(tier)
    if not limits:
        return BudgetState("off", 0.0, None, retry_after)
    try:
        response = guard.client.get_item(
            TableName=guard.table_name, Key={"pk": {"S": spend_key(day)}}, ConsistentRead=True
        )
    except Exception as exc:  # noqa: BLE001 - a failing table reads as ok, as the guard treats it
        logger.warning("budget read failed; treating the budget as ok: %r", exc)
        return BudgetState("ok", 0.0, None, retry_after, error=type(exc).__name__)
    item = response.get("Item", {})
    worst = BudgetState("ok", 0.0, None, retry_after)
    for scope, limit in limits.items():
        value = item.get(spend_attribute(scope))
        spent = float(value["N"]) if value else 0.0
        state = BudgetState(guard.level(spent, limit), spent, limit, retry_after, scope)
        ratio = spent / limit
        worst_ratio = worst.spent_usd / worst.limit_usd if worst.limit_usd else -1.0
        more_severe = LEVELS.index(state.level) > LEVELS.index(worst.level)
        if more_severe or (state.level == worst.level and ratio > worst_ratio):
            worst = state
    return worst
