"""What a month costs at the mix a router decided, against every question to the premium model.

The traffic, tokens and prices are the cost calculator's scenario (``scripts/costs``) priced for
the evaluated routes file (``costs.for_routes``: its categories, answer targets, models and
prices, the blog's daily total split evenly), so the evaluation's dollars and
``cost_calculator.py --routes`` agree, whatever the categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import costs
from llm_router.config import RoutesConfig

from evaluation.metrics import Outcome


def monthly_cost(
    summary: dict[str, Any], outcomes: Sequence[Outcome], strategy: str, config: RoutesConfig
) -> dict[str, Any]:
    """The cost calculator's scenario, with the answers split as this router decided them.

    Daily traffic stays the scenario's total and every question pays for routing (the hybrid pays
    the classifier LLM on its measured escalation share); each category's answerer gets the share
    of questions the router sent to it, and declined questions get no answer. The baseline sends
    every question to the premium answerer, as the calculator's own baseline does.
    """
    scenario = costs.load_scenario(routes=config)
    if summary["escalation_rate"] is not None:
        scenario["routing"]["hybrid_escalation_rate"] = summary["escalation_rate"]
    full = costs.compute(scenario)
    categories = costs.entries(scenario["categories"])
    per_day = sum(Decimal(str(c["questions_per_day"])) for c in categories.values())
    decided = costs.deep_merge(
        scenario,
        {
            "categories": {
                name: {
                    "questions_per_day": per_day
                    * sum(o.decision == name for o in outcomes)
                    / len(outcomes)
                }
                for name in categories
            }
        },
    )
    answers = costs.compute(decided).answers_cost
    routing_line = full.routing_for(strategy)
    routing = routing_line.monthly_cost if routing_line else Decimal(0)
    premium = full.baseline.answers
    return {
        "questions_per_month": int(full.questions),
        "answering": float(round(answers, 2)),
        "routing": float(round(routing, 2)),
        "total": float(round(answers + routing, 2)),
        "all_premium_answering": float(round(premium, 2)),
        "saving": float(round(premium - answers - routing, 2)),
    }
