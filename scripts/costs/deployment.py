"""This deployment's own monthly costs, beside the blog's: what one router stack adds to the bill
at the scenario's traffic, as ``routes.json`` configures it.

The blog prices models, Lambda and API Gateway. A stack of this repository also publishes custom
metrics, writes log lines, records X-Ray traces and calls DynamoDB (the daily budget guard, the
response cache, the conversations), and
its classifier prompt carries instructions and examples the blog does not count. Each line here
is derived from the code or configuration that causes it, not typed in:

* ``classifier_prompt``: the prompt overhead in tokens, measured on the real prompt builder
  (``llm_router.decision.classifiers.llm.build_prompt``) with the Bedrock stand-in's tokenizer
  (WordPiece, the stand-in's estimate of Titan's count), and the LLM-assisted routing it costs;
* ``cloudwatch_metrics``: the metric catalogue (``metric_catalog.METRICS``) times the dimension
  values routes.json publishes (``metrics.breakdowns``; tiers when there are several);
* ``cloudwatch_logs``: the request's audit line and EMF blob, in bytes, as ``scripts/benchmark.py
  --cold`` measures them on the shipped handler (a scenario input with that source);
* ``xray``: Lambda's default sampling rule (a reservoir a second plus a rate) over the traffic;
* ``dynamodb``: the budget guard's reads and writes a request (scenario inputs, measured by the
  warm benchmark's AWS calls), on-demand prices; ``budget.daily_usd`` null turns it off;
* ``dynamodb_cache``: the response cache's table as routes.json's ``cache`` configures it, priced
  by :mod:`.cache_saving` at the scenario's hit rate, or at none (every question looked up and
  written: the most it costs; ``--cache-hit-rate`` adds what the hits save);
* ``dynamodb_conversations``: the server-kept conversation of each answered question, one PutItem
  of its turns (the scenario's item size) kept ``conversation.ttl_hours``;
* ``lambda`` and ``api_gateway``: the blog's arithmetic (``compute_infrastructure``) with the
  deployed architecture and memory of routes.json.

Unit prices are scenario data (``deployment`` of ``cost_scenarios/blog-2024.json``, each with its
source). Hand-written for the same reason as the rest of the package: no library prices a bill.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from llm_router.config import RoutesConfig

from .cache_saving import KB_PER_GB, compute_cache, units
from .calculation import compute_answers, compute_infrastructure, model_prices, token_cost
from .formatting import fmt_count, fmt_usd
from .scenario import deep_merge, entries, to_decimal

MILLION = Decimal(1_000_000)
GB = Decimal(1024**3)
SECONDS_PER_DAY = Decimal(86_400)
# A question of no length of its own: the prompt's tokens less the question's are the overhead.
PROBE_QUESTION = "How many tokens does this question add?"


@dataclass(frozen=True)
class CostLine:
    key: str  # the JSON name, e.g. cloudwatch_metrics
    what: str
    how: str
    monthly_cost: Decimal


@dataclass(frozen=True)
class DeploymentCosts:
    preset: str
    classifier_prompt_tokens: int
    lines: tuple[CostLine, ...]
    routing: Mapping[str, Decimal]  # strategy -> routing cost with the measured prompt
    metrics_cost: Mapping[str, Decimal]  # strategy -> its stack's custom metrics a month
    monitoring_keys: tuple[str, ...] = ("cloudwatch_metrics", "cloudwatch_logs", "xray")

    def line(self, key: str) -> CostLine:
        return next(line for line in self.lines if line.key == key)

    @property
    def monitoring(self) -> Decimal:
        return sum((self.line(k).monthly_cost for k in self.monitoring_keys), Decimal(0))


@functools.cache
def classifier_prompt_tokens(preset: str | None = None) -> int:
    """Tokens the classifier prompt adds to a question, measured on the real prompt builder."""
    from bedrock_standin.minilm import TokenCounter
    from llm_router.config import load_routes
    from llm_router.decision.classifiers.llm import build_prompt

    config = load_routes(preset=preset)
    counter = TokenCounter()
    return counter.count(build_prompt(config, PROBE_QUESTION)) - counter.count(PROBE_QUESTION)


def custom_metrics(raw_routes: Mapping[str, Any], tiers: int) -> dict[str, tuple[int, int]]:
    """Router -> (metrics as configured, metrics with every breakdown on) its stack can publish."""
    from llm_router.config import OUT_OF_SCOPE, load_routes
    from llm_router.observability import metric_catalog as mc
    from llm_router.observability.telemetry import parse_breakdowns
    from llm_router.pipeline.strategies import STRATEGIES

    config = load_routes()
    values = {
        mc.CATEGORY: len((*config.category_names, OUT_OF_SCOPE)),
        mc.ANSWER_TARGET: len(config.answerer_model_ids()),
    }
    tier_sets = tiers if tiers > 1 else 0
    on = parse_breakdowns(raw_routes)
    counts = {}
    for name, strategy in STRATEGIES.items():
        metrics = len(mc.router_metrics(strategy.uses_classifier_llm, strategy.uses_embeddings))
        counts[name] = (
            metrics * (1 + sum(values[b] for b in on) + tier_sets),
            metrics * (1 + sum(values.values()) + tier_sets),
        )
    return counts


def compute_deployment(scenario: Mapping[str, Any]) -> DeploymentCosts:
    """One router stack's own costs at ``scenario``'s traffic, routes.json as shipped."""
    from llm_router.config import load_routes

    config = load_routes()
    d = scenario["deployment"]
    days = to_decimal(scenario["days_per_month"], "days_per_month")
    requests = sum(
        (to_decimal(c["questions_per_day"], "questions_per_day") * days
         for c in entries(scenario["categories"]).values()),
        Decimal(0),
    )
    lines: list[CostLine] = []

    # Routing with the classifier prompt as the function sends it.
    overhead = classifier_prompt_tokens(config.preset)
    question = to_decimal(scenario["tokens"]["input_per_question"], "tokens.input_per_question")
    routing = scenario["routing"]
    price_in, price_out = model_prices(scenario, routing["classifier_model"])
    classifier_in = requests * (question + overhead)
    classifier_out = requests * to_decimal(routing["classifier_output_tokens"], "routing")
    llm_routing = token_cost(classifier_in, price_in) + token_cost(classifier_out, price_out)
    embed_in, _ = model_prices(scenario, routing["embedding_model"])
    semantic_routing = token_cost(requests * question, embed_in)
    lines.append(CostLine(
        "classifier_prompt",
        f"LLM-assisted routing with the real prompt ({routing['classifier_model']})",
        f"{fmt_count(requests)} x ({fmt_count(question)} question + {overhead} prompt tokens "
        f"measured) in, {fmt_count(classifier_out / requests if requests else 0)} out",
        llm_routing,
    ))

    # CloudWatch custom metrics: each router's stack publishes its own; the line is the largest.
    counts = custom_metrics(config.raw, len(config.tiers))
    per_metric = to_decimal(d["cloudwatch"]["price_per_metric_month"], "price_per_metric_month")
    largest = max(configured for configured, _ in counts.values())
    most = max(everything for _, everything in counts.values())
    lines.append(CostLine(
        "cloudwatch_metrics",
        "CloudWatch custom metrics (EMF), per stack",
        "at most " + ", ".join(f"{n} {c[0]}" for n, c in counts.items())
        + f" metrics x {fmt_usd(per_metric)} (metrics.breakdowns as configured; up to {most} "
        f"with every breakdown on: {fmt_usd(most * per_metric)})",
        largest * per_metric,
    ))
    metrics_cost = {name: c[0] * per_metric for name, c in counts.items()}

    # CloudWatch Logs: the request's audit line and EMF blob, ingested and stored.
    log_bytes = to_decimal(d["request_log_bytes"], "deployment.request_log_bytes")
    gigabytes = requests * log_bytes / GB
    cw = d["cloudwatch"]
    ingest = gigabytes * to_decimal(cw["logs_ingestion_per_gb"], "logs_ingestion_per_gb")
    retention_months = Decimal(config.lambda_settings.log_retention_days) / days
    stored = gigabytes * min(retention_months, Decimal(1))  # steady state: the retained window
    storage = stored * to_decimal(cw["logs_storage_per_gb_month"], "logs_storage_per_gb_month")
    lines.append(CostLine(
        "cloudwatch_logs",
        "CloudWatch Logs (audit line + EMF blob a request)",
        f"{fmt_count(log_bytes)} bytes x {fmt_count(requests)} = {gigabytes:.2f} GB ingested, "
        f"{config.lambda_settings.log_retention_days} days kept",
        ingest + storage,
    ))

    # X-Ray: Lambda's default sampling over evenly spread traffic.
    xr = d["xray"]
    per_second = requests / (days * SECONDS_PER_DAY)
    reservoir = to_decimal(xr["sampling_reservoir_per_second"], "xray")
    rate = to_decimal(xr["sampling_rate"], "xray")
    sampled = min(per_second, reservoir) + rate * max(per_second - reservoir, Decimal(0))
    traces = sampled * days * SECONDS_PER_DAY
    billable = max(traces - to_decimal(xr["free_traces_per_month"], "xray"), Decimal(0))
    lines.append(CostLine(
        "xray",
        "X-Ray traces recorded (function and API stage, one trace a request)",
        f"{per_second:.2f} requests/s evenly, sampled {reservoir}/s + {rate:.0%} of the rest: "
        f"{fmt_count(traces)} traces, {fmt_count(billable)} above the free tier",
        billable / MILLION * to_decimal(xr["price_per_million_traces"], "xray"),
    ))

    # DynamoDB: the daily budget guard on every request (none when no budget is configured).
    db = d["dynamodb"]
    budget_on = (config.raw.get("budget") or {}).get("daily_usd") is not None or any(
        t.daily_budget_usd is not None for t in config.tiers.values()
    )
    writes = to_decimal(db["budget_writes_per_request"], "dynamodb") if budget_on else Decimal(0)
    reads = to_decimal(db["budget_reads_per_request"], "dynamodb") if budget_on else Decimal(0)
    lines.append(CostLine(
        "dynamodb",
        "DynamoDB on demand (daily budget guard)",
        f"{writes} write + {reads} read request units a request x {fmt_count(requests)}"
        if budget_on else "budget off (budget.daily_usd null): no calls",
        requests * writes / MILLION * to_decimal(db["price_per_million_write_units"], "dynamodb")
        + requests * reads / MILLION * to_decimal(db["price_per_million_read_units"], "dynamodb"),
    ))

    lines.append(_cache_line(scenario, config))
    lines.append(_conversations_line(scenario, config, days))

    # Lambda and API Gateway: the blog's arithmetic with the deployed function's settings.
    lam = config.lambda_settings
    infra = compute_infrastructure(deep_merge(scenario, {"lambda": {
        "architecture": lam.architecture, "memory_mb": lam.memory_mb}}))
    lines.append(CostLine(
        "lambda",
        f"Lambda ({lam.architecture}, {lam.memory_mb} MB, the scenario's durations)",
        f"{fmt_count(infra.gb_seconds)} GB-s, {fmt_count(infra.requests)} requests, free tier "
        f"{'on' if infra.free_tier else 'off'}",
        infra.lambda_cost,
    ))
    lines.append(CostLine(
        "api_gateway",
        f"API Gateway {infra.api_gateway_type} API",
        f"{fmt_count(infra.requests)} requests",
        infra.api_gateway_cost,
    ))
    return DeploymentCosts(
        preset=config.preset,
        classifier_prompt_tokens=overhead,
        lines=tuple(lines),
        routing={"llm-assisted": llm_routing, "semantic": semantic_routing},
        metrics_cost=metrics_cost,
    )


def _cache_line(scenario: Mapping[str, Any], config: RoutesConfig) -> CostLine:
    """The response cache's table, at the scenario's hit rate or at none (its largest cost)."""
    rate = (scenario.get("cache") or {}).get("hit_rate")
    priced = compute_cache(deep_merge(scenario, {"cache": {"hit_rate": rate or 0}}), config)
    assert priced is not None  # a hit rate is set
    cached = [line["category"] for line in priced["categories"]]
    if not config.cache.enabled:
        how = "cache off (routes.json cache): no table"
    elif not cached:
        how = "no category of the scenario is cached (routes.json cache)"
    else:
        at = "no hit: every question looked up and its answer written" if not rate else (
            f"a {float(priced['hit_rate']):.0%} hit rate")
        how = f"{', '.join(cached)} cached, at {at} (--cache-hit-rate prices the saving)"
    return CostLine(
        "dynamodb_cache", "DynamoDB on demand (response cache)", how, priced["cache_cost"]
    )


def _conversations_line(
    scenario: Mapping[str, Any], config: RoutesConfig, days: Decimal
) -> CostLine:
    """One PutItem of the conversation per answered question, kept ``conversation.ttl_hours``."""
    from llm_router.governance.conversation_store import parse_ttl_hours

    db = scenario["deployment"]["dynamodb"]
    item_kb = to_decimal(db["conversation_item_kb"], "deployment.dynamodb.conversation_item_kb")
    answered = sum((answer.questions for answer in compute_answers(scenario)), Decimal(0))
    writes = answered * units(item_kb, 1)
    hours = parse_ttl_hours(config.raw)
    stored_gb = answered / days * Decimal(hours) / 24 * item_kb / KB_PER_GB
    write_price = to_decimal(db["price_per_million_write_units"], "dynamodb")
    storage = to_decimal(db["storage_per_gb_month"], "deployment.dynamodb.storage_per_gb_month")
    return CostLine(
        "dynamodb_conversations",
        "DynamoDB on demand (server-kept conversations)",
        f"{fmt_count(answered)} answered questions x {units(item_kb, 1)} write units (a "
        f"{item_kb} KB item), {stored_gb:.2f} GB kept {hours} h",
        writes * write_price / MILLION + stored_gb * storage,
    )
