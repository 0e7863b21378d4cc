"""``POST /ask/stream`` on a router's API: the answer streamed as server-sent events.

A function of its own beside the router's, with the router's code asset and layers, so ``/ask``
keeps its function, its cold start and its 29 s contract. It runs the same handler code through
its own Runtime API loop (``llm_router.edge.stream_runtime``, started by the
``stream_bootstrap`` exec wrapper: Python's managed runtime cannot stream), and API Gateway
invokes it with ``InvokeWithResponseStream`` (integration ``ResponseTransferMode: STREAM``, a
``.../response-streaming-invocations`` URI). Its timeout is the stream's own deadline
(``api.stream_deadline_seconds``) plus the function's margin, under API Gateway's 15 minutes.

Its role may call ``bedrock:InvokeModel`` on the decision's models (classifier, embedder) and
``bedrock:InvokeModelWithResponseStream`` on exactly the answer targets, and update the same
budget table as the router (one daily budget for both routes).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from llm_router.config import RoutesConfig
from llm_router.edge import ASK_RESOURCE, STREAM_ENTRY_POINT, STREAM_RESOURCE
from llm_router.governance.budget import BUDGET_TABLE_ENV
from llm_router.pipeline.strategies import Strategy

from stacks.api_keys import TIER_KEYS_ENV
from stacks.endpoint import RouterEndpoint
from stacks.functions import FunctionSpec, base_environment
from stacks.model_access import decision_invoke_statement, stream_statement
from stacks.router_api import BUDGET_ACTIONS, RouterApi

STREAM_PATH = STREAM_RESOURCE.removeprefix(ASK_RESOURCE + "/")  # a resource under /ask
EXEC_WRAPPER_ENV = "AWS_LAMBDA_EXEC_WRAPPER"
EXEC_WRAPPER = "/var/task/llm_router/edge/stream_bootstrap"


class StreamingEndpoint(RouterEndpoint):
    def build(self, router: RouterApi, strategy: Strategy, config: RoutesConfig) -> None:
        environment = base_environment(strategy, config, "stream")
        for layer in router.layers:
            environment.update(layer.environment)
        environment[EXEC_WRAPPER_ENV] = EXEC_WRAPPER
        spec = FunctionSpec(
            handler=STREAM_ENTRY_POINT,
            description=f"{strategy.description}: streamed answers (preset {config.preset})",
            role_description=(
                f"{strategy.name} streaming router: its log group, X-Ray, its decision models, "
                "streaming from its answer targets and its budget table only"
            ),
            memory_mb=config.lambda_settings.memory_mb,
            timeout_seconds=config.stream_function_timeout_seconds,
            environment=environment,
        )
        self.add_function(router, spec, [layer.version for layer in router.layers])
        self.function_role.add_to_policy(decision_invoke_statement(self, strategy, config))
        self.function_role.add_to_policy(stream_statement(self, config))
        self.function.add_environment(
            TIER_KEYS_ENV,
            Stack.of(self).to_json_string({k.tier.name: k.key.key_id for k in router.tier_keys}),
        )
        if router.budget_table is not None:
            router.budget_table.grant(self.function_role, *BUDGET_ACTIONS)
            self.function.add_environment(BUDGET_TABLE_ENV, router.budget_table.table_name)
        streamed = apigw.LambdaIntegration(
            self.function,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=Duration.seconds(config.stream_function_timeout_seconds),
        )
        self.add_post(router, router.ask_resource, STREAM_PATH, streamed, router.ask_model)
        self.url = router.api.url_for_path(STREAM_RESOURCE)
