"""The router stack's CloudWatch dashboard: what routing does, costs and how it fails.

Rows, top to bottom: alarm states; requests by outcome and the routing mix (by category, by
answer target); p50/p99 latency per stage beside API Gateway's; cost per hour with its running
total and cost per category and per answer target; tokens per model; 4xx/5xx from API Gateway and
from the function; throttles, fallbacks and breakers; the response cache's hit rate, lookups and
the money it saved (when routes.json caches a category); and the Logs Insights table of yesterday's
cost by category and model from the audit lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from llm_router.observability import metric_catalog as mc
from llm_router.observability.telemetry import AUDIT_COST_QUERY

from stacks.router_metrics import FIVE_MINUTES, ONE_DAY, ONE_HOUR, RouterMetrics

WIDTH = 12
HEIGHT = 6


def _graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    right: Sequence[cloudwatch.IMetric] = (),
    *,
    stacked: bool = False,
    width: int = WIDTH,
    left_label: str | None = None,
    right_label: str | None = None,
    annotations: Sequence[cloudwatch.HorizontalAnnotation] = (),
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title,
        left=list(left),
        right=list(right),
        stacked=stacked,
        width=width,
        height=HEIGHT,
        left_y_axis=cloudwatch.YAxisProps(label=left_label, show_units=False, min=0),
        right_y_axis=cloudwatch.YAxisProps(label=right_label, show_units=False, min=0),
        left_annotations=list(annotations),
    )


def cache_row(m: RouterMetrics) -> list[cloudwatch.IWidget]:
    """The response cache: hit rate (exact and semantic), stale answers, money saved."""
    hits, misses = m.router(mc.CACHE_HITS), m.router(mc.CACHE_MISSES)
    semantic = m.router(mc.CACHE_SEMANTIC_HITS)
    rate = cloudwatch.MathExpression(
        expression="100 * FILL(h, 0) / (FILL(h, 0) + FILL(mi, 0))",
        using_metrics={"h": hits, "mi": misses}, label="hit rate (%)", period=FIVE_MINUTES)
    semantic_rate = cloudwatch.MathExpression(
        expression="100 * FILL(s, 0) / (FILL(h, 0) + FILL(mi, 0))",
        using_metrics={"s": semantic, "h": hits, "mi": misses}, label="semantic hit rate (%)",
        period=FIVE_MINUTES)
    saved = m.router(mc.CACHE_SAVED, period=ONE_HOUR, label="answer cost saved (USD/h)")
    return [
        _graph("Cache hit rate (%)", [rate, semantic_rate], width=8, left_label="%"),
        _graph("Cache lookups", [m.router(s, label=s.name) for s in (
            mc.CACHE_HITS, mc.CACHE_SEMANTIC_HITS, mc.CACHE_MISSES, mc.CACHE_STALE)], width=8),
        _graph("Money the cache saved (USD/h)", [saved], width=8, left_label="USD/h"),
    ]


def dashboard_rows(
    metrics: RouterMetrics,
    api: apigw.RestApi,
    function: lambda_.Function,
    log_group_name: str,
    alarms: Sequence[cloudwatch.IAlarm],
) -> list[list[cloudwatch.IWidget]]:
    m = metrics
    timeout_ms = m.config.api.integration_timeout_seconds * 1000
    rows: list[list[cloudwatch.IWidget]] = []
    if alarms:
        rows.append([cloudwatch.AlarmStatusWidget(
            title="Alarms", alarms=list(alarms), width=24, height=3)])
    outcomes = (mc.REQUESTS, mc.ANSWERED, mc.DECLINED, mc.DEGRADED, mc.FALLBACK_USED,
                mc.STATUS_4XX, mc.STATUS_5XX, mc.STATUS_504, mc.OVER_BUDGET)
    # The per-category and per-target graphs only when routes.json metrics.breakdowns publishes
    # those dimensions; the Logs Insights table at the bottom breaks cost down either way.
    rows.append([
        _graph("Requests by outcome", [m.router(s, label=s.name) for s in outcomes], width=8),
        *([_graph("Routing mix by category", m.per_category(mc.REQUESTS), stacked=True, width=8)]
          if m.categories else []),
        *([_graph("Routing mix by answer target", m.per_target(mc.ANSWERED), stacked=True,
                  width=8)] if m.targets else []),
    ])
    latency = [
        m.router(spec, statistic=stat, label=f"{spec.name} {stat}")
        for spec in (mc.CLASSIFICATION_LATENCY, mc.ANSWER_LATENCY, mc.TOTAL_LATENCY)
        for stat in ("p50", "p99")
    ]
    gateway_latency = [api.metric_latency(statistic=s, period=FIVE_MINUTES, label=f"API Gateway "
                                          f"Latency {s}") for s in ("p50", "p99")]
    rows.append([
        _graph("Latency per stage (ms), p50 and p99", latency, left_label="ms", annotations=[
            cloudwatch.HorizontalAnnotation(value=timeout_ms, label="integration timeout")]),
        _graph("Latency seen by callers (ms)", gateway_latency, left_label="ms", annotations=[
            cloudwatch.HorizontalAnnotation(value=timeout_ms, label="integration timeout")]),
    ])
    hourly_cost = m.router(mc.COST, period=ONE_HOUR, label="cost per hour (USD)")
    running = cloudwatch.MathExpression(
        expression="RUNNING_SUM(cost)", using_metrics={"cost": hourly_cost},
        label="running total over the time range (USD)", period=ONE_HOUR)
    rows.append([
        _graph("Cost per hour and running total (USD)", [hourly_cost], [running], width=8,
               left_label="USD/h", right_label="USD"),
        cloudwatch.SingleValueWidget(
            title="Cost over the time range (USD; pick 'today' for the daily total)",
            metrics=[m.router(mc.COST, period=ONE_DAY, label="USD")],
            set_period_to_time_range=True, full_precision=True, width=4, height=HEIGHT),
        *([_graph("Cost per category (USD/h)", m.per_category(mc.COST, period=ONE_HOUR),
                  stacked=True, width=6)] if m.categories else []),
        _graph("Answer cost per target and classification cost (USD/h)" if m.targets
               else "Answer and classification cost (USD/h)",
               [*(m.per_target(mc.ANSWER_COST, period=ONE_HOUR) if m.targets
                  else [m.router(mc.ANSWER_COST, period=ONE_HOUR, label="answers")]),
                m.router(mc.CLASSIFICATION_COST, period=ONE_HOUR, label="classification")],
               stacked=True, width=6),
    ])
    classification_tokens: list[cloudwatch.IMetric] = []
    if m.strategy.uses_embeddings:
        classification_tokens.append(m.router(
            mc.EMBEDDING_INPUT_TOKENS, label=f"{m.config.embedding.model_id} input"))
    if m.strategy.uses_classifier_llm:
        classification_tokens += [
            m.router(spec, label=f"{m.config.classifier.model_id} {kind}")
            for spec, kind in ((mc.CLASSIFIER_INPUT_TOKENS, "input"),
                               (mc.CLASSIFIER_OUTPUT_TOKENS, "output"))
        ]
    answer_tokens = (
        [_graph("Answer tokens per model: input", m.per_target(mc.ANSWER_INPUT_TOKENS), width=8),
         _graph("Answer tokens per model: output", m.per_target(mc.ANSWER_OUTPUT_TOKENS),
                width=8)]
        if m.targets
        else [_graph("Answer tokens", [m.router(mc.ANSWER_INPUT_TOKENS, label="input"),
                                       m.router(mc.ANSWER_OUTPUT_TOKENS, label="output")],
                     width=8)]
    )
    rows.append([
        *answer_tokens,
        _graph("Classification tokens per model", classification_tokens, width=8),
    ])
    rows.append([
        _graph("4xx and 5xx: API Gateway", [
            api.metric_client_error(period=FIVE_MINUTES, label="API Gateway 4XXError"),
            api.metric_server_error(period=FIVE_MINUTES, label="API Gateway 5XXError"),
            api.metric_count(period=FIVE_MINUTES, label="API Gateway requests")]),
        _graph("4xx and 5xx: the function", [
            m.router(mc.STATUS_4XX, label="function 4xx"),
            m.router(mc.STATUS_5XX, label="function 5xx"),
            m.router(mc.STATUS_504, label="function 504 (deadline)"),
            function.metric_errors(period=FIVE_MINUTES, label="Lambda errors (crashes)")]),
    ])
    rows.append([
        _graph("Throttles", [
            m.router(mc.BEDROCK_THROTTLES, label="Bedrock throttled calls"),
            function.metric_throttles(period=FIVE_MINUTES, label="Lambda throttles"),
            m.router(mc.OVER_BUDGET, label="refused over budget (429)")]),
        _graph("Fallbacks, degradations and breakers", [
            m.router(s, label=s.name) for s in (
                mc.FALLBACK_USED, mc.DEGRADED, mc.ESCALATED, mc.BUDGET_SOFT,
                mc.BEDROCK_FAILURES, mc.BREAKER_OPENINGS, mc.BREAKER_SKIPS)]),
    ])
    if m.config.cache.enabled and m.config.cache.categories:
        rows.append(cache_row(m))
    if len(m.tiers) > 1:
        rows.append([
            _graph("Requests per tier", m.per_tier(mc.REQUESTS), stacked=True),
            _graph("Cost per tier (USD/h)", m.per_tier(mc.COST, period=ONE_HOUR), stacked=True),
        ])
    rows.append([cloudwatch.LogQueryWidget(
        title="Cost by category and model (audit lines; set the time range to yesterday)",
        log_group_names=[log_group_name], query_string=AUDIT_COST_QUERY,
        view=cloudwatch.LogQueryVisualizationType.TABLE, width=24, height=HEIGHT)])
    return rows

