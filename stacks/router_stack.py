"""One CloudFormation stack per routing strategy: the router API plus what its strategy needs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct
from llm_router.config import RoutesConfig
from llm_router.strategies import Strategy

from layers.build import LayerBuilder
from stacks.lambda_target import LambdaTarget
from stacks.nag import acknowledge_router_findings
from stacks.router_api import RouterApi
from stacks.router_layers import RouterLayer, semantic_layer


class RouterStack(Stack):
    def __init__(
        self,
        scope: Construct,
        *,
        strategy: Strategy,
        config: RoutesConfig,
        target: LambdaTarget,
        layer_builder: LayerBuilder,
        index_embeddings: str = "auto",
        index_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            strategy.stack_name,
            description=f"Multi-LLM router, {strategy.name} strategy: {strategy.description}",
            **kwargs,
        )
        Tags.of(self).add("project", "multi-llm-router")
        Tags.of(self).add("router-strategy", strategy.name)
        extra_layers: list[RouterLayer] = []
        if strategy.needs_index:
            extra_layers.append(
                semantic_layer(self, target, layer_builder, config, index_embeddings, index_region)
            )
        self.router = RouterApi(
            self,
            "Router",
            strategy=strategy,
            config=config,
            target=target,
            layer_builder=layer_builder,
            extra_layers=extra_layers,
        )
        CfnOutput(
            self,
            "ApiUrl",
            value=self.router.ask_url,
            description="URL of the router's POST /ask endpoint (send the key in x-api-key)",
        )
        CfnOutput(self, "ApiId", value=self.router.api.rest_api_id, description="REST API id")
        CfnOutput(
            self,
            "ApiKeyId",
            value=self.router.api_key.key_id,
            description="Id of the API key, not its value; get the value with: aws apigateway "
            "get-api-key --include-value --query value --output text --api-key <ApiKeyId>",
        )
        acknowledge_router_findings(self.router)
