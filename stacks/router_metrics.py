"""The router's CloudWatch metrics as CDK objects, for its dashboard and alarms.

Names and dimension sets come from :mod:`llm_router.observability.metric_catalog`, the list the
function
publishes from, so a renamed metric cannot leave a dashboard graphing nothing unnoticed (the
tests compare both). The values of the bounded dimensions come from routes.json: the categories
(plus ``out_of_scope``) and every model that may answer.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from llm_router.config import OUT_OF_SCOPE, RoutesConfig
from llm_router.observability import metric_catalog as mc
from llm_router.observability.telemetry import telemetry_settings
from llm_router.pipeline.strategies import Strategy

from stacks.functions import METRICS_NAMESPACE, base_environment

FIVE_MINUTES = Duration.minutes(5)
ONE_HOUR = Duration.hours(1)
ONE_DAY = Duration.days(1)


class RouterMetrics:
    """Metric objects of one router's EMF metrics, by dimension set."""

    def __init__(self, strategy: Strategy, config: RoutesConfig) -> None:
        self.strategy = strategy
        self.config = config
        # Powertools adds the function's service name to the first dimension set.
        self.service = base_environment(strategy, config, "router")["POWERTOOLS_SERVICE_NAME"]
        # A breakdown the function does not publish (routes.json metrics.breakdowns) has no values.
        breakdowns = telemetry_settings(config).breakdowns
        self.categories: tuple[str, ...] = (
            (*config.category_names, OUT_OF_SCOPE) if mc.CATEGORY in breakdowns else ()
        )
        self.targets: tuple[str, ...] = (
            config.answerer_model_ids() if mc.ANSWER_TARGET in breakdowns else ()
        )
        self.tiers: tuple[str, ...] = tuple(config.tiers)

    def router(
        self,
        spec: mc.MetricSpec,
        statistic: str = "Sum",
        period: Duration = FIVE_MINUTES,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """The router's total (dimensions Strategy + service)."""
        dimensions = {mc.STRATEGY: self.strategy.name, mc.SERVICE: self.service}
        return self._metric(spec, dimensions, statistic, period, label)

    def by(
        self,
        dimension: str,
        value: str,
        spec: mc.MetricSpec,
        statistic: str = "Sum",
        period: Duration = FIVE_MINUTES,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """One value of the Category, AnswerTarget or Tier dimension set."""
        dimensions = {mc.STRATEGY: self.strategy.name, dimension: value}
        return self._metric(spec, dimensions, statistic, period, label or value)

    def per_category(
        self, spec: mc.MetricSpec, statistic: str = "Sum", period: Duration = FIVE_MINUTES
    ) -> list[cloudwatch.IMetric]:
        return [self.by(mc.CATEGORY, c, spec, statistic, period) for c in self.categories]

    def per_target(
        self, spec: mc.MetricSpec, statistic: str = "Sum", period: Duration = FIVE_MINUTES
    ) -> list[cloudwatch.IMetric]:
        return [self.by(mc.ANSWER_TARGET, t, spec, statistic, period) for t in self.targets]

    def per_tier(
        self, spec: mc.MetricSpec, statistic: str = "Sum", period: Duration = FIVE_MINUTES
    ) -> list[cloudwatch.IMetric]:
        return [self.by(mc.TIER, t, spec, statistic, period) for t in self.tiers]

    def rate(
        self, spec: mc.MetricSpec, min_requests: int, period: Duration = FIVE_MINUTES
    ) -> cloudwatch.MathExpression:
        """spec / Requests, 0 in periods with fewer than ``min_requests`` requests."""
        return cloudwatch.MathExpression(
            expression=f"IF(requests >= {min_requests}, FILL(part, 0) / requests, 0)",
            using_metrics={"part": self.router(spec, period=period), "requests": self.router(
                mc.REQUESTS, period=period)},
            label=f"{spec.name} / {mc.REQUESTS.name}",
            period=period,
        )

    @staticmethod
    def _metric(
        spec: mc.MetricSpec,
        dimensions: dict[str, str],
        statistic: str,
        period: Duration,
        label: str | None,
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=spec.name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=period,
            label=label or f"{spec.name} {statistic}",
        )
