"""A dashboard and alarms in every router stack, thresholds from routes.json ``alarms``.

Plain CDK (``aws_cloudwatch``) rather than cdk-monitoring-constructs (10.3.3 would work with
aws-cdk-lib 2.275): most of what is shown is the function's own EMF metrics, combined with metric
math (rates over a minimum of requests, ``RUNNING_SUM`` of cost) and dimension values read from
routes.json. The library would wrap those same ``Metric``/``MathExpression`` objects in its custom
metric groups, while adding its own widget layout, alarm naming and a second jsii assembly to
every synth (importing it took 0.5-0.6 s more than ``aws_cdk`` alone here); API Gateway's and
Lambda's built-in metrics are one call each on the constructs we already have.

Alarms (each can be turned off with ``null`` in routes.json):

* ``ServerErrorRate``: API Gateway 5XXError / Count (what callers see, function crashes and
  gateway timeouts included) above ``server_error_rate``;
* ``LatencyNearTimeout``: the ``/ask`` function's p99 Duration above
  ``latency_p99_timeout_fraction`` of ``api.integration_timeout_seconds`` (the function's, not the
  API's Latency: ``POST /ask/stream`` answers run for minutes by design and would trip it);
* ``BedrockFailures``: failed Bedrock calls per period, at least ``bedrock_failures``;
* ``DeclineRate``: Declined / Requests above ``decline_rate`` (the expected off-topic share plus
  headroom; evaluate.py measures the false-refusal part);
* ``DailyCost``: CostUSD summed over a rolling day above ``daily_cost_usd``.

``-c alarmEmail=ops@example.com`` adds an SNS topic with that e-mail subscription as the alarms'
action (the address must confirm the subscription).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Acknowledgment, Aws, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from llm_router.config import ConfigError, RoutesConfig
from llm_router.observability import metric_catalog as mc
from llm_router.pipeline.strategies import Strategy

from stacks.alarm_settings import AlarmSettings, parse_alarms
from stacks.dashboard import dashboard_rows
from stacks.router_api import RouterApi
from stacks.router_metrics import ONE_DAY, RouterMetrics

CONTEXT_ALARM_EMAIL = "alarmEmail"
SNS_DEFAULT_KEY = (
    "Alarm notifications carry only the alarm's name and state, no request data. CloudWatch "
    "alarms cannot publish to a topic encrypted with the AWS managed key alias/aws/sns (its "
    "policy cannot grant CloudWatch), and a customer managed key would cost more than this "
    "sample's whole monitoring; the topic enforces TLS instead."
)


@dataclass
class RouterMonitoring:
    dashboard: cloudwatch.Dashboard
    alarms: dict[str, cloudwatch.Alarm] = field(default_factory=dict)
    topic: sns.Topic | None = None


def alarm_email_from_context(scope: Construct) -> str | None:
    value = scope.node.try_get_context(CONTEXT_ALARM_EMAIL)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or "@" not in value or any(c.isspace() for c in value):
        raise ConfigError(f"context {CONTEXT_ALARM_EMAIL} must be an e-mail address, got {value!r}")
    return value


def add_monitoring(
    stack: Stack,
    router: RouterApi,
    strategy: Strategy,
    config: RoutesConfig,
    alarm_email: str | None = None,
) -> RouterMonitoring:
    """The stack's dashboard (output ``DashboardUrl``), alarms and, with an e-mail, SNS topic.

    ``alarm_email`` defaults to the ``alarmEmail`` context value.
    """
    scope = Construct(stack, "Monitoring")
    settings = parse_alarms(config.raw)
    metrics = RouterMetrics(strategy, config)
    alarms = _alarms(scope, router, metrics, settings)
    topic = None
    email = alarm_email if alarm_email is not None else alarm_email_from_context(stack)
    if email:
        topic = sns.Topic(
            scope,
            "AlarmTopic",
            display_name=f"{strategy.stack_name} alarms",
            enforce_ssl=True,
        )
        topic.add_subscription(subscriptions.EmailSubscription(email))
        Validations.of(topic).acknowledge(
            Acknowledgment(id="AwsSolutions-SNS2", reason=SNS_DEFAULT_KEY)
        )
        for alarm in alarms.values():
            alarm.add_alarm_action(actions.SnsAction(topic))
    dashboard = cloudwatch.Dashboard(
        scope,
        "Dashboard",
        dashboard_name=f"{strategy.stack_name}-{Aws.REGION}",
        default_interval=Duration.days(1),
    )
    log_group = router.function.log_group.log_group_name
    rows = dashboard_rows(metrics, router.api, router.function, log_group, list(alarms.values()))
    for row in rows:
        dashboard.add_widgets(*row)
    CfnOutput(
        stack,
        "DashboardUrl",
        value=f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
        f"#dashboards:name={dashboard.dashboard_name}",
        description="The router's CloudWatch dashboard",
    )
    return RouterMonitoring(dashboard, alarms, topic)


def _alarms(
    scope: Construct, router: RouterApi, metrics: RouterMetrics, settings: AlarmSettings
) -> dict[str, cloudwatch.Alarm]:
    period = Duration.minutes(settings.period_minutes)
    name = metrics.strategy.stack_name
    timeout_seconds = metrics.config.api.integration_timeout_seconds
    alarms: dict[str, cloudwatch.Alarm] = {}

    def alarm(
        alarm_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        ),
        evaluation_periods: int = settings.evaluation_periods,
    ) -> None:
        alarms[alarm_id] = cloudwatch.Alarm(
            scope,
            alarm_id,
            alarm_description=f"{name}: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    if settings.server_error_rate is not None:
        api_rate = cloudwatch.MathExpression(
            expression=f"IF(requests >= {settings.min_requests}, FILL(errors, 0) / requests, 0)",
            using_metrics={
                "errors": router.api.metric_server_error(period=period, statistic="Sum"),
                "requests": router.api.metric_count(period=period, statistic="Sum"),
            },
            label="API Gateway 5XXError / Count",
            period=period,
        )
        alarm("ServerErrorRate", api_rate, settings.server_error_rate,
              f"more than {settings.server_error_rate:.0%} of requests answered 5xx")
    if settings.latency_p99_timeout_fraction is not None:
        threshold_ms = settings.latency_p99_timeout_fraction * timeout_seconds * 1000
        alarm("LatencyNearTimeout",
              router.function.metric_duration(period=period, statistic="p99"), threshold_ms,
              f"p99 latency above {threshold_ms:.0f} ms, near the {timeout_seconds:g} s "
              "integration timeout")
    if settings.bedrock_failures is not None:
        alarm("BedrockFailures",
              metrics.router(mc.BEDROCK_FAILURES, period=period), settings.bedrock_failures,
              f"{settings.bedrock_failures} or more failed Bedrock calls in "
              f"{settings.period_minutes} min",
              comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
    if settings.decline_rate is not None:
        alarm("DeclineRate",
              metrics.rate(mc.DECLINED, settings.min_requests, period), settings.decline_rate,
              f"more than {settings.decline_rate:.0%} of questions declined as off-topic")
    if settings.daily_cost_usd is not None:
        alarm("DailyCost", metrics.router(mc.COST, period=ONE_DAY), settings.daily_cost_usd,
              f"routing cost more than ${settings.daily_cost_usd} in 24 hours",
              evaluation_periods=1)
    return alarms
