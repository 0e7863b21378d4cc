"""The router's CloudWatch metrics and their dimensions: the one list the function publishes
(:mod:`llm_router.observability.telemetry`) and the dashboard and alarms read
(``stacks/monitoring.py``).

Plain data with no Powertools import, so the CDK app (which does not install Powertools) can read
it too.

**One EMF blob per request.** Powertools Metrics 3.37 writes one metric directive per flush: every
metric in it is published under every dimension set of the blob (``add_dimension`` fills the
first set, ``add_dimensions`` adds more), and a dimension has one value per blob. So a request
cannot say "12 tokens for model A, 300 for model B" with a ``Model`` dimension. The design:

* dimension sets, each with a value bounded by ``routes.json``:

  - ``Strategy`` (+ ``service``, which Powertools adds to the first set; one per function): the
    router's totals. Values: the three strategies.
  - ``Strategy, Category`` (opt-in, ``metrics.breakdowns``): when the request got a category.
    Values: the configured categories plus ``out_of_scope``.
  - ``Strategy, AnswerTarget`` (opt-in, ``metrics.breakdowns``): when a model answered. Values:
    ``config.answerer_model_ids()`` (every pool member and fallback of every tier).
  - ``Strategy, Tier``: only when ``routes.json`` defines more than one tier. Values: its tiers.

* per-model values carry the *stage* in the metric name (``EmbeddingInputTokens``,
  ``ClassifierInputTokens``, ``AnswerInputTokens``, ...): a stack's embedding and classifier
  models are fixed by its preset, and the answer model is the ``AnswerTarget`` dimension. Billed
  attempts of a failed-over target count under the target that finally answered; the audit log
  line names each billed model exactly.

* counts are published only when non-zero (a rate is ``FILL(count, 0) / Requests``), so a metric
  that never happens never exists and costs nothing. CloudWatch bills each name x dimension-set
  combination that receives data in an hour; at most ``len(METRICS)`` x (1 [+ categories]
  [+ targets] [+ tiers]) per stack. The two breakdowns are opt-in because they multiply that
  count by 1 + categories + targets, several times the $9 a month of semantic routing at the
  blog's traffic (``scripts/cost_calculator.py`` prints both); the audit log's Logs Insights query
  (``telemetry.AUDIT_COST_QUERY``) gives cost by category and model without them.
"""

from __future__ import annotations

from ..records import record

STRATEGY = "Strategy"
CATEGORY = "Category"
ANSWER_TARGET = "AnswerTarget"
TIER = "Tier"
SERVICE = "service"  # added by Powertools to the first dimension set

ROUTER_SET: tuple[str, ...] = (STRATEGY,)
CATEGORY_SET: tuple[str, ...] = (STRATEGY, CATEGORY)
TARGET_SET: tuple[str, ...] = (STRATEGY, ANSWER_TARGET)
TIER_SET: tuple[str, ...] = (STRATEGY, TIER)
DIMENSION_SETS: tuple[tuple[str, ...], ...] = (ROUTER_SET, CATEGORY_SET, TARGET_SET, TIER_SET)
# Dimensions routes.json metrics.breakdowns may turn on (each adds its dimension set).
BREAKDOWNS: tuple[str, ...] = (CATEGORY, ANSWER_TARGET)

COUNT = "Count"
MILLISECONDS = "Milliseconds"
USD = "None"  # CloudWatch has no currency unit


@record(frozen=True)
class MetricSpec:
    name: str
    unit: str
    meaning: str


def _spec(name: str, unit: str, meaning: str) -> MetricSpec:
    return MetricSpec(name, unit, meaning)


# Outcome counts: 1 for the request when it applies, not published otherwise.
REQUESTS = _spec("Requests", COUNT, "every request the function served")
ANSWERED = _spec("Answered", COUNT, "a model answered (status 200, not declined)")
DECLINED = _spec("Declined", COUNT, "declined as off-topic, no answer model called")
DEGRADED = _spec("Degraded", COUNT, "classification failed; a fallback decision was used")
FALLBACK_USED = _spec("FallbackUsed", COUNT, "the answer came from a fallback target")
STATUS_4XX = _spec("Status4xx", COUNT, "the function answered 4xx (bad request, over budget)")
STATUS_5XX = _spec("Status5xx", COUNT, "the function answered 5xx (504 included)")
STATUS_504 = _spec("Status504", COUNT, "the request's deadline ran out (504)")
OVER_BUDGET = _spec("OverBudget", COUNT, "refused at the hard daily budget (429)")
BUDGET_SOFT = _spec("BudgetSoft", COUNT, "routed to the cheapest targets past the soft budget")
ESCALATED = _spec("Escalated", COUNT, "hybrid router asked the classifier LLM")
# The response cache (routing.cache): hit rate = CacheHits / (CacheHits + CacheMisses).
CACHE_HITS = _spec("CacheHits", COUNT, "answered from the cache (exact or semantic), no model")
CACHE_SEMANTIC_HITS = _spec("CacheSemanticHits", COUNT, "of the cache hits, the semantic ones")
CACHE_MISSES = _spec("CacheMisses", COUNT, "looked up in the cache, not found: a model answered")
CACHE_STALE = _spec("CacheStale", COUNT, "every target failed: a stale cached answer was served")
# Per-call counts, summed over the request.
BEDROCK_FAILURES = _spec("BedrockFailures", COUNT, "Bedrock calls that failed (any stage)")
BEDROCK_THROTTLES = _spec("BedrockThrottles", COUNT, "Bedrock calls refused as throttled")
BREAKER_OPENINGS = _spec("BreakerOpenings", COUNT, "circuit breakers this request opened")
BREAKER_SKIPS = _spec("BreakerSkips", COUNT, "calls skipped because a breaker was open")
UNPRICED_CALLS = _spec("UnpricedCalls", COUNT, "billed calls of a model without a price")
# Latency of each stage, when the stage ran.
CLASSIFICATION_LATENCY = _spec("ClassificationLatency", MILLISECONDS, "classification stage")
ANSWER_LATENCY = _spec("AnswerLatency", MILLISECONDS, "answer stage, failover included")
TOTAL_LATENCY = _spec("TotalLatency", MILLISECONDS, "the whole request in the function")
# Tokens by stage (the stage names the model, see the module docstring).
EMBEDDING_INPUT_TOKENS = _spec("EmbeddingInputTokens", COUNT, "embedding model input tokens")
CLASSIFIER_INPUT_TOKENS = _spec("ClassifierInputTokens", COUNT, "classifier LLM input tokens")
CLASSIFIER_OUTPUT_TOKENS = _spec("ClassifierOutputTokens", COUNT, "classifier LLM output tokens")
ANSWER_INPUT_TOKENS = _spec("AnswerInputTokens", COUNT, "answer model input tokens")
ANSWER_OUTPUT_TOKENS = _spec("AnswerOutputTokens", COUNT, "answer model output tokens")
# Cost in USD, published only when known (an unpriced model makes it unknown, never zero).
COST = _spec("CostUSD", USD, "the request's cost, all billed calls")
CLASSIFICATION_COST = _spec("ClassificationCostUSD", USD, "cost of classification and embedding")
ANSWER_COST = _spec("AnswerCostUSD", USD, "cost of the billed answer attempts")
CACHE_SAVED = _spec("CacheSavedUSD", USD, "answer cost a cache hit saved (what the answer cost)")

METRICS: tuple[MetricSpec, ...] = (
    REQUESTS, ANSWERED, DECLINED, DEGRADED, FALLBACK_USED, STATUS_4XX, STATUS_5XX, STATUS_504,
    OVER_BUDGET, BUDGET_SOFT, ESCALATED, CACHE_HITS, CACHE_SEMANTIC_HITS, CACHE_MISSES,
    CACHE_STALE, BEDROCK_FAILURES, BEDROCK_THROTTLES, BREAKER_OPENINGS,
    BREAKER_SKIPS, UNPRICED_CALLS, CLASSIFICATION_LATENCY, ANSWER_LATENCY, TOTAL_LATENCY,
    EMBEDDING_INPUT_TOKENS, CLASSIFIER_INPUT_TOKENS, CLASSIFIER_OUTPUT_TOKENS, ANSWER_INPUT_TOKENS,
    ANSWER_OUTPUT_TOKENS, COST, CLASSIFICATION_COST, ANSWER_COST, CACHE_SAVED,
)  # fmt: skip

# The usage stage of a billed call -> (input tokens metric, output tokens metric or None).
TOKEN_METRICS: dict[str, tuple[MetricSpec, MetricSpec | None]] = {
    "embedding": (EMBEDDING_INPUT_TOKENS, None),
    "classification": (CLASSIFIER_INPUT_TOKENS, CLASSIFIER_OUTPUT_TOKENS),
    "answer": (ANSWER_INPUT_TOKENS, ANSWER_OUTPUT_TOKENS),
}
# Bedrock error codes that mean "slow down" (bedrock.py classifies them as transient).
THROTTLE_CODES = frozenset({"ThrottlingException", "ServiceQuotaExceededException"})


def router_metrics(uses_classifier_llm: bool, uses_embeddings: bool) -> tuple[MetricSpec, ...]:
    """The metrics a router can publish: classifier tokens need the classifier LLM, embedding
    tokens the embeddings, escalations both (the hybrid router). What bounds a stack's bill."""
    never = set()
    if not uses_classifier_llm:
        never |= {CLASSIFIER_INPUT_TOKENS, CLASSIFIER_OUTPUT_TOKENS}
    if not uses_embeddings:
        never.add(EMBEDDING_INPUT_TOKENS)
    if not (uses_classifier_llm and uses_embeddings):
        never.add(ESCALATED)
    return tuple(m for m in METRICS if m not in never)


def metric_names() -> tuple[str, ...]:
    return tuple(m.name for m in METRICS)


def documented_metrics() -> list[dict[str, object]]:
    """Name, unit, meaning and dimension sets of every metric: for the README and the tests."""
    return [
        {"name": m.name, "unit": m.unit, "meaning": m.meaning, "dimension_sets": DIMENSION_SETS}
        for m in METRICS
    ]
