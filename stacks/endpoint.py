"""What ``POST /feedback`` and ``POST /ask/stream`` share: an endpoint beside ``/ask``.

Both are a function of their own on the router's REST API, built from the same three inputs (the
router, its strategy and the routes), run with the router's function settings, and taking
requests the way ``/ask`` does: the tiers' API keys, the router's request validator and CORS.
That part is here once; each subclass says what its function is and may do (:meth:`build`).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from llm_router.config import RoutesConfig
from llm_router.pipeline.strategies import Strategy

from stacks.functions import FunctionSpec, StackFunctionSettings, stack_function
from stacks.router_api import RouterApi


class RouterEndpoint(Construct):
    """A POST endpoint on ``router``'s API, served by a function of its own."""

    function: lambda_.Function
    function_role: iam.Role
    method: apigw.Method

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        router: RouterApi,
        strategy: Strategy,
        config: RoutesConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.build(router, strategy, config)

    def build(self, router: RouterApi, strategy: Strategy, config: RoutesConfig) -> None:
        """Create the endpoint's function, grants and method (with :meth:`add_function` and
        :meth:`add_post`)."""
        raise NotImplementedError

    def add_function(
        self,
        router: RouterApi,
        spec: FunctionSpec,
        layers: Sequence[lambda_.ILayerVersion],
        settings: StackFunctionSettings | None = None,
    ) -> None:
        """The endpoint's function and role, with the router's function settings unless
        ``settings`` says otherwise."""
        self.function, self.function_role = stack_function(
            self, spec, settings or router.function_settings, layers
        )

    def add_post(
        self,
        router: RouterApi,
        parent: apigw.IResource,
        path: str,
        integration: apigw.Integration,
        model: apigw.IModel,
    ) -> None:
        """``POST`` on ``parent``/``path``, as ``/ask`` takes it: an API key, the router's
        validator checking the body against ``model``, and the router's CORS."""
        resource = parent.add_resource(path, default_cors_preflight_options=router.cors_options)
        self.method = resource.add_method(
            "POST",
            integration,
            api_key_required=True,
            request_validator=router.validator,
            request_models={"$default": model},
        )
