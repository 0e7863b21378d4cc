"""The report as JSON-ready data, for machines (``--format json``).

Money is dollars rounded to the cent and counts are plain numbers, so that a consumer needs no
``Decimal``; the Lambda + API Gateway explanation is the text report's own sentence, so that both
formats say the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .formatting import CENT, cents
from .report import InfraCost, Report
from .scenario import entries
from .text_report import explain_infrastructure


def _money(amount: Decimal) -> float:
    return float(cents(amount))


def _count(value: Decimal) -> int | float:
    rounded = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():
        return int(rounded)
    return float(rounded)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in entries(value).items()}
    return value


def _infra_dict(infra: InfraCost) -> dict[str, Any]:
    return {
        "architecture": infra.architecture,
        "memory_mb": _count(infra.memory_mb),
        "ephemeral_mb": _count(infra.ephemeral_mb),
        "days_per_month": float(infra.days_per_month),
        "free_tier": infra.free_tier,
        "free_tier_scope": infra.free_tier_scope,
        "requests": _count(infra.requests),
        "gb_seconds": _count(infra.gb_seconds),
        "free_gb_seconds": _count(infra.free_gb_seconds),
        "free_requests": _count(infra.free_requests),
        "ephemeral_gb_seconds": _count(infra.ephemeral_gb_seconds),
        "lambda_compute_cost": _money(infra.compute_cost),
        "lambda_request_cost": _money(infra.request_cost),
        "lambda_ephemeral_storage_cost": _money(infra.ephemeral_cost),
        "lambda_cost": _money(infra.lambda_cost),
        "api_gateway_type": infra.api_gateway_type,
        "api_gateway_cost": _money(infra.api_gateway_cost),
        "monthly_cost": _money(infra.monthly_cost),
    }


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data: money in dollars rounded to cents, counts as numbers."""
    answers = [
        {
            "category": line.category,
            "model": line.model_id,
            "questions_per_month": _count(line.questions),
            "input_tokens": _count(line.input_tokens),
            "output_tokens": _count(line.output_tokens),
            "input_cost": _money(line.input_cost),
            "output_cost": _money(line.output_cost),
            "monthly_cost": _money(line.monthly_cost),
        }
        for line in report.answers
    ]
    routing = {
        line.strategy: {
            "models": [call.model_id for call in line.calls],
            "calls": [
                {
                    "role": call.role,
                    "model": call.model_id,
                    "requests": _count(call.requests),
                    "input_tokens": _count(call.input_tokens),
                    "output_tokens": _count(call.output_tokens),
                    "input_cost": _money(call.input_cost),
                    "output_cost": _money(call.output_cost),
                }
                for call in line.calls
            ],
            "escalation_rate": (
                float(line.escalation_rate) if line.escalation_rate is not None else None
            ),
            "input_tokens": _count(line.input_tokens),
            "output_tokens": _count(line.output_tokens),
            "input_cost": _money(line.input_cost),
            "output_cost": _money(line.output_cost),
            "output_tokens_counted": line.output_tokens_counted,
            "monthly_cost": _money(line.monthly_cost),
            "monthly_cost_with_output_tokens": _money(line.monthly_cost_with_output_tokens),
        }
        for line in report.routing
    }
    infra = _infra_dict(report.infrastructure)
    infra["aws_pricing_calculator_conventions"] = _infra_dict(report.infrastructure_calculator)
    infra["explanation"] = explain_infrastructure(report)
    base = report.baseline
    return {
        "scenario": report.scenario_name,
        "currency": report.currency,
        "days_per_month": float(report.days_per_month),
        "questions_per_month": _count(report.questions),
        "answers": {
            "categories": answers,
            "total": {
                "questions_per_month": _count(report.questions),
                "input_tokens": _count(sum((a.input_tokens for a in report.answers), Decimal(0))),
                "output_tokens": _count(sum((a.output_tokens for a in report.answers), Decimal(0))),
                "input_cost": _money(sum((a.input_cost for a in report.answers), Decimal(0))),
                "output_cost": _money(sum((a.output_cost for a in report.answers), Decimal(0))),
                "monthly_cost": _money(report.answers_cost),
            },
        },
        "routing": routing,
        "lambda_api_gateway": infra,
        "strategies": {
            s.strategy: {
                "answers": _money(s.answers),
                "routing": _money(s.routing),
                "lambda_api_gateway": _money(s.infrastructure),
                "total": _money(s.total),
                "saving_vs_all_premium": _money(s.saving),
                "saving_percent": float(cents(s.saving_percent)),
            }
            for s in report.strategies
        },
        "all_premium": {
            "category": base.category,
            "model": base.model_id,
            "answers": _money(base.answers),
            "lambda_api_gateway": _money(base.infrastructure),
            "total": _money(base.total),
        },
        "blog_figures": _plain(report.blog_figures),
        "notes": list(report.notes),
        **({"deployment": _deployment_dict(report.deployment)} if report.deployment else {}),
    }


def _deployment_dict(costs: Any) -> dict[str, Any]:
    """This deployment's own costs, one named line each (e.g. ``cloudwatch_metrics``)."""
    return {
        "about": "one router stack of this repository at the scenario's traffic, routes.json "
        f"as configured (preset {costs.preset})",
        "classifier_prompt_tokens": costs.classifier_prompt_tokens,
        "lines": {
            line.key: {
                "what": line.what, "how": line.how, "monthly_cost": _money(line.monthly_cost)
            }
            for line in costs.lines
        },
        "routing_with_measured_prompt": {k: _money(v) for k, v in costs.routing.items()},
        "cloudwatch_metrics_per_stack": {k: _money(v) for k, v in costs.metrics_cost.items()},
        "monitoring": {
            "lines": list(costs.monitoring_keys),
            "monthly_cost": _money(costs.monitoring),
        },
    }


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2) + "\n"
