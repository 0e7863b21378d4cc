"""What every router stack has: the router Lambda behind a key-protected ``POST /ask``.

Callers authenticate with an API key (``x-api-key``) tied to their tier's usage plan, whose
throttle and daily quota come from ``routes.json`` ``tiers`` (defaults ``api.*``): the sample has
no user accounts, so the keys plus the plans bound both abuse and Bedrock spend, and the daily
budget table bounds it in dollars. API Gateway rejects malformed bodies (request validator + JSON
schema) before they can cost a Lambda invocation or a model call, and gives up on the integration
at ``api.integration_timeout_seconds``, which the function's own deadline stays under.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from llm_router.config import RoutesConfig
from llm_router.config.cache import CACHE_TABLE_ENV
from llm_router.config.settings import BUDGET_TABLE_ENV, CONVERSATION_TABLE_ENV, TIER_KEYS_ENV
from llm_router.edge import ASK_RESOURCE, ROUTER_ENTRY_POINT
from llm_router.governance.provenance import FEEDBACK_SECRET_ENV
from llm_router.pipeline.cache.store import ACTIONS as CACHE_ACTIONS
from llm_router.pipeline.strategies import Strategy

from layers.build import LayerBuilder, check_size
from stacks.api_keys import tier_keys
from stacks.bundling import function_code
from stacks.concurrency import THROTTLED_RETRY_AFTER_SECONDS, reserved_concurrency, stage_throttle
from stacks.deployment import DeploymentSettings
from stacks.functions import (
    METRICS_NAMESPACE,
    FunctionSpec,
    StackFunctionSettings,
    base_environment,
    retention,
    stack_function,
)
from stacks.lambda_target import LambdaTarget
from stacks.model_access import invoke_statement
from stacks.request_schemas import ask_body_schema
from stacks.router_layers import RouterLayer, runtime_layer
from stacks.secrets import feedback_signing_secret, grant_secret_value
from stacks.tables import (
    budget_enabled,
    budget_table,
    cache_enabled,
    cache_table,
    conversation_table,
)

__all__ = [
    "CACHE_ACTIONS", "METRICS_NAMESPACE", "RouterApi", "cdk_json_schema", "question_schema",
    "retention",
]

HANDLER = ROUTER_ENTRY_POINT
STAGE_NAME = "prod"
ASK_PATH = ASK_RESOURCE.removeprefix("/")
# reserve and settle; GetItem: each instance reads the day once at init (governance.budget)
BUDGET_ACTIONS = ("dynamodb:UpdateItem", "dynamodb:GetItem")
# What DynamoDB needs of its caller's key permissions to read and write a table under a customer
# key: the key actions of the CDK's grantReadWriteData, without the wildcard ReEncrypt*, which a
# function that only gets, puts and queries never causes.
CACHE_KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")
# What llm_router.governance.conversation_store calls: GetItem to read, a conditional PutItem.
CONVERSATION_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")


def question_schema(config: RoutesConfig) -> apigw.JsonSchema:
    """The body of POST /ask, rendered from the one definition the local API and OpenAPI use."""
    return cdk_json_schema(ask_body_schema(config))


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


@dataclass(frozen=True)
class RouterInputs:
    """What one router's stack is built from. The app makes it once per strategy; the stack and
    its router API read it, instead of each taking the same five arguments to pass on."""

    strategy: Strategy
    config: RoutesConfig
    target: LambdaTarget
    layer_builder: LayerBuilder
    deployment: DeploymentSettings


class RouterApi(Construct):
    """The router function (code, runtime layer + ``extra_layers``) behind ``POST /ask``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        inputs: RouterInputs,
        extra_layers: Sequence[RouterLayer] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        strategy, config, target = inputs.strategy, inputs.config, inputs.target
        layer_builder, deployment = inputs.layer_builder, inputs.deployment
        self.runtime_layer = runtime_layer(self, target, layer_builder)
        layers = [self.runtime_layer, *extra_layers]
        self.layers: tuple[RouterLayer, ...] = tuple(layers)  # the streaming function's too
        if config.source_path is None:
            raise ValueError("the routes configuration must be loaded from a file to be deployed")
        code, code_bytes = function_code(config.source_path, target.platform.python_version)
        sizes = {f"layer {layer.name}": layer.unzipped_bytes or 0 for layer in layers}
        if all(layer.unzipped_bytes is not None for layer in layers):  # known when bundling
            check_size({"code": code_bytes, **sizes})  # the 250 MB limit is for all of it
        # Shared with the stack's other functions (feedback): same code asset, logs, cap.
        self.function_settings = StackFunctionSettings(
            target=target,
            code=code,
            log_retention_days=config.lambda_settings.log_retention_days,
            reserved_concurrency=reserved_concurrency(
                config, deployment.reserved_concurrency, deployment.p99_answer_seconds
            ),
        )
        self.cors_options = apigw.CorsOptions(
            allow_origins=list(deployment.cors_allowed_origins),
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["Content-Type", "X-Api-Key", "Cache-Control"],
            max_age=Duration.hours(1),
        )
        self.function = self._function(strategy, config, layers)
        self.api = self._rest_api(strategy, config, deployment)
        self.tier_keys = tier_keys(self.api, strategy, config)
        self.api_key = next(k.key for k in self.tier_keys if k.tier.name == config.default_tier)
        self.budget_table = budget_table(self) if budget_enabled(config) else None
        self.feedback_secret = feedback_signing_secret(self)
        self.cache_table = self.cache_key = None
        if cache_enabled(config):
            self.cache_table, self.cache_key = cache_table(self, config)
        self.conversation_table = conversation_table(self)
        self.serve_requests(self.function, self.function_role)
        self.ask_url = self.api.url_for_path(ASK_RESOURCE)

    def serve_requests(self, function: lambda_.Function, role: iam.IRole) -> None:
        """What a function answering ``/ask`` (or ``/ask/stream``) reads and writes besides its
        models, granted and named in its environment: the tiers' key ids, the budget table
        (``UpdateItem``), the feedback-token secret (``GetSecretValue``), the cache table
        (exactly what ``llm_router.pipeline.cache.store`` calls: ``GetItem``, ``PutItem``,
        ``Query``, and its key's actions under a customer key) and the conversation table
        (``GetItem``, ``PutItem``); a table the configuration turns off is neither."""
        stack = Stack.of(self)
        function.add_environment(
            TIER_KEYS_ENV,
            stack.to_json_string({k.tier.name: k.key.key_id for k in self.tier_keys}),
        )
        if self.budget_table is not None:
            self.budget_table.grant(role, *BUDGET_ACTIONS)
            function.add_environment(BUDGET_TABLE_ENV, self.budget_table.table_name)
        grant_secret_value(self.feedback_secret, role)
        function.add_environment(FEEDBACK_SECRET_ENV, self.feedback_secret.secret_arn)
        if self.cache_table is not None:
            self.cache_table.grant(role, *CACHE_ACTIONS)
            if self.cache_key is not None:
                self.cache_key.grant(role, *CACHE_KEY_ACTIONS)
            function.add_environment(CACHE_TABLE_ENV, self.cache_table.table_name)
        self.conversation_table.grant(role, *CONVERSATION_ACTIONS)
        function.add_environment(CONVERSATION_TABLE_ENV, self.conversation_table.table_name)

    def _function(
        self, strategy: Strategy, config: RoutesConfig, layers: Sequence[RouterLayer]
    ) -> lambda_.Function:
        """The router Lambda.

        Sizing comes from routes.json ``lambda``: 1024 MB not for memory (the index is a few
        vectors) but because Lambda allots CPU in proportion to memory, and the cold start
        (importing numpy/faiss, loading the index, creating the boto3 client) is CPU-bound. The
        timeout is derived, not configured: the request budget (``api.integration_timeout_seconds``
        less ``resilience.response_margin_seconds``) plus ``resilience.function_timeout_margin_
        seconds``, 30 s by default. The function answers (or gives up with a 504) within the
        budget, before API Gateway cuts the caller off; the margin only lets it finish logging
        and metrics, so no invocation keeps running, and billing, long after the caller is gone.
        """
        environment = base_environment(strategy, config, "router")
        for layer in layers:
            environment.update(layer.environment)
        spec = FunctionSpec(
            handler=HANDLER,
            description=f"{strategy.description} (preset {config.preset})",
            role_description=(
                f"{strategy.name} router: its log group, X-Ray, its Bedrock models and its "
                "request-path data (budget, cache and conversation tables, feedback secret) only"
            ),
            memory_mb=config.lambda_settings.memory_mb,
            timeout_seconds=config.lambda_settings.timeout_seconds,
            environment=environment,
        )
        function, self.function_role = stack_function(
            self, spec, self.function_settings, [layer.version for layer in layers]
        )
        self.function_role.add_to_policy(invoke_statement(self, strategy, config))
        return function

    def _rest_api(
        self, strategy: Strategy, config: RoutesConfig, deployment: DeploymentSettings
    ) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.lambda_settings.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        throttle = stage_throttle(config)
        api = apigw.RestApi(
            self,
            "Api",
            # API Gateway's metrics are keyed by the API's name: one per router, for the dashboard.
            rest_api_name=strategy.stack_name,
            description=f"Multi-LLM router ({strategy.name}): POST {ASK_RESOURCE}",
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
                # Per-key limits are the tiers' usage plans; the stage lets the highest through.
                throttling_rate_limit=throttle.rate,
                throttling_burst_limit=throttle.burst,
            ),
        )
        # RestApi adds an "Endpoint" output (the stage URL); the stack outputs ApiUrl instead.
        api.node.try_remove_child("Endpoint")
        origins = deployment.cors_allowed_origins
        # So browsers can read API Gateway's own errors (missing key 403, throttled 429, 400).
        # A gateway response cannot choose among several origins, so it names one or none.
        cors = {"Access-Control-Allow-Origin": f"'{origins[0]}'"} if len(origins) == 1 else {}
        api.add_gateway_response(
            "Default4xx", type=apigw.ResponseType.DEFAULT_4_XX, response_headers=cors
        )
        api.add_gateway_response(
            "Default5xx", type=apigw.ResponseType.DEFAULT_5_XX, response_headers=cors
        )
        # The stage's (and the usage plans') throttle: 429 with when to retry. The functions'
        # reserved concurrency holds this throttle (stacks.concurrency), so it trips first.
        api.add_gateway_response(
            "Throttled",
            type=apigw.ResponseType.THROTTLED,
            status_code="429",
            response_headers={**cors, "Retry-After": f"'{THROTTLED_RETRY_AFTER_SECONDS}'"},
        )
        model = api.add_model(
            "AskRequestModel",
            content_type="application/json",
            description="Body of POST /ask",
            schema=question_schema(config),
        )
        # Shared by every method of the API (POST /feedback too).
        self.validator = api.add_request_validator(
            "AskValidator", validate_request_body=True, validate_request_parameters=True
        )
        ask = api.root.add_resource(ASK_PATH, default_cors_preflight_options=self.cors_options)
        self.ask_resource = ask
        self.ask_model = model
        self.ask_method = ask.add_method(
            "POST",
            apigw.LambdaIntegration(
                self.function,
                timeout=Duration.seconds(config.api.integration_timeout_seconds),
            ),
            api_key_required=True,
            request_validator=self.validator,
            # $default: validate whatever Content-Type the caller sends, not only JSON.
            request_models={"$default": model},
        )
        return api
