"""Turns the CDK context and routes.json into the app's stacks; app.py stays a thin entry point.

Context (``cdk synth -c key=value``):

* ``routesFile``: the routes file to build from; default ``ROUTES_FILE``, else the repository's
  ``routes.json``: the same file, looked up the same way, as every script's ``--routes``. It is
  also what the function ships (as ``routes.compiled.json``) and what the index is built from.
* ``architecture``: ``arm64`` | ``x86_64``; default ``lambda.architecture`` of routes.json.
* ``preset``: the routes.json model preset; default ``ROUTES_PRESET`` or ``active_preset``.
* ``semanticIndexEmbeddings``: ``auto`` | ``bedrock`` | ``stand-in``; how the semantic index
  embeds its reference prompts (``auto``: Bedrock when AWS credentials are present).
* ``waf``: ``true`` | ``false``; an AWS WAF web ACL on each API stage, overriding routes.json
  ``deployment.waf.enabled`` (see stacks/deployment.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aws_cdk import App, Validations
from build_index import SOURCES, IndexBuildError
from cdk_nag import AwsSolutionsChecks
from constructs import Node
from llm_router.config import ConfigError, load_routes
from llm_router.pipeline.strategies import STRATEGIES
from routes_file import use_routes_file

from layers.build import LayerBuilder, LayerBuildError
from stacks.deployment import context_flag, parse_deployment
from stacks.lambda_target import ARCHITECTURES, LambdaTarget, TargetError
from stacks.model_access import ModelAccessError
from stacks.router_api import RouterInputs
from stacks.router_stack import RouterStack

CONTEXT_ROUTES_FILE = "routesFile"
CONTEXT_ARCHITECTURE = "architecture"
CONTEXT_PRESET = "preset"
CONTEXT_EMBEDDINGS = "semanticIndexEmbeddings"
CONTEXT_WAF = "waf"

# Errors whose message is the whole story: app.py prints them instead of a traceback.
USER_ERRORS = (
    ConfigError,
    TargetError,
    LayerBuildError,
    IndexBuildError,
    ModelAccessError,
)


@dataclass(frozen=True)
class AppSettings:
    architecture: str | None = None  # None: routes.json
    preset: str | None = None  # None: ROUTES_PRESET or active_preset
    embeddings: str = "auto"
    waf: bool | None = None  # None: routes.json deployment.waf.enabled
    routes_file: str | None = None  # None: ROUTES_FILE or the repository's routes.json

    @classmethod
    def from_context(cls, node: Node) -> AppSettings:
        architecture = node.try_get_context(CONTEXT_ARCHITECTURE)
        if architecture is not None and architecture not in ARCHITECTURES:
            raise TargetError(
                f"context {CONTEXT_ARCHITECTURE} must be one of {', '.join(ARCHITECTURES)}, "
                f"got {architecture!r}"
            )
        embeddings = node.try_get_context(CONTEXT_EMBEDDINGS) or "auto"
        if embeddings not in SOURCES:
            raise ConfigError(
                f"context {CONTEXT_EMBEDDINGS} must be one of {', '.join(SOURCES)}, "
                f"got {embeddings!r}"
            )
        return cls(
            architecture,
            node.try_get_context(CONTEXT_PRESET),
            embeddings,
            context_flag(node.try_get_context(CONTEXT_WAF), CONTEXT_WAF),
            node.try_get_context(CONTEXT_ROUTES_FILE),
        )


def build_app(
    app: App, settings: AppSettings | None = None, layer_builder: LayerBuilder | None = None
) -> list[RouterStack]:
    """One stack per entry of STRATEGIES, checked by cdk-nag's AwsSolutions pack."""
    settings = settings or AppSettings.from_context(app.node)
    use_routes_file(settings.routes_file)  # ROUTES_FILE: the index build reads the same file
    config = load_routes(preset=settings.preset)
    lam = config.lambda_settings
    target = LambdaTarget.of(lam.runtime, settings.architecture or lam.architecture)
    builder = layer_builder or LayerBuilder()
    deployment = parse_deployment(config.raw, waf_override=settings.waf)
    stacks = [
        RouterStack(
            app,
            inputs=RouterInputs(strategy, config, target, builder, deployment),
            index_embeddings=settings.embeddings,
            # The CLI sets this from the deploying profile: embed where the stack deploys.
            index_region=os.environ.get("CDK_DEFAULT_REGION"),
        )
        for strategy in STRATEGIES.values()
    ]
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks
