"""Monthly cost of the multi-LLM router: the blog's cost tables, and what-ifs on any input.

    python scripts/cost_calculator.py                          # the blog's scenario
    python scripts/cost_calculator.py --math-per-day 100000 --architecture arm64
    python scripts/cost_calculator.py --price amazon.titan-text-express-v1=0.0002/0.0006 \\
        --count-classifier-output --hybrid-escalation-rate 0.2 --format json
    python scripts/cost_calculator.py --scenario my-traffic.json   # a partial file is enough

It reproduces the cost section of the AWS blog post "Multi-LLM routing strategies for generative
AI applications on AWS": answer generation per category, routing per strategy (classifier LLM,
embeddings, and hybrid when an escalation rate is given), Lambda + API Gateway, the total per
strategy and the saving against answering every question with the premium model.

Why hand-written: no library computes a Bedrock bill. AWS publishes prices as web pages and the
Price List API (which needs credentials and returns thousands of SKUs per service), and the AWS
Pricing Calculator is a web form. The arithmetic itself is a few multiplications, so this script
does it with ``decimal`` (exact cents, no float drift) over prices kept as data in
``scripts/cost_scenarios/blog-2024.json``, each with its source.

The module is three steps of small pure functions that other code can import:
``load_scenario`` (JSON files, deep-merged) and ``apply_overrides`` (a partial scenario, which is
what the command-line flags become) -> ``compute`` (a ``Report`` of frozen dataclasses) ->
``render_text`` / ``report_to_dict``. Bad input raises ``CostError``; the command line prints it
as one line and exits 2.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DEFAULT_SCENARIO_PATH = Path(__file__).resolve().parent / "cost_scenarios" / "blog-2024.json"

LLM_ASSISTED = "llm-assisted"
SEMANTIC = "semantic"
HYBRID = "hybrid"
STRATEGY_LABELS = {LLM_ASSISTED: "LLM-assisted", SEMANTIC: "semantic", HYBRID: "hybrid"}
ARCHITECTURES = ("x86_64", "arm64")
FREE_TIER_SCOPES = ("account", "per-function")

THOUSAND = Decimal(1000)
MILLION = Decimal(1_000_000)
MB_PER_GB = Decimal(1024)
CENT = Decimal("0.01")
# The AWS Pricing Calculator turns "per day" into "per month" with 730 hours a month.
CALCULATOR_DAYS_PER_MONTH = Decimal(730) / Decimal(24)
EXIT_USAGE = 2
TEXT_WIDTH = 100


class CostError(Exception):
    """Input the user must fix; printed as one line, never as a traceback."""


# --------------------------------------------------------------------------------------------
# Loading a scenario
# --------------------------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it: objects merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    """One scenario file; non-integral numbers are read as exact ``Decimal``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CostError(f"cannot read scenario file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise CostError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CostError(f"{path} must hold a JSON object")
    return data


def load_scenario(paths: Iterable[str | Path] = ()) -> dict[str, Any]:
    """The default scenario with each file of ``paths`` deep-merged over it, in order."""
    scenario = read_scenario_file(DEFAULT_SCENARIO_PATH)
    for path in paths:
        scenario = deep_merge(scenario, read_scenario_file(path))
    return scenario


def apply_overrides(scenario: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``scenario`` with a partial scenario laid over it, validated."""
    merged = deep_merge(scenario, overrides)
    validate_scenario(merged)
    return merged


def entries(table: Mapping[str, Any]) -> dict[str, Any]:
    """The real entries of a scenario object: keys starting with ``_`` are comments."""
    return {key: value for key, value in table.items() if not key.startswith("_")}


def to_decimal(value: Any, what: str) -> Decimal:
    """A number from a scenario or the command line, exactly; ``a/b`` fractions are allowed."""
    if isinstance(value, bool):
        raise CostError(f"{what} must be a number, not {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        try:
            if "/" in text:
                numerator, denominator = text.split("/", 1)
                return Decimal(numerator) / Decimal(denominator)
            number = Decimal(text)
        except (InvalidOperation, ZeroDivisionError, ValueError):
            raise CostError(f"{what} must be a number, not {value!r}") from None
        if not number.is_finite():
            raise CostError(f"{what} must be a finite number, not {value!r}")
        return number
    raise CostError(f"{what} must be a number, not {value!r}")


def _number(
    table: Mapping[str, Any],
    key: str,
    where: str,
    *,
    minimum: Decimal | int = 0,
    maximum: Decimal | int | None = None,
) -> Decimal:
    if key not in table or table[key] is None:
        raise CostError(f"{where}.{key} is missing")
    value = to_decimal(table[key], f"{where}.{key}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise CostError(f"{where}.{key} must be at least {minimum}{upper}, not {value}")
    return value


def _object(table: Mapping[str, Any], key: str, where: str = "scenario") -> Mapping[str, Any]:
    value = table.get(key)
    if not isinstance(value, Mapping):
        raise CostError(f"{where}.{key} must be a JSON object")
    return value


def _known(name: str, kind: str, known: Iterable[str], hint: str = "") -> None:
    names = sorted(known)
    if name not in names:
        listed = ", ".join(names) or "none"
        raise CostError(f"unknown {kind} {name!r} (known: {listed}){hint}")


def validate_scenario(scenario: Mapping[str, Any]) -> None:
    """Raise ``CostError`` naming the first missing, unknown or out-of-range input."""
    _number(scenario, "days_per_month", "scenario", minimum=Decimal("0.000001"))
    tokens = _object(scenario, "tokens")
    _number(tokens, "input_per_question", "tokens")
    _number(tokens, "output_per_answer", "tokens")

    models = entries(_object(scenario, "models"))
    if not models:
        raise CostError("scenario.models is empty")
    for model_id, prices in models.items():
        if not isinstance(prices, Mapping):
            raise CostError(f"models.{model_id} must be a JSON object of prices")
        _number(prices, "input_per_1k", f"models.{model_id}")
        _number(prices, "output_per_1k", f"models.{model_id}")
    price_hint = " — give its price with --price MODEL_ID=IN/OUT or in a --scenario file"

    categories = entries(_object(scenario, "categories"))
    if not categories:
        raise CostError("scenario.categories is empty")
    for name, category in categories.items():
        where = f"categories.{name}"
        if not isinstance(category, Mapping):
            raise CostError(f"{where} must be a JSON object")
        _number(category, "questions_per_day", where)
        _number(category, "lambda_duration_seconds", where)
        answerer = category.get("answerer")
        if not isinstance(answerer, str):
            raise CostError(f"{where}.answerer must be a model id")
        _known(answerer, f"model (answerer of {name})", models, price_hint)
    _known(str(scenario.get("premium_category")), "premium category", categories)

    routing = _object(scenario, "routing")
    _known(str(routing.get("classifier_model")), "classifier model", models, price_hint)
    _known(str(routing.get("embedding_model")), "embedding model", models, price_hint)
    _number(routing, "classifier_output_tokens", "routing")
    _number(routing, "classifier_prompt_overhead_tokens", "routing")
    if not isinstance(routing.get("classifier_output_tokens_counted"), bool):
        raise CostError("routing.classifier_output_tokens_counted must be true or false")
    if routing.get("hybrid_escalation_rate") is not None:
        _number(routing, "hybrid_escalation_rate", "routing", maximum=1)

    lam = _object(scenario, "lambda")
    architecture = lam.get("architecture")
    if architecture not in ARCHITECTURES:
        raise CostError(f"lambda.architecture must be one of {', '.join(ARCHITECTURES)}")
    per_gb_second = _object(lam, "price_per_gb_second", "lambda")
    _number(per_gb_second, str(architecture), "lambda.price_per_gb_second")
    _number(lam, "memory_mb", "lambda", minimum=128, maximum=10240)
    _number(lam, "ephemeral_mb", "lambda", minimum=512, maximum=10240)
    _number(lam, "price_per_million_requests", "lambda")
    _number(lam, "ephemeral_price_per_gb_second", "lambda")
    _number(lam, "ephemeral_free_mb", "lambda")

    api = _object(scenario, "api_gateway")
    _number(api, "price_per_million_requests", "api_gateway")

    free = _object(scenario, "free_tier")
    if not isinstance(free.get("enabled"), bool):
        raise CostError("free_tier.enabled must be true or false")
    if free.get("scope") not in FREE_TIER_SCOPES:
        raise CostError(f"free_tier.scope must be one of {', '.join(FREE_TIER_SCOPES)}")
    for key in ("lambda_requests", "lambda_gb_seconds", "api_gateway_requests"):
        _number(free, key, "free_tier")


# --------------------------------------------------------------------------------------------
# Computing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerLine:
    """Answer generation for one category in a month."""

    category: str
    model_id: str
    questions: Decimal
    input_tokens: Decimal
    output_tokens: Decimal
    input_cost: Decimal
    output_cost: Decimal

    @property
    def monthly_cost(self) -> Decimal:
        return self.input_cost + self.output_cost


@dataclass(frozen=True)
class ModelCall:
    """One routing model's use in a month: the classifier LLM or the embedding model."""

    role: str  # "classifier" or "embeddings"
    model_id: str
    requests: Decimal
    input_tokens: Decimal
    output_tokens: Decimal
    input_cost: Decimal
    output_cost: Decimal


@dataclass(frozen=True)
class RoutingLine:
    """The routing bill of one strategy. ``monthly_cost`` follows the scenario's
    ``classifier_output_tokens_counted``; ``monthly_cost_with_output_tokens`` always counts them."""

    strategy: str
    calls: tuple[ModelCall, ...]
    output_tokens_counted: bool
    escalation_rate: Decimal | None = None

    @property
    def input_tokens(self) -> Decimal:
        return sum((call.input_tokens for call in self.calls), Decimal(0))

    @property
    def output_tokens(self) -> Decimal:
        return sum((call.output_tokens for call in self.calls), Decimal(0))

    @property
    def input_cost(self) -> Decimal:
        return sum((call.input_cost for call in self.calls), Decimal(0))

    @property
    def output_cost(self) -> Decimal:
        return sum((call.output_cost for call in self.calls), Decimal(0))

    @property
    def monthly_cost_with_output_tokens(self) -> Decimal:
        return self.input_cost + self.output_cost

    @property
    def monthly_cost(self) -> Decimal:
        if self.output_tokens_counted:
            return self.monthly_cost_with_output_tokens
        return self.input_cost


@dataclass(frozen=True)
class InfraCost:
    """Lambda + API Gateway in a month; every strategy runs the same functions behind one API."""

    architecture: str
    memory_mb: Decimal
    ephemeral_mb: Decimal
    days_per_month: Decimal
    free_tier: bool
    free_tier_scope: str
    requests: Decimal
    gb_seconds: Decimal
    free_gb_seconds: Decimal
    price_per_gb_second: Decimal
    compute_cost: Decimal
    free_requests: Decimal
    price_per_million_requests: Decimal
    request_cost: Decimal
    ephemeral_gb_seconds: Decimal
    ephemeral_price_per_gb_second: Decimal
    ephemeral_cost: Decimal
    api_gateway_type: str
    api_free_requests: Decimal
    api_price_per_million_requests: Decimal
    api_gateway_cost: Decimal

    @property
    def lambda_cost(self) -> Decimal:
        return self.compute_cost + self.request_cost + self.ephemeral_cost

    @property
    def monthly_cost(self) -> Decimal:
        return self.lambda_cost + self.api_gateway_cost


@dataclass(frozen=True)
class StrategyTotal:
    """One strategy's monthly bill, and its saving against answering everything with premium."""

    strategy: str
    answers: Decimal
    routing: Decimal
    infrastructure: Decimal
    saving: Decimal
    saving_percent: Decimal

    @property
    def total(self) -> Decimal:
        return self.answers + self.routing + self.infrastructure


@dataclass(frozen=True)
class Baseline:
    """No router: every question answered by the premium category's model."""

    category: str
    model_id: str
    questions: Decimal
    answers: Decimal
    infrastructure: Decimal

    @property
    def total(self) -> Decimal:
        return self.answers + self.infrastructure


@dataclass(frozen=True)
class Report:
    scenario_name: str
    currency: str
    days_per_month: Decimal
    input_tokens_per_question: Decimal
    output_tokens_per_answer: Decimal
    classifier_output_tokens: Decimal
    answers: tuple[AnswerLine, ...]
    routing: tuple[RoutingLine, ...]
    infrastructure: InfraCost
    # The same inputs under the AWS Pricing Calculator's conventions, to set beside the blog.
    infrastructure_calculator: InfraCost
    strategies: tuple[StrategyTotal, ...]
    baseline: Baseline
    blog_figures: Mapping[str, Any]
    notes: tuple[str, ...]

    @property
    def questions(self) -> Decimal:
        return sum((line.questions for line in self.answers), Decimal(0))

    @property
    def answers_cost(self) -> Decimal:
        return sum((line.monthly_cost for line in self.answers), Decimal(0))

    def routing_for(self, strategy: str) -> RoutingLine | None:
        return next((line for line in self.routing if line.strategy == strategy), None)


def token_cost(tokens: Decimal, price_per_1k: Decimal) -> Decimal:
    return tokens * price_per_1k / THOUSAND


def model_prices(scenario: Mapping[str, Any], model_id: str) -> tuple[Decimal, Decimal]:
    prices = entries(scenario["models"])[model_id]
    return (
        to_decimal(prices["input_per_1k"], f"models.{model_id}.input_per_1k"),
        to_decimal(prices["output_per_1k"], f"models.{model_id}.output_per_1k"),
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
        price_in, price_out = model_prices(scenario, model_id)
        input_tokens, output_tokens = questions * tokens_in, questions * tokens_out
        lines.append(
            AnswerLine(
                category=name,
                model_id=model_id,
                questions=questions,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                input_cost=token_cost(input_tokens, price_in),
                output_cost=token_cost(output_tokens, price_out),
            )
        )
    return tuple(lines)


def _classifier_call(scenario: Mapping[str, Any], questions: Decimal) -> ModelCall:
    routing = scenario["routing"]
    model_id = routing["classifier_model"]
    price_in, price_out = model_prices(scenario, model_id)
    per_question_in = to_decimal(
        scenario["tokens"]["input_per_question"], "tokens.input_per_question"
    ) + to_decimal(
        routing["classifier_prompt_overhead_tokens"], "routing.classifier_prompt_overhead_tokens"
    )
    per_question_out = to_decimal(
        routing["classifier_output_tokens"], "routing.classifier_output_tokens"
    )
    input_tokens, output_tokens = questions * per_question_in, questions * per_question_out
    return ModelCall(
        role="classifier",
        model_id=model_id,
        requests=questions,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        input_cost=token_cost(input_tokens, price_in),
        output_cost=token_cost(output_tokens, price_out),
    )


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
    )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def fmt_usd(amount: Decimal) -> str:
    """``$7,425.00``; negative amounts as ``-$5.33``."""
    rounded = cents(amount)
    text = f"${abs(rounded):,.2f}"
    return f"-{text}" if rounded < 0 else text


def signed_usd(amount: Decimal) -> str:
    """``+$5.33``, ``-$5.33``, ``$0.00``."""
    return ("+" if cents(amount) > 0 else "") + fmt_usd(amount)


def fmt_count(value: Decimal) -> str:
    """``1,500,000``; fractional counts (a 730-hour month) keep two decimals."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():
        return f"{int(rounded):,}"
    return f"{rounded:,.2f}"


def fmt_price(price: Decimal) -> str:
    """A unit price as published, at least to the cent: ``$0.0000166667``, ``$3.50``."""
    normal = price.normalize()
    if normal.as_tuple().exponent > -2:
        normal = normal.quantize(CENT)
    return f"${format(normal, 'f')}"


def fmt_percent(value: Decimal) -> str:
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP)}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Aligned columns; the first ``left`` columns are left-aligned, the rest right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(out).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)]


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
    notes = list(report.notes)
    if blog_parts:
        notes.insert(0, "The blog's figures: " + ", ".join(blog_parts) + ".")
    if notes:
        out += ["", "Notes:"]
        for note in notes:
            out += wrap(note, initial="- ", subsequent="  ")
    return "\n".join(out) + "\n"


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
    }


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2) + "\n"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _pair(text: str, flag: str, shape: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise CostError(f"{flag} takes {shape}, not {text!r}")
    return key.strip(), value.strip()


def _category(name: str, scenario: Mapping[str, Any], flag: str) -> str:
    known = sorted(entries(scenario["categories"]))
    if name not in known:
        raise CostError(
            f"unknown category {name!r} in {flag} (known: {', '.join(known)}); "
            "add categories in a --scenario file"
        )
    return name


def overrides_from_args(args: argparse.Namespace, scenario: Mapping[str, Any]) -> dict[str, Any]:
    """The command-line flags as a partial scenario to lay over ``scenario``."""
    o: dict[str, Any] = {}

    def put(path: Sequence[str], value: Any) -> None:
        node = o
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    traffic = [(item, "--traffic") for item in args.traffic or []]
    if args.history_per_day is not None:
        traffic.insert(0, (f"history={args.history_per_day}", "--history-per-day"))
    if args.math_per_day is not None:
        traffic.insert(0, (f"math={args.math_per_day}", "--math-per-day"))
    for item, flag in traffic:
        name, value = _pair(item, flag, "CATEGORY=QUESTIONS_PER_DAY")
        _category(name, scenario, flag)
        put(["categories", name, "questions_per_day"], to_decimal(value, f"{flag} {name}"))
    for item in args.duration or []:
        name, value = _pair(item, "--duration", "CATEGORY=SECONDS")
        _category(name, scenario, "--duration")
        seconds = to_decimal(value, f"--duration {name}")
        put(["categories", name, "lambda_duration_seconds"], seconds)
    for item in args.answerer or []:
        name, model_id = _pair(item, "--answerer", "CATEGORY=MODEL_ID")
        _category(name, scenario, "--answerer")
        put(["categories", name, "answerer"], model_id)

    known_models = set(entries(scenario["models"]))
    new_models = []
    for item in args.price or []:
        model_id, value = _pair(item, "--price", "MODEL_ID=IN/OUT (USD per 1,000 tokens)")
        price_in, sep, price_out = value.partition("/")
        put(["models", model_id, "input_per_1k"], to_decimal(price_in, f"--price {model_id} IN"))
        if sep:
            put(["models", model_id, "output_per_1k"], to_decimal(price_out, f"--price {model_id}"))
        if model_id not in known_models:
            if not sep:
                raise CostError(f"--price for a new model {model_id!r} needs IN/OUT")
            new_models.append(model_id)

    simple = [
        (args.input_tokens, ["tokens", "input_per_question"]),
        (args.output_tokens, ["tokens", "output_per_answer"]),
        (args.classifier_output_tokens, ["routing", "classifier_output_tokens"]),
        (args.classifier_prompt_tokens, ["routing", "classifier_prompt_overhead_tokens"]),
        (args.hybrid_escalation_rate, ["routing", "hybrid_escalation_rate"]),
        (args.memory_mb, ["lambda", "memory_mb"]),
        (args.ephemeral_mb, ["lambda", "ephemeral_mb"]),
        (args.days_per_month, ["days_per_month"]),
    ]
    for value, path in simple:
        if value is not None:
            put(path, to_decimal(value, "--" + path[-1].replace("_", "-")))
    for value, path in [
        (args.classifier_model, ["routing", "classifier_model"]),
        (args.embedding_model, ["routing", "embedding_model"]),
        (args.architecture, ["lambda", "architecture"]),
        (args.count_classifier_output, ["routing", "classifier_output_tokens_counted"]),
        (args.free_tier, ["free_tier", "enabled"]),
        (args.free_tier_scope, ["free_tier", "scope"]),
    ]:
        if value is not None:
            put(path, value)
    if args.premium_category is not None:
        put(["premium_category"], _category(args.premium_category, scenario, "--premium-category"))
    if o:
        o["name"] = f"{scenario.get('name', 'custom')} (what-if)"

    merged = deep_merge(scenario, o)
    used = {c.get("answerer") for c in entries(merged["categories"]).values()}
    used |= {merged["routing"].get("classifier_model"), merged["routing"].get("embedding_model")}
    for model_id in new_models:
        if model_id not in used:
            known = ", ".join(sorted(known_models))
            raise CostError(
                f"unknown model {model_id!r} in --price (known: {known}); a new model must also "
                "be used, e.g. --answerer CATEGORY=MODEL_ID"
            )
    return o


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cost_calculator.py",
        description=(
            "Monthly cost of the multi-LLM router: the AWS blog's cost tables from "
            "scripts/cost_scenarios/blog-2024.json, and what-ifs on any input."
        ),
        epilog=(
            "Hybrid routing appears only with --hybrid-escalation-rate (the blog gives no rate). "
            "Prices are USD per 1,000 tokens. Exit code 2 on bad input."
        ),
    )
    add = parser.add_argument
    add(
        "--scenario",
        action="append",
        metavar="FILE.json",
        help="a (partial) scenario deep-merged over the default; repeatable, applied in order",
    )
    add("--format", choices=("text", "json"), default="text", help="output format (text)")
    add("--traffic", action="append", metavar="CATEGORY=N", help="questions a day; repeatable")
    add("--history-per-day", metavar="N", help="same as --traffic history=N")
    add("--math-per-day", metavar="N", help="same as --traffic math=N")
    add("--days-per-month", metavar="DAYS", help="month length (30; 730/24 as the AWS calculator)")
    add("--input-tokens", metavar="N", help="input tokens per question (150)")
    add("--output-tokens", metavar="N", help="output tokens per answer (300)")
    add("--classifier-output-tokens", metavar="N", help="classifier output tokens (1)")
    add(
        "--classifier-prompt-tokens",
        metavar="N",
        help="tokens the classifier prompt adds to each question (0, as the blog)",
    )
    add(
        "--count-classifier-output",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count the classifier's output tokens in the routing cost (off, as the blog)",
    )
    add(
        "--hybrid-escalation-rate",
        metavar="R",
        help="share 0..1 of questions the hybrid router escalates to the classifier (off)",
    )
    add(
        "--price",
        action="append",
        metavar="MODEL_ID=IN/OUT",
        help="USD per 1,000 input/output tokens; repeatable; a new model also needs a use",
    )
    add("--answerer", action="append", metavar="CATEGORY=MODEL_ID", help="repeatable")
    add("--classifier-model", metavar="MODEL_ID")
    add("--embedding-model", metavar="MODEL_ID")
    add(
        "--premium-category",
        metavar="CATEGORY",
        help="the saving is against every question going to this category's answerer (math)",
    )
    add(
        "--duration",
        action="append",
        metavar="CATEGORY=SECONDS",
        help="Lambda duration per question; repeatable",
    )
    add("--memory-mb", metavar="MB", help="Lambda memory (1024)")
    add("--ephemeral-mb", metavar="MB", help="Lambda ephemeral storage, 512 free (512)")
    add("--architecture", choices=ARCHITECTURES, help="Lambda architecture (x86_64)")
    add(
        "--free-tier",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the monthly free tier (on)",
    )
    add(
        "--free-tier-scope",
        choices=FREE_TIER_SCOPES,
        help="free tier once per account (as billed) or per function (as the AWS calculator)",
    )
    return parser


def run(argv: Sequence[str] | None = None) -> str:
    """The report the command line prints; raises ``CostError`` on bad input."""
    args = build_parser().parse_args(argv)
    scenario = load_scenario(args.scenario or ())
    validate_scenario(scenario)
    scenario = apply_overrides(scenario, overrides_from_args(args, scenario))
    report = compute(scenario)
    return render_json(report) if args.format == "json" else render_text(report)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        output = run(argv)
    except CostError as exc:
        print(f"cost_calculator.py: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
