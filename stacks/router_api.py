"""What every router stack has: the router Lambda behind a key-protected ``POST /ask``.

Callers authenticate with an API key (``x-api-key``) tied to a usage plan whose throttle and daily
quota come from ``routes.json`` ``api.*``: the sample has no user accounts, so the key plus the
plan bound both abuse and Bedrock spend. API Gateway rejects malformed bodies (request validator
+ JSON schema) before they can cost a Lambda invocation or a model call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from llm_router.config import ConfigError, RoutesConfig
from llm_router.http_api import ask_request_schema
from llm_router.strategies import Strategy

from layers.build import LayerBuilder, check_size
from stacks.bundling import function_code
from stacks.lambda_target import LambdaTarget
from stacks.model_access import invoke_statement
from stacks.router_layers import RouterLayer, runtime_layer

HANDLER = "llm_router.handler.lambda_handler"
STAGE_NAME = "prod"
ASK_PATH = "ask"
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


def question_schema(config: RoutesConfig) -> apigw.JsonSchema:
    """The body of POST /ask, rendered from the one definition the local API and OpenAPI use."""
    return cdk_json_schema(ask_request_schema(config.api.max_question_chars))


def cdk_json_schema(schema: dict[str, Any]) -> apigw.JsonSchema:
    """A draft-4 JSON Schema dict as the CDK's ``JsonSchema`` (camelCase keys to snake_case)."""
    args: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            args["schema"] = apigw.JsonSchemaVersion.DRAFT4
        elif key == "type":
            args["type"] = apigw.JsonSchemaType[str(value).upper()]
        elif key == "properties":
            args["properties"] = {name: cdk_json_schema(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            args["items"] = cdk_json_schema(value)
        elif isinstance(value, dict):  # e.g. additionalProperties given as a schema
            args[re.sub(r"([A-Z])", r"_\1", key).lower()] = cdk_json_schema(value)
        else:
            args[re.sub(r"([A-Z])", r"_\1", key).lower()] = value
    return apigw.JsonSchema(**args)


class RouterApi(Construct):
    """The router function (code, runtime layer + ``extra_layers``) behind ``POST /ask``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        strategy: Strategy,
        config: RoutesConfig,
        target: LambdaTarget,
        layer_builder: LayerBuilder,
        extra_layers: Sequence[RouterLayer] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        layers = [runtime_layer(self, target, layer_builder), *extra_layers]
        self.function = self._function(strategy, config, target, layers)
        self.api = self._rest_api(strategy, config)
        self.api_key = self._usage_plan(strategy, config)
        self.ask_url = self.api.url_for_path(f"/{ASK_PATH}")

    def _function(
        self,
        strategy: Strategy,
        config: RoutesConfig,
        target: LambdaTarget,
        layers: Sequence[RouterLayer],
    ) -> lambda_.Function:
        """The router Lambda.

        Sizing comes from routes.json ``lambda``: 1024 MB not for memory (the index is a few
        vectors) but because Lambda allots CPU in proportion to memory, and the cold start
        (importing numpy/faiss, loading the index, creating the boto3 client) is CPU-bound; 60 s
        because one request makes up to two sequential Bedrock calls (classify, then answer up to
        ``answering.max_tokens``), each with standard retries. API Gateway's integration timeout
        (29 s by default) still caps what a caller waits for.
        """
        lam = config.lambda_settings
        if config.source_path is None:
            raise ValueError("the routes configuration must be loaded from a file to be deployed")
        code, code_bytes = function_code(config.source_path)
        sizes = {f"layer {layer.name}": layer.unzipped_bytes or 0 for layer in layers}
        if all(layer.unzipped_bytes is not None for layer in layers):  # known when bundling
            check_size({"code": code_bytes, **sizes})  # the 250 MB limit is for all of it
        log_group = logs.LogGroup(
            self,
            "FunctionLogs",
            retention=retention(lam.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = self.function_role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{strategy.name} router: its log group, X-Ray and its Bedrock models only",
        )
        # Writes to its own log group only (AWSLambdaBasicExecutionRole would allow any group).
        log_group.grant_write(role)
        role.add_to_policy(invoke_statement(self, strategy, config))
        environment: dict[str, str] = {
            "ROUTER_STRATEGY": strategy.name,
            "ROUTES_PRESET": config.preset,
            "POWERTOOLS_SERVICE_NAME": f"{strategy.name}-router",
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": "INFO",
        }
        for layer in layers:
            environment.update(layer.environment)
        return lambda_.Function(
            self,
            "Function",
            description=f"{strategy.description} (preset {config.preset})"[:256],
            runtime=target.runtime,
            architecture=target.architecture,
            handler=HANDLER,
            code=code,
            layers=[layer.version for layer in layers],
            memory_size=lam.memory_mb,
            timeout=Duration.seconds(lam.timeout_seconds),
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment,
        )

    def _rest_api(self, strategy: Strategy, config: RoutesConfig) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.lambda_settings.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        api = apigw.RestApi(
            self,
            "Api",
            description=f"Multi-LLM router ({strategy.name}): POST /{ASK_PATH}",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            # Access logging needs the account's API Gateway CloudWatch role. Retained on delete,
            # because it is an account-wide setting other APIs may rely on.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                # Execution logs for errors only, never request bodies (the questions).
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                throttling_rate_limit=config.api.throttle_rate_limit,
                throttling_burst_limit=config.api.throttle_burst_limit,
            ),
        )
        # RestApi adds an "Endpoint" output (the stage URL); the stack outputs ApiUrl instead.
        api.node.try_remove_child("Endpoint")
        cors = {"Access-Control-Allow-Origin": "'*'"}
        # So browsers can read API Gateway's own errors (missing key 403, throttled 429, 400).
        api.add_gateway_response(
            "Default4xx", type=apigw.ResponseType.DEFAULT_4_XX, response_headers=cors
        )
        api.add_gateway_response(
            "Default5xx", type=apigw.ResponseType.DEFAULT_5_XX, response_headers=cors
        )
        model = api.add_model(
            "AskRequestModel",
            content_type="application/json",
            description="Body of POST /ask",
            schema=question_schema(config),
        )
        validator = api.add_request_validator(
            "AskValidator", validate_request_body=True, validate_request_parameters=True
        )
        ask = api.root.add_resource(
            ASK_PATH,
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=apigw.Cors.ALL_ORIGINS,
                allow_methods=["POST", "OPTIONS"],
                allow_headers=["Content-Type", "X-Api-Key"],
                max_age=Duration.hours(1),
            ),
        )
        self.ask_method = ask.add_method(
            "POST",
            apigw.LambdaIntegration(self.function),
            api_key_required=True,
            request_validator=validator,
            # $default: validate whatever Content-Type the caller sends, not only JSON.
            request_models={"$default": model},
        )
        return api

    def _usage_plan(self, strategy: Strategy, config: RoutesConfig) -> apigw.IApiKey:
        plan = self.api.add_usage_plan(
            "UsagePlan",
            description=f"{strategy.name} router: per-key throttle and daily quota",
            throttle=apigw.ThrottleSettings(
                rate_limit=config.api.throttle_rate_limit,
                burst_limit=config.api.throttle_burst_limit,
            ),
            quota=apigw.QuotaSettings(
                limit=config.api.quota_requests_per_day, period=apigw.Period.DAY
            ),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        key = self.api.add_api_key(
            "ApiKey", description=f"{strategy.name} router key (value generated by API Gateway)"
        )
        plan.add_api_key(key)
        return key
