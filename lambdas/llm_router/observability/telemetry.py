"""What one request tells the operator: its EMF metrics and its one audit log line.

The core builds the request's *audit record* (a plain dict, the shared contract: request id, tier,
strategy, status, outcome, decision, targets tried, usage, cost, latency, scores) and calls
:func:`publish` once, inside the handler that ``Metrics.log_metrics`` wraps. :func:`publish`

* adds the request's metrics and dimension sets (:mod:`llm_router.observability.metric_catalog`
  documents them
  and why they look as they do) to the handler's ``Metrics``, which flushes them as exactly one
  EMF blob when the handler returns;
* writes the one structured audit line through the handler's ``Logger``: message ``audit``, the
  record under the key ``audit`` (nested, so no field can collide with Powertools' own keys),
  plus per-stage cost and token totals for CloudWatch Logs Insights. The question and the answer
  are left out unless ``routes.json`` ``logging.include_text`` is true (default false), whatever
  the record carries: the log is the privacy boundary.

Powertools is only a type here (``TYPE_CHECKING``): the handler owns the ``Metrics`` and ``Logger``
objects, and this module adds no import cost at cold start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..config import ConfigError, RoutesConfig, optional_section
from ..errors import CIRCUIT_OPEN
from ..records import record
from . import metric_catalog as mc

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

AUDIT_MESSAGE = "audit"
AUDIT_KEY = "audit"
TEXT_FIELDS = ("question", "answer")
CLASSIFICATION_STAGES = ("classification", "embedding")
_LOGGING_KEYS = {"include_text"}
_METRICS_KEYS = {"breakdowns"}
# CloudWatch Logs Insights over the function's log group: what routing cost, by category and the
# model that answered (classification cost in its own column: one model per stack). Requests with
# an unpriced model count in `requests` but not in `priced`. Run it over yesterday (UTC).
AUDIT_COST_QUERY = """\
filter message = "audit"
| stats sum(audit.cost_usd) as total_usd,
        sum(audit.answer_cost_usd) as answer_usd,
        sum(audit.classification_cost_usd) as classification_usd,
        sum(audit.input_tokens) as input_tokens,
        sum(audit.output_tokens) as output_tokens,
        count(audit.cost_usd) as priced,
        count(*) as requests
  by audit.category, audit.answer_target
| sort total_usd desc"""


@record(frozen=True)
class TelemetrySettings:
    """``include_text``: ``logging.include_text``; ``by_tier``: a Tier dimension set is useful
    (more than one tier), so per-tier metrics are published; ``breakdowns``: the opt-in dimension
    sets of ``metrics.breakdowns`` (:data:`metric_catalog.BREAKDOWNS`), none by default."""

    include_text: bool = False
    by_tier: bool = False
    breakdowns: tuple[str, ...] = ()


def parse_telemetry(raw: Mapping[str, Any], tier_count: int = 1) -> TelemetrySettings:
    """The ``logging`` section of routes.json (optional; keys starting with ``_`` are notes)."""
    section = optional_section(raw, "logging", _LOGGING_KEYS)
    include_text = section.get("include_text", False)
    if not isinstance(include_text, bool):
        raise ConfigError(f"logging.include_text must be true or false, got {include_text!r}")
    return TelemetrySettings(
        include_text=include_text, by_tier=tier_count > 1, breakdowns=parse_breakdowns(raw)
    )


def parse_breakdowns(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """``metrics.breakdowns`` of routes.json: which of :data:`metric_catalog.BREAKDOWNS` every
    metric is also published by. Each multiplies the stack's custom metrics (CloudWatch bills
    each name x dimension value), so none is on unless asked for; the audit log's Logs Insights
    query gives the same breakdown without a metric."""
    section = optional_section(raw, "metrics", _METRICS_KEYS)
    breakdowns = section.get("breakdowns", [])
    if not isinstance(breakdowns, list) or not set(breakdowns) <= set(mc.BREAKDOWNS):
        raise ConfigError(
            f"metrics.breakdowns must be a list of {list(mc.BREAKDOWNS)}, got {breakdowns!r}"
        )
    return tuple(b for b in mc.BREAKDOWNS if b in breakdowns)


def telemetry_settings(config: RoutesConfig) -> TelemetrySettings:
    return parse_telemetry(config.raw, len(config.tiers))


def publish(
    record: Mapping[str, Any],
    metrics: Metrics,
    logger: Logger,
    include_text: bool = False,
    by_tier: bool = False,
    breakdowns: tuple[str, ...] = mc.BREAKDOWNS,
) -> None:
    """Add the request's metrics to ``metrics`` (``log_metrics`` flushes them as one blob when the
    handler returns) and log its one audit line. ``breakdowns``: the dimension sets beyond the
    router's totals (the handler passes routes.json's ``metrics.breakdowns``)."""
    add_metrics(record, metrics, by_tier=by_tier, breakdowns=breakdowns)
    logger.info(AUDIT_MESSAGE, extra={AUDIT_KEY: audit_fields(record, include_text)})


def publish_with(
    record: Mapping[str, Any], metrics: Metrics, logger: Logger, settings: TelemetrySettings
) -> None:
    publish(
        record, metrics, logger, settings.include_text, settings.by_tier, settings.breakdowns
    )


def instrumented(
    handler: Callable[[Any, Any], dict[str, Any]], metrics: Metrics, logger: Logger
) -> Callable[[Any, Any], dict[str, Any]]:
    """``handler`` as every function here runs: Lambda-context logging and one EMF flush per
    invocation, then the metric set cleared.

    The clearing matters where metrics are disabled (the local run, tests): Powertools' flush then
    neither prints nor clears, and its metric set is shared by every ``Metrics`` object of the
    process, so each request's values would pile up in memory and leak into the next blob. After
    an enabled flush, clearing again changes nothing.
    """
    flushed = logger.inject_lambda_context(clear_state=True)(metrics.log_metrics(handler))

    def run(event: Any, context: Any) -> dict[str, Any]:
        try:
            return flushed(event, context if _is_lambda_context(context) else NO_CONTEXT)
        finally:
            metrics.clear_metrics()

    return run


class _NoContext:
    """What Powertools' logging reads of a Lambda context, for invocations without one (a direct
    call with ``context=None``): without it the wrapper raises and the request ends in a 500."""

    function_name = "unknown"
    function_version = "$LATEST"
    invoked_function_arn = ""
    memory_limit_in_mb = 0
    aws_request_id = ""


NO_CONTEXT = _NoContext()
_CONTEXT_ATTRIBUTES = tuple(name for name in vars(_NoContext) if not name.startswith("_"))


def _is_lambda_context(context: Any) -> bool:
    return all(hasattr(context, name) for name in _CONTEXT_ATTRIBUTES)


# -- metrics ---------------------------------------------------------------------------------------


def add_metrics(
    record: Mapping[str, Any],
    metrics: Metrics,
    by_tier: bool = False,
    breakdowns: tuple[str, ...] = mc.BREAKDOWNS,
) -> None:
    strategy = str(record.get("strategy") or "unknown")
    metrics.add_dimension(name=mc.STRATEGY, value=strategy)
    extra_sets = (
        (mc.CATEGORY, record.get("category") if mc.CATEGORY in breakdowns else None),
        (mc.ANSWER_TARGET, record.get("answer_target") if mc.ANSWER_TARGET in breakdowns else None),
        (mc.TIER, record.get("tier") if by_tier else None),
    )
    for name, value in extra_sets:
        if value:
            metrics.add_dimensions(**{mc.STRATEGY: strategy, name: str(value)})
    for spec, value in metric_values(record):
        metrics.add_metric(name=spec.name, unit=spec.unit, value=value)


def metric_values(record: Mapping[str, Any]) -> list[tuple[mc.MetricSpec, float]]:
    """The request's non-zero metric values, in catalogue order."""
    values: dict[mc.MetricSpec, float] = {}

    def add(spec: mc.MetricSpec, value: float | None) -> None:
        if value:
            values[spec] = values.get(spec, 0.0) + float(value)

    status = _int(record.get("status"))
    outcome = record.get("outcome")
    add(mc.REQUESTS, 1)
    add(mc.ANSWERED, outcome == "answered")
    add(mc.DECLINED, outcome == "declined")
    add(mc.DEGRADED, bool(record.get("degraded")))
    add(mc.FALLBACK_USED, bool(record.get("fallback_used")))
    add(mc.STATUS_4XX, 400 <= status < 500)
    add(mc.STATUS_5XX, status >= 500)
    add(mc.STATUS_504, status == 504)
    add(mc.OVER_BUDGET, outcome == "over_budget")
    add(mc.BUDGET_SOFT, record.get("budget_level") == "soft")
    add(mc.ESCALATED, bool(record.get("escalated")))
    cache = record.get("cache")
    add(mc.CACHE_HITS, cache in ("hit", "semantic_hit"))
    add(mc.CACHE_SEMANTIC_HITS, cache == "semantic_hit")
    add(mc.CACHE_MISSES, cache == "miss")
    add(mc.CACHE_STALE, cache == "stale")
    if cache in ("hit", "semantic_hit", "stale"):
        _add_cost(values, mc.CACHE_SAVED, record.get("cache_saved_usd"))

    tried = _dicts(record.get("targets_tried"))
    failed = [t for t in tried if t.get("result") == "failed"]
    add(mc.BEDROCK_FAILURES, len(failed))
    add(mc.BEDROCK_THROTTLES, sum(t.get("error_code") in mc.THROTTLE_CODES for t in failed))
    add(mc.BREAKER_SKIPS, sum(
        t.get("result") == "skipped" and t.get("error_code") == CIRCUIT_OPEN for t in tried
    ))
    add(mc.BREAKER_OPENINGS, len(record.get("breaker_opened") or ()))

    # A latency of 0 (or None) is a stage that did not run.
    add(mc.CLASSIFICATION_LATENCY, _ms(record.get("classification_seconds")))
    add(mc.ANSWER_LATENCY, _ms(record.get("answer_seconds")))
    add(mc.TOTAL_LATENCY, _ms(record.get("total_seconds")))

    usage = _dicts(record.get("usage"))
    embedders = _embedding_models(tried)
    for call in usage:
        specs = mc.TOKEN_METRICS.get(_stage(call, embedders))
        if specs is None:
            continue
        input_spec, output_spec = specs
        add(input_spec, _int(call.get("input_tokens")))
        if output_spec is not None:
            add(output_spec, _int(call.get("output_tokens")))
    add(mc.UNPRICED_CALLS, sum(call.get("cost_usd") is None for call in usage))
    if usage:
        _add_cost(values, mc.COST, record.get("cost_usd"))
        _add_cost(values, mc.CLASSIFICATION_COST, stage_cost(usage, CLASSIFICATION_STAGES))
        _add_cost(values, mc.ANSWER_COST, stage_cost(usage, ("answer",)))
    return [(spec, values[spec]) for spec in mc.METRICS if spec in values]


def _embedding_models(tried: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(t.get("model_id")) for t in tried if t.get("stage") == "embedding"}


def _stage(call: Mapping[str, Any], embedders: set[str]) -> str:
    """A call's stage. The response's usage lists embedding calls under classification; the
    attempts (targets_tried) say which of those models ran as the embedder."""
    stage = str(call.get("stage"))
    if stage == "classification" and str(call.get("model_id")) in embedders:
        return "embedding"
    return stage


def _add_cost(values: dict[mc.MetricSpec, float], spec: mc.MetricSpec, cost: Any) -> None:
    """A known cost is published even when it is 0; an unknown one never is."""
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        values[spec] = float(cost)


def stage_cost(usage: Iterable[Mapping[str, Any]], stages: tuple[str, ...]) -> float | None:
    """USD of the billed calls of ``stages``; None if any is unpriced or there is none."""
    costs = [call.get("cost_usd") for call in usage if call.get("stage") in stages]
    if not costs or any(not isinstance(c, (int, float)) for c in costs):
        return None
    return round(sum(costs), 8)


# -- audit line ------------------------------------------------------------------------------------


def audit_fields(record: Mapping[str, Any], include_text: bool) -> dict[str, Any]:
    """The record without question/answer text (unless ``include_text``), plus totals for queries:
    ``input_tokens``, ``output_tokens``, ``classification_cost_usd``, ``answer_cost_usd`` and
    ``billed_models``."""
    fields = {k: v for k, v in record.items() if k not in TEXT_FIELDS}
    if include_text:
        fields.update({k: record[k] for k in TEXT_FIELDS if k in record})
    usage = _dicts(record.get("usage"))
    fields["input_tokens"] = sum(_int(call.get("input_tokens")) for call in usage)
    fields["output_tokens"] = sum(_int(call.get("output_tokens")) for call in usage)
    fields["classification_cost_usd"] = stage_cost(usage, CLASSIFICATION_STAGES)
    fields["answer_cost_usd"] = stage_cost(usage, ("answer",))
    fields["billed_models"] = sorted({str(call.get("model_id")) for call in usage})
    return fields


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ms(seconds: Any) -> float | None:
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
        return round(seconds * 1000, 3)
    return None
