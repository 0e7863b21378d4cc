"""The report as the text the command line prints: the blog's cost section, table by table.

One numbered table per part of the bill (answers, routing, Lambda + API Gateway, totals), each set
beside the blog's figure where the scenario keeps one, then the notes, with prose wrapped at the
width of the source code.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from text_table import table

from .formatting import cents, fmt_count, fmt_percent, fmt_price, fmt_usd, signed_usd
from .report import HYBRID, LLM_ASSISTED, SEMANTIC, STRATEGY_LABELS, Report, RoutingLine
from .scenario import to_decimal

TEXT_WIDTH = 100


def _routing_models(line: RoutingLine) -> str:
    if line.strategy == HYBRID and line.escalation_rate is not None:
        embed, classifier = line.calls
        share = fmt_percent(line.escalation_rate * 100).replace(".00%", "%")
        return f"{embed.model_id} + {classifier.model_id} on {share}"
    return " + ".join(call.model_id for call in line.calls)


def _blog(report: Report, *keys: str) -> Decimal | None:
    value: Any = report.blog_figures
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return to_decimal(value, "blog figure") if value is not None else None


def explain_infrastructure(report: Report) -> str:
    """A few sentences: which conventions the blog's Lambda + API Gateway figure follows."""
    infra, calc = report.infrastructure, report.infrastructure_calculator
    blog = _blog(report, "lambda_api_gateway")
    calculator = f"{fmt_usd(calc.monthly_cost)} on {infra.architecture}"
    if blog is not None and abs(cents(calc.monthly_cost) - blog) < Decimal("0.05"):
        lead = (
            f"The blog's {fmt_usd(blog)} matches the AWS Pricing Calculator's conventions for "
            f"these inputs ({calculator})"
        )
    elif blog is not None:
        lead = (
            f"The AWS Pricing Calculator's conventions, which reproduce the blog's {fmt_usd(blog)} "
            f"for its own inputs, give {calculator} here"
        )
    else:
        lead = f"The AWS Pricing Calculator's conventions give {calculator} here"
    requests = fmt_count(calc.requests)
    if calc.requests != infra.requests:
        requests += f", not {fmt_count(infra.requests)}"
    if infra.free_tier:
        once = (
            "once per account, as AWS bills"
            if infra.free_tier_scope == "account"
            else "per function, as the calculator"
        )
        ours = f"a {fmt_count(infra.days_per_month)}-day month with the free tier {once}"
    else:
        ours = f"a {fmt_count(infra.days_per_month)}-day month without the free tier"
    return (
        f"{lead}: a 730-hour month (30.42 days: {requests} requests) and one estimate per "
        f"category's Lambda function, so the free tier an account gets once (400,000 GB-s + 1M "
        f"requests a month) is taken by each of the {len(report.answers)} functions. Over {ours}, "
        f"the same unit prices give {fmt_usd(infra.monthly_cost)}."
    )


def wrap(text: str, initial: str = "", subsequent: str = "") -> list[str]:
    """Prose at the width of the source code (100 columns)."""
    return textwrap.wrap(
        text, width=TEXT_WIDTH, initial_indent=initial, subsequent_indent=subsequent
    )


def render_text(report: Report) -> str:
    infra = report.infrastructure
    out = [
        f"Monthly cost of the multi-LLM router: scenario {report.scenario_name}, "
        f"{report.currency}, on-demand list prices"
    ]
    out += wrap(
        f"{fmt_count(report.days_per_month)}-day month, "
        f"{fmt_count(report.questions)} questions; "
        f"{fmt_count(report.input_tokens_per_question)} input + "
        f"{fmt_count(report.output_tokens_per_answer)} output tokens per question, "
        f"{fmt_count(report.classifier_output_tokens)} classifier output token per question."
    )
    out += ["", "1. Answer generation per category"]
    rows = [
        [
            line.category,
            line.model_id,
            fmt_count(line.questions),
            fmt_count(line.input_tokens),
            fmt_count(line.output_tokens),
            fmt_usd(line.input_cost),
            fmt_usd(line.output_cost),
            fmt_usd(line.monthly_cost),
        ]
        for line in report.answers
    ]

    def total(attr: str) -> Decimal:
        return sum((getattr(line, attr) for line in report.answers), Decimal(0))

    rows.append(
        [
            "total",
            "",
            fmt_count(total("questions")),
            fmt_count(total("input_tokens")),
            fmt_count(total("output_tokens")),
            fmt_usd(total("input_cost")),
            fmt_usd(total("output_cost")),
            fmt_usd(report.answers_cost),
        ]
    )
    out += table(
        [
            "category",
            "model",
            "questions/month",
            "input tokens",
            "output tokens",
            "input cost",
            "output cost",
            "monthly cost",
        ],
        rows,
        left=2,
    )

    out += ["", "2. Routing implementation per strategy"]
    rows = []
    for line in report.routing:
        output_cost = fmt_usd(line.output_cost)
        if line.output_cost and not line.output_tokens_counted:
            output_cost += " (not counted)"
        rows.append(
            [
                STRATEGY_LABELS[line.strategy],
                _routing_models(line),
                fmt_count(line.input_tokens),
                fmt_usd(line.input_cost),
                fmt_count(line.output_tokens),
                output_cost,
                fmt_usd(line.monthly_cost),
            ]
        )
    out += table(
        [
            "strategy",
            "model(s)",
            "input tokens",
            "input cost",
            "output tokens",
            "output cost",
            "monthly cost",
        ],
        rows,
        left=2,
    )

    free = "free tier " + (
        ("per function" if infra.free_tier_scope == "per-function" else "on")
        if infra.free_tier
        else "off"
    )
    out += [
        "",
        f"3. Lambda + API Gateway ({infra.architecture}, {fmt_count(infra.memory_mb)} MB memory, "
        f"{fmt_count(infra.ephemeral_mb)} MB ephemeral storage, {infra.api_gateway_type} API, "
        f"{free})",
    ]
    rows = [
        [
            "Lambda duration",
            f"{fmt_count(infra.gb_seconds)} GB-s - {fmt_count(infra.free_gb_seconds)} free = "
            f"{fmt_count(infra.gb_seconds - infra.free_gb_seconds)} GB-s x "
            f"{fmt_price(infra.price_per_gb_second)}",
            fmt_usd(infra.compute_cost),
        ],
        [
            "Lambda requests",
            f"{fmt_count(infra.requests)} - {fmt_count(infra.free_requests)} free = "
            f"{fmt_count(infra.requests - infra.free_requests)} x "
            f"{fmt_price(infra.price_per_million_requests)} per 1M",
            fmt_usd(infra.request_cost),
        ],
        [
            "Ephemeral storage",
            f"{fmt_count(infra.ephemeral_gb_seconds)} GB-s above the free 512 MB x "
            f"{fmt_price(infra.ephemeral_price_per_gb_second)}",
            fmt_usd(infra.ephemeral_cost),
        ],
        [
            f"API Gateway {infra.api_gateway_type}",
            f"{fmt_count(infra.requests - infra.api_free_requests)} requests x "
            f"{fmt_price(infra.api_price_per_million_requests)} per 1M",
            fmt_usd(infra.api_gateway_cost),
        ],
        ["total", "", fmt_usd(infra.monthly_cost)],
    ]
    blog = _blog(report, "lambda_api_gateway")
    if blog is not None:
        rows.append(
            [
                "blog",
                f"difference {signed_usd(infra.monthly_cost - blog)}; AWS Pricing Calculator "
                f"conventions give {fmt_usd(report.infrastructure_calculator.monthly_cost)}",
                fmt_usd(blog),
            ]
        )
    out += table(["item", "how", "monthly cost"], rows, left=2)
    out += wrap(explain_infrastructure(report))

    out += [
        "",
        "4. Total per strategy and saving against answering every question with the premium model",
    ]
    rows = [
        [
            STRATEGY_LABELS[s.strategy],
            fmt_usd(s.answers),
            fmt_usd(s.routing),
            fmt_usd(s.infrastructure),
            fmt_usd(s.total),
            f"{fmt_usd(s.saving)} ({fmt_percent(s.saving_percent)})",
        ]
        for s in report.strategies
    ]
    base = report.baseline
    rows.append(
        [
            "all-premium",
            fmt_usd(base.answers),
            fmt_usd(Decimal(0)),
            fmt_usd(base.infrastructure),
            fmt_usd(base.total),
            "-",
        ]
    )
    out += table(
        ["strategy", "answers", "routing", "Lambda + API GW", "monthly total", "saving"], rows
    )
    out += wrap(
        f"all-premium: all {fmt_count(base.questions)} questions answered by {base.model_id} "
        f"(the {base.category} answerer), no router, the same Lambda + API Gateway."
    )

    blog_parts = []
    for line in report.answers:
        figure = _blog(report, "answers", line.category)
        if figure is not None:
            blog_parts.append(f"{line.category} answers {fmt_usd(figure)}")
    for strategy in (LLM_ASSISTED, SEMANTIC, HYBRID):
        figure = _blog(report, "routing", strategy)
        if figure is not None:
            blog_parts.append(f"{STRATEGY_LABELS[strategy]} routing {fmt_usd(figure)}")
    if blog is not None:
        blog_parts.append(f"Lambda + API Gateway {fmt_usd(blog)}")
    if report.deployment is not None:
        out += render_deployment(report.deployment)
    notes = list(report.notes)
    if blog_parts:
        notes.insert(0, "The blog's figures: " + ", ".join(blog_parts) + ".")
    if notes:
        out += ["", "Notes:"]
        for note in notes:
            out += wrap(note, initial="- ", subsequent="  ")
    return "\n".join(out) + "\n"


def render_deployment(costs: Any) -> list[str]:
    """Section 5: this deployment's own costs, one line each, with the monitoring subtotal."""
    out = ["", f"5. This deployment's own costs: one router stack at this traffic (preset "
           f"{costs.preset}, routes.json as configured)"]
    # No total: the classifier line is the LLM-assisted stack's alone, the others every stack's.
    rows = [[line.key, line.how, fmt_usd(line.monthly_cost)] for line in costs.lines]
    out += table(["line", "how", "monthly cost"], rows, left=2)
    semantic = costs.routing.get("semantic")
    metrics = costs.metrics_cost.get("semantic")
    out += wrap(
        f"Monitoring ({', '.join(costs.monitoring_keys)}): {fmt_usd(costs.monitoring)} a month"
        + (f"; the semantic stack's metrics {fmt_usd(metrics)} against the {fmt_usd(semantic)} "
           "of semantic routing they watch" if semantic is not None and metrics is not None
           else "")
        + f". The classifier prompt adds {costs.classifier_prompt_tokens} tokens to each "
        "question (measured on the prompt builder with the stand-in's tokenizer). The app "
        "deploys one stack per router; each serves only the traffic sent to it."
    )
    return out
