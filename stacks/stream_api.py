"""``POST /ask/stream`` on a router's API: the answer streamed as server-sent events.

A function of its own beside the router's, with the router's code asset and layers, so ``/ask``
keeps its function, its cold start and its 29 s contract. It runs the same handler code through
its own Runtime API loop (``llm_router.edge.stream_runtime``, started by the
``stream_bootstrap`` exec wrapper: Python's managed runtime cannot stream), and API Gateway
invokes it with ``InvokeWithResponseStream`` (integration ``ResponseTransferMode: STREAM``, a
``.../response-streaming-invocations`` URI). Its timeout is the stream's own deadline
(``api.stream_deadline_seconds``) plus the function's margin, under API Gateway's 15 minutes.

Its role may call ``bedrock:InvokeModel`` on the decision's models (classifier, embedder) and
``bedrock:InvokeModelWithResponseStream`` on exactly the answer targets, and has what the router
function has on the request's path (:meth:`RouterApi.serve_requests`): the same budget table (one
daily budget for both routes), response cache, conversation table and feedback-token secret, so
a streamed answer is cached, continues a conversation and carries a feedback token as ``/ask``'s.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from llm_router.config import RoutesConfig
from llm_router.edge import ASK_RESOURCE, STREAM_ENTRY_POINT, STREAM_RESOURCE
from llm_router.pipeline.strategies import Strategy

from stacks.endpoint import RouterEndpoint
from stacks.functions import FunctionSpec, base_environment
from stacks.model_access import decision_invoke_statement, stream_statement
from stacks.router_api import RouterApi

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
                "streaming from its answer targets, its budget, cache and conversation tables "
                "and its feedback secret only"
            ),
            memory_mb=config.lambda_settings.memory_mb,
            timeout_seconds=config.stream_function_timeout_seconds,
            environment=environment,
        )
        self.add_function(router, spec, [layer.version for layer in router.layers])
        self.function_role.add_to_policy(decision_invoke_statement(self, strategy, config))
        self.function_role.add_to_policy(stream_statement(self, config))
        router.serve_requests(self.function, self.function_role)
        streamed = apigw.LambdaIntegration(
            self.function,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=Duration.seconds(config.stream_function_timeout_seconds),
        )
        self.add_post(router, router.ask_resource, STREAM_PATH, streamed, router.ask_model)
        self.url = router.api.url_for_path(STREAM_RESOURCE)
