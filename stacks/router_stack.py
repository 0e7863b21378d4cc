"""One CloudFormation stack per routing strategy: the router API plus what its strategy needs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct
from llm_router.edge import FEEDBACK_RESOURCE

from stacks.feedback_api import FeedbackEndpoint
from stacks.monitoring import add_monitoring
from stacks.nag import acknowledge_router_findings
from stacks.router_api import RouterApi, RouterInputs
from stacks.router_layers import RouterLayer, semantic_layer
from stacks.stream_api import StreamingEndpoint
from stacks.waf import protect_stage


class RouterStack(Stack):
    def __init__(
        self,
        scope: Construct,
        *,
        inputs: RouterInputs,
        index_embeddings: str = "auto",
        index_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        strategy, config, target = inputs.strategy, inputs.config, inputs.target
        layer_builder, deployment = inputs.layer_builder, inputs.deployment
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
        self.router = RouterApi(self, "Router", inputs=inputs, extra_layers=extra_layers)
        self.feedback = FeedbackEndpoint(
            self, "Feedback", router=self.router, strategy=strategy, config=config
        )
        self.stream = StreamingEndpoint(
            self, "Stream", router=self.router, strategy=strategy, config=config
        )
        self.web_acl = None
        if deployment.waf.enabled:
            self.web_acl = protect_stage(
                self, self.router.api.deployment_stage, deployment.waf, strategy.stack_name
            )
        CfnOutput(
            self,
            "ApiUrl",
            value=self.router.ask_url,
            description="URL of the router's POST /ask endpoint (send the key in x-api-key)",
        )
        CfnOutput(
            self,
            "FeedbackUrl",
            value=self.router.api.url_for_path(FEEDBACK_RESOURCE),
            description="URL of POST /feedback (same API keys as /ask)",
        )
        CfnOutput(
            self,
            "StreamUrl",
            value=self.stream.url,
            description="URL of POST /ask/stream: the answer as server-sent events (same keys)",
        )
        CfnOutput(self, "ApiId", value=self.router.api.rest_api_id, description="REST API id")
        for tier_key in self.router.tier_keys:
            CfnOutput(
                self,
                tier_key.output_id,
                value=tier_key.key.key_id,
                description=f"Id of tier {tier_key.tier.name}'s API key, not its value; get the "
                "value with: aws apigateway get-api-key --include-value --query value --output "
                f"text --api-key <{tier_key.output_id}>",
            )
        self.monitoring = add_monitoring(self, self.router, strategy, config)
        acknowledge_router_findings(
            self.router, self.feedback, self.stream, waf=deployment.waf.enabled
        )
