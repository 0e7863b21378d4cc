"""The arithmetic: a validated scenario in, a ``Report`` out, all pure functions.

Each part of the bill (answers, routing per strategy, Lambda + API Gateway, the all-premium
baseline) has its own function, so that a caller can price one part alone; everything is
``Decimal``, so that the cents match the blog's exactly. The notes, which say where and why the
figures part from the blog's, are computed here because they depend on the scenario, not on the
output format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .errors import CostError
from .formatting import fmt_count, fmt_price, fmt_usd
from .prices import price_key
from .report import (
    HYBRID,
    LLM_ASSISTED,
    SEMANTIC,
    AnswerLine,
    Baseline,
    InfraCost,
    ModelCall,
    Report,
    RoutingLine,
    StrategyTotal,
)
from .scenario import deep_merge, entries, to_decimal, validate_scenario

THOUSAND = Decimal(1000)
MILLION = Decimal(1_000_000)
MB_PER_GB = Decimal(1024)
# The AWS Pricing Calculator turns "per day" into "per month" with 730 hours a month.
CALCULATOR_DAYS_PER_MONTH = Decimal(730) / Decimal(24)


def token_cost(tokens: Decimal, price_per_1k: Decimal) -> Decimal:
    return tokens * price_per_1k / THOUSAND


def model_prices(scenario: Mapping[str, Any], model_id: str) -> tuple[Decimal, Decimal]:
    """(input, output) USD per 1,000 tokens; an inference profile costs what its model does."""
    models = entries(scenario["models"])
    key = price_key(models, model_id)
    if key is None:  # validate_scenario refuses this first; never price an unknown model at 0
        raise CostError(f"no price for model {model_id!r}")
    prices = models[key]
    return (
        to_decimal(prices["input_per_1k"], f"models.{key}.input_per_1k"),
        to_decimal(prices["output_per_1k"], f"models.{key}.output_per_1k"),
    )


def monthly_questions(scenario: Mapping[str, Any]) -> dict[str, Decimal]:
    """Questions a month per category."""
    days = to_decimal(scenario["days_per_month"], "days_per_month")
    return {
        name: to_decimal(category["questions_per_day"], f"categories.{name}") * days
        for name, category in entries(scenario["categories"]).items()
    }


def compute_answers(scenario: Mapping[str, Any]) -> tuple[AnswerLine, ...]:
    tokens = scenario["tokens"]
    tokens_in = to_decimal(tokens["input_per_question"], "tokens.input_per_question")
    tokens_out = to_decimal(tokens["output_per_answer"], "tokens.output_per_answer")
    lines = []
    for name, questions in monthly_questions(scenario).items():
        model_id = entries(scenario["categories"])[name]["answerer"]
        tokens = _priced_tokens(scenario, model_id, questions * tokens_in, questions * tokens_out)
        lines.append(AnswerLine(category=name, questions=questions, **tokens))
    return tuple(lines)


def _priced_tokens(
    scenario: Mapping[str, Any], model_id: str, input_tokens: Decimal, output_tokens: Decimal
) -> dict[str, Any]:
    """A model's month of tokens and what they cost at its prices: the fields an answer line and
    the classifier's call share, priced one way for both."""
    price_in, price_out = model_prices(scenario, model_id)
    return {
        "model_id": model_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_cost": token_cost(input_tokens, price_in),
        "output_cost": token_cost(output_tokens, price_out),
    }


def _classifier_call(scenario: Mapping[str, Any], questions: Decimal) -> ModelCall:
    routing = scenario["routing"]
    model_id = routing["classifier_model"]
    per_question_in = to_decimal(
        scenario["tokens"]["input_per_question"], "tokens.input_per_question"
    ) + to_decimal(
        routing["classifier_prompt_overhead_tokens"], "routing.classifier_prompt_overhead_tokens"
    )
    per_question_out = to_decimal(
        routing["classifier_output_tokens"], "routing.classifier_output_tokens"
    )
    tokens = _priced_tokens(
        scenario, model_id, questions * per_question_in, questions * per_question_out
    )
    return ModelCall(role="classifier", requests=questions, **tokens)


def _embedding_call(scenario: Mapping[str, Any], questions: Decimal) -> ModelCall:
    model_id = scenario["routing"]["embedding_model"]
    price_in, _ = model_prices(scenario, model_id)
    input_tokens = questions * to_decimal(
        scenario["tokens"]["input_per_question"], "tokens.input_per_question"
    )
    return ModelCall(
        role="embeddings",
        model_id=model_id,
        requests=questions,
        input_tokens=input_tokens,
        output_tokens=Decimal(0),
        input_cost=token_cost(input_tokens, price_in),
        output_cost=Decimal(0),
    )


def compute_routing(scenario: Mapping[str, Any]) -> tuple[RoutingLine, ...]:
    """LLM-assisted (classifier on every question), semantic (embedding every question) and,
    when an escalation rate is set, hybrid (embedding every question, classifier on that share)."""
    questions = sum(monthly_questions(scenario).values(), Decimal(0))
    counted = bool(scenario["routing"]["classifier_output_tokens_counted"])
    lines = [
        RoutingLine(LLM_ASSISTED, (_classifier_call(scenario, questions),), counted),
        RoutingLine(SEMANTIC, (_embedding_call(scenario, questions),), counted),
    ]
    rate = scenario["routing"].get("hybrid_escalation_rate")
    if rate is not None:
        rate = to_decimal(rate, "routing.hybrid_escalation_rate")
        calls = (_embedding_call(scenario, questions), _classifier_call(scenario, questions * rate))
        lines.append(RoutingLine(HYBRID, calls, counted, escalation_rate=rate))
    return tuple(lines)


def compute_infrastructure(
    scenario: Mapping[str, Any],
    *,
    days_per_month: Decimal | None = None,
    free_tier: bool | None = None,
    free_tier_scope: str | None = None,
) -> InfraCost:
    """Lambda (duration, requests, ephemeral storage) + API Gateway from the unit prices.

    The keyword arguments replace the scenario's month length and free tier, which is how the
    blog's AWS Pricing Calculator figure is reproduced beside the scenario's own."""
    if days_per_month is not None:
        scenario = deep_merge(scenario, {"days_per_month": days_per_month})
    lam, api, free = scenario["lambda"], scenario["api_gateway"], scenario["free_tier"]
    free_on = bool(free["enabled"]) if free_tier is None else free_tier
    scope = free_tier_scope or free["scope"]
    architecture = lam["architecture"]
    memory_gb = to_decimal(lam["memory_mb"], "lambda.memory_mb") / MB_PER_GB
    extra_storage_gb = (
        max(
            Decimal(0),
            to_decimal(lam["ephemeral_mb"], "lambda.ephemeral_mb")
            - to_decimal(lam["ephemeral_free_mb"], "lambda.ephemeral_free_mb"),
        )
        / MB_PER_GB
    )
    free_gbs = to_decimal(free["lambda_gb_seconds"], "free_tier.lambda_gb_seconds")
    free_requests = to_decimal(free["lambda_requests"], "free_tier.lambda_requests")

    requests_by_category = monthly_questions(scenario)
    gbs_by_category = {
        name: requests
        * to_decimal(
            entries(scenario["categories"])[name]["lambda_duration_seconds"],
            f"categories.{name}.lambda_duration_seconds",
        )
        * memory_gb
        for name, requests in requests_by_category.items()
    }
    requests = sum(requests_by_category.values(), Decimal(0))
    gb_seconds = sum(gbs_by_category.values(), Decimal(0))
    if not free_on:
        free_gb_used = free_requests_used = Decimal(0)
    elif scope == "per-function":
        free_gb_used = sum((min(g, free_gbs) for g in gbs_by_category.values()), Decimal(0))
        free_requests_used = sum(
            (min(r, free_requests) for r in requests_by_category.values()), Decimal(0)
        )
    else:
        free_gb_used, free_requests_used = min(gb_seconds, free_gbs), min(requests, free_requests)

    price_gbs = to_decimal(lam["price_per_gb_second"][architecture], "lambda.price_per_gb_second")
    price_requests = to_decimal(lam["price_per_million_requests"], "lambda.price_per_million")
    price_storage = to_decimal(lam["ephemeral_price_per_gb_second"], "lambda.ephemeral_price")
    # Ephemeral storage is billed for the function's duration, like memory.
    storage_gb_seconds = (gb_seconds / memory_gb) * extra_storage_gb
    api_free = (
        min(requests, to_decimal(free["api_gateway_requests"], "free_tier.api_gateway_requests"))
        if free_on
        else Decimal(0)
    )
    api_price = to_decimal(api["price_per_million_requests"], "api_gateway.price_per_million")
    return InfraCost(
        architecture=architecture,
        memory_mb=to_decimal(lam["memory_mb"], "lambda.memory_mb"),
        ephemeral_mb=to_decimal(lam["ephemeral_mb"], "lambda.ephemeral_mb"),
        days_per_month=to_decimal(scenario["days_per_month"], "days_per_month"),
        free_tier=free_on,
        free_tier_scope=scope,
        requests=requests,
        gb_seconds=gb_seconds,
        free_gb_seconds=free_gb_used,
        price_per_gb_second=price_gbs,
        compute_cost=(gb_seconds - free_gb_used) * price_gbs,
        free_requests=free_requests_used,
        price_per_million_requests=price_requests,
        request_cost=(requests - free_requests_used) * price_requests / MILLION,
        ephemeral_gb_seconds=storage_gb_seconds,
        ephemeral_price_per_gb_second=price_storage,
        ephemeral_cost=storage_gb_seconds * price_storage,
        api_gateway_type=str(api.get("type", "REST")),
        api_free_requests=api_free,
        api_price_per_million_requests=api_price,
        api_gateway_cost=(requests - api_free) * api_price / MILLION,
    )


def compute_baseline(scenario: Mapping[str, Any], infrastructure: Decimal) -> Baseline:
    """Every question answered by the premium category's model, without a router."""
    category = scenario["premium_category"]
    model_id = entries(scenario["categories"])[category]["answerer"]
    all_premium = deep_merge(
        scenario,
        {"categories": {name: {"answerer": model_id} for name in entries(scenario["categories"])}},
    )
    answers = compute_answers(all_premium)
    return Baseline(
        category=category,
        model_id=model_id,
        questions=sum((line.questions for line in answers), Decimal(0)),
        answers=sum((line.monthly_cost for line in answers), Decimal(0)),
        infrastructure=infrastructure,
    )


def compute_strategies(
    answers: Decimal, routing: Sequence[RoutingLine], infrastructure: Decimal, baseline: Baseline
) -> tuple[StrategyTotal, ...]:
    totals = []
    for line in routing:
        total = answers + line.monthly_cost + infrastructure
        saving = baseline.total - total
        percent = saving / baseline.total * 100 if baseline.total else Decimal(0)
        totals.append(
            StrategyTotal(
                line.strategy, answers, line.monthly_cost, infrastructure, saving, percent
            )
        )
    return tuple(totals)


def _notes(
    scenario: Mapping[str, Any], routing: Sequence[RoutingLine], infra: InfraCost
) -> list[str]:
    notes = []
    classifier = next(line for line in routing if line.strategy == LLM_ASSISTED)
    call = classifier.calls[0]
    if call.output_tokens:
        _, price_out = model_prices(scenario, call.model_id)
        blog = entries(scenario.get("blog_figures") or {}).get("routing", {}).get(LLM_ASSISTED)
        lead = (
            f"The blog's {fmt_usd(to_decimal(blog, 'blog figure'))} for the classifier counts its "
            "input tokens only. "
            if blog is not None
            else ""
        )
        if classifier.output_tokens_counted:
            where, flag = "included in", "--no-count-classifier-output leaves them out"
        else:
            where, flag = "left out of", "--count-classifier-output includes them"
        notes.append(
            f"{lead}The classifier's {fmt_count(call.output_tokens)} output tokens a month "
            f"(x {fmt_price(price_out)}/1k) cost {fmt_usd(call.output_cost)}: the LLM-assisted "
            f"router costs {fmt_usd(classifier.input_cost)} without them and "
            f"{fmt_usd(classifier.monthly_cost_with_output_tokens)} with them. They are {where} "
            f"the routing cost above ({flag})."
        )
    if scenario["routing"].get("hybrid_escalation_rate") is None:
        notes.append(
            "Hybrid left out: the blog gives no share of questions the semantic step escalates to "
            "the classifier; --hybrid-escalation-rate 0.2 (for example) adds it."
        )
    lam, api = scenario["lambda"], scenario["api_gateway"]
    first_tier = entries(lam.get("first_tier_gb_seconds", {})).get(infra.architecture)
    if first_tier is not None and infra.gb_seconds > to_decimal(first_tier, "first tier"):
        notes.append(
            f"{fmt_count(infra.gb_seconds)} GB-s passes Lambda's first price tier "
            f"({fmt_count(to_decimal(first_tier, 'first tier'))} GB-s); the cheaper tiers above "
            "it are not modelled, so Lambda is overstated."
        )
    api_tier = api.get("first_tier_requests")
    if api_tier is not None and infra.requests > to_decimal(api_tier, "first tier"):
        notes.append(
            f"{fmt_count(infra.requests)} requests pass API Gateway's first price tier; the "
            "cheaper tiers above it are not modelled, so API Gateway is overstated."
        )
    return notes


def compute(scenario: Mapping[str, Any]) -> Report:
    """Every figure of the report for a (validated) scenario."""
    validate_scenario(scenario)
    answers = compute_answers(scenario)
    routing = compute_routing(scenario)
    infra = compute_infrastructure(scenario)
    calculator = compute_infrastructure(
        scenario,
        days_per_month=CALCULATOR_DAYS_PER_MONTH,
        free_tier=True,
        free_tier_scope="per-function",
    )
    answers_cost = sum((line.monthly_cost for line in answers), Decimal(0))
    baseline = compute_baseline(scenario, infra.monthly_cost)
    tokens = scenario["tokens"]
    return Report(
        scenario_name=str(scenario.get("name", "custom")),
        currency=str(scenario.get("currency", "USD")),
        days_per_month=to_decimal(scenario["days_per_month"], "days_per_month"),
        input_tokens_per_question=to_decimal(tokens["input_per_question"], "tokens"),
        output_tokens_per_answer=to_decimal(tokens["output_per_answer"], "tokens"),
        classifier_output_tokens=to_decimal(
            scenario["routing"]["classifier_output_tokens"], "routing.classifier_output_tokens"
        ),
        answers=answers,
        routing=routing,
        infrastructure=infra,
        infrastructure_calculator=calculator,
        strategies=compute_strategies(answers_cost, routing, infra.monthly_cost, baseline),
        baseline=baseline,
        blog_figures=entries(scenario.get("blog_figures") or {}),
        notes=tuple(_notes(scenario, routing, infra)),
        deployment=_deployment(scenario),
    )


def _deployment(scenario: Mapping[str, Any]) -> Any:
    """This deployment's own costs, when the scenario has their inputs."""
    if not isinstance(scenario.get("deployment"), Mapping):
        return None
    from .deployment import compute_deployment  # reads routes.json and the stand-in tokenizer

    return compute_deployment(scenario)
