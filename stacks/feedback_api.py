"""``POST /feedback`` on a router's API: callers say whether an answer helped or went astray.

A second, small function (``llm_router.edge.feedback.lambda_handler``) behind the same API keys and
usage plans as ``/ask``, with the router's code asset and only the runtime layer (no index). It
may only ``PutItem`` into its own table (it records feedback and can read nothing back) and read
the router's feedback-token secret (``GetSecretValue``: it verifies each feedback's token). API
Gateway validates the body (:func:`stacks.request_schemas.feedback_body_schema`) first.
"""

from __future__ import annotations

import dataclasses

from aws_cdk import aws_apigateway as apigw
from llm_router.config import RoutesConfig
from llm_router.edge import FEEDBACK_ENTRY_POINT, FEEDBACK_RESOURCE
from llm_router.edge.feedback import FEEDBACK_TABLE_ENV
from llm_router.governance.provenance import FEEDBACK_SECRET_ENV
from llm_router.pipeline.strategies import Strategy

from stacks.endpoint import RouterEndpoint
from stacks.functions import FunctionSpec, base_environment
from stacks.request_schemas import feedback_body_schema
from stacks.router_api import RouterApi, cdk_json_schema
from stacks.secrets import grant_secret_value
from stacks.tables import feedback_table

FEEDBACK_HANDLER = FEEDBACK_ENTRY_POINT
FEEDBACK_PATH = FEEDBACK_RESOURCE.removeprefix("/")
FEEDBACK_ACTIONS = ("dynamodb:PutItem",)
# One validated PutItem: a fraction of the router's size and time is plenty.
FEEDBACK_MEMORY_MB = 256
FEEDBACK_TIMEOUT_SECONDS = 10


class FeedbackEndpoint(RouterEndpoint):
    def build(self, router: RouterApi, strategy: Strategy, config: RoutesConfig) -> None:
        self.table = feedback_table(self)
        environment = base_environment(strategy, config, "feedback")
        environment[FEEDBACK_TABLE_ENV] = self.table.table_name
        spec = FunctionSpec(
            handler=FEEDBACK_HANDLER,
            description=f"Feedback on the {strategy.name} router's answers",
            role_description=f"{strategy.name} feedback: its log group, X-Ray, PutItem and the "
            "token secret only",
            memory_mb=FEEDBACK_MEMORY_MB,
            timeout_seconds=FEEDBACK_TIMEOUT_SECONDS,
            environment=environment,
        )
        # No reservation: it calls no model, so it needs no cap on spend, and reserving for it
        # too would take a third of what a default account can reserve (stacks.concurrency).
        self.add_function(
            router, spec, [router.runtime_layer.version],
            dataclasses.replace(router.function_settings, reserved_concurrency=None),
        )
        self.table.grant(self.function_role, *FEEDBACK_ACTIONS)
        grant_secret_value(router.feedback_secret, self.function_role)
        self.function.add_environment(FEEDBACK_SECRET_ENV, router.feedback_secret.secret_arn)
        model = router.api.add_model(
            "FeedbackRequestModel",
            content_type="application/json",
            description=f"Body of POST {FEEDBACK_RESOURCE}",
            schema=cdk_json_schema(feedback_body_schema(config)),
        )
        self.add_post(
            router, router.api.root, FEEDBACK_PATH, apigw.LambdaIntegration(self.function), model
        )
