"""What every function of a router stack shares: its own log group, a role that may write only
there, X-Ray tracing, the code asset and the stack's reserved concurrency.

The router function and the feedback function are both built here, so a hardening decision (log
retention, least-privilege logging, the concurrency cap) is made once for both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from llm_router.config import ConfigError, RoutesConfig
from llm_router.pipeline.strategies import Strategy

from stacks.lambda_target import LambdaTarget

METRICS_NAMESPACE = "MultiLlmRouter"

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs accepts only these retention periods; anything else fails the synth."""
    try:
        return _RETENTION[days]
    except KeyError:
        raise ConfigError(
            f"lambda.log_retention_days must be one of {sorted(_RETENTION)}, got {days}"
        ) from None


def base_environment(strategy: Strategy, config: RoutesConfig, service: str) -> dict[str, str]:
    """The variables every function of a router stack reads: its router, preset and Powertools."""
    return {
        "ROUTER_STRATEGY": strategy.name,
        "ROUTES_PRESET": config.preset,
        "POWERTOOLS_SERVICE_NAME": f"{strategy.name}-{service}",
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "LOG_LEVEL": "INFO",
    }


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between the stack's functions."""

    handler: str
    description: str
    role_description: str
    memory_mb: int
    timeout_seconds: int
    environment: Mapping[str, str]


@dataclass(frozen=True)
class StackFunctionSettings:
    """What the stack's functions have in common."""

    target: LambdaTarget
    code: lambda_.Code
    log_retention_days: int
    reserved_concurrency: int | None


def stack_function(
    scope: Construct,
    spec: FunctionSpec,
    common: StackFunctionSettings,
    layers: Sequence[lambda_.ILayerVersion],
) -> tuple[lambda_.Function, iam.Role]:
    """A traced function writing only to its own log group (``FunctionLogs`` under ``scope``)."""
    log_group = logs.LogGroup(
        scope,
        "FunctionLogs",
        retention=retention(common.log_retention_days),
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        "FunctionRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=spec.role_description,
    )
    # Writes to its own log group only (AWSLambdaBasicExecutionRole would allow any group).
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        "Function",
        description=spec.description[:256],
        runtime=common.target.runtime,
        architecture=common.target.architecture,
        handler=spec.handler,
        code=common.code,
        layers=list(layers),
        memory_size=spec.memory_mb,
        timeout=Duration.seconds(spec.timeout_seconds),
        reserved_concurrent_executions=common.reserved_concurrency,
        role=role,
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
        environment=dict(spec.environment),
    )
    return function, role
