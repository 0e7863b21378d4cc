"""The routers' Lambda layers: Powertools and the trimmed AWS SDK for every router, faiss + numpy +
index for semantic.

Each layer's compatible runtime and architecture are the :class:`LambdaTarget`'s, the same
objects the pip platform is derived from, so the layer cannot disagree with the function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Annotations, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from llm_router.config import RoutesConfig

from layers import REPO_ROOT
from layers.aws_sdk import SdkDataContent
from layers.build import BuiltLayer, LayerBuilder, LayerSpec, link_tree, read_pins
from layers.index_content import LAMBDA_INDEX_DIR, SemanticIndexContent
from stacks.bundling import local_asset
from stacks.lambda_target import LambdaTarget

RUNTIME_REQUIREMENTS = REPO_ROOT / "layers" / "runtime" / "requirements.txt"
SEMANTIC_REQUIREMENTS = REPO_ROOT / "layers" / "semantic" / "requirements.txt"
SEMANTIC_INDEX_DIR_ENV = "SEMANTIC_INDEX_DIR"


@dataclass(frozen=True)
class RouterLayer:
    """A layer plus what the function needs to use it."""

    name: str
    version: lambda_.ILayerVersion
    environment: Mapping[str, str] = field(default_factory=dict)
    unzipped_bytes: int | None = None  # None when this synth skips bundling the stack


def build_layer(
    scope: Construct,
    construct_id: str,
    spec: LayerSpec,
    target: LambdaTarget,
    builder: LayerBuilder,
    description: str,
) -> tuple[lambda_.LayerVersion, BuiltLayer | None]:
    """A LayerVersion whose content is ``spec`` built for ``target`` (built now if bundling)."""
    platform = target.platform
    built = builder.build(spec, platform) if Stack.of(scope).bundling_required else None

    def fill(out_dir: Path) -> None:
        link_tree((built or builder.build(spec, platform)).path, out_dir)

    layer = lambda_.LayerVersion(
        scope,
        construct_id,
        code=local_asset(spec.requirements.parent, builder.key(spec, platform), fill),
        compatible_runtimes=[target.runtime],
        compatible_architectures=[target.architecture],
        description=f"{description} ({target}; {', '.join(read_pins(spec.requirements))})"[:256],
    )
    return layer, built


def runtime_layer_spec() -> LayerSpec:
    """Powertools and botocore, botocore's data cut to the functions' operations."""
    return LayerSpec("runtime", RUNTIME_REQUIREMENTS, (SdkDataContent(),))


def runtime_layer(scope: Construct, target: LambdaTarget, builder: LayerBuilder) -> RouterLayer:
    spec = runtime_layer_spec()
    layer, built = build_layer(scope, "RuntimeLayer", spec, target, builder, "Router runtime")
    return RouterLayer(spec.name, layer, unzipped_bytes=built.unzipped_bytes if built else None)


def semantic_layer(
    scope: Construct,
    target: LambdaTarget,
    builder: LayerBuilder,
    config: RoutesConfig,
    embeddings: str,
    region: str | None = None,
) -> RouterLayer:
    """faiss + numpy and the reference index built with ``embeddings`` (auto|bedrock|stand-in)."""
    index = SemanticIndexContent.resolve(config, embeddings, region)
    spec = LayerSpec("semantic", SEMANTIC_REQUIREMENTS, (index,))
    layer, built = build_layer(
        scope, "SemanticLayer", spec, target, builder, "Semantic router index and faiss"
    )
    if not index.is_deployable:
        Annotations.of(scope).add_warning_v2(
            "router:semantic-index-stand-in",
            "The semantic index was embedded by the offline Bedrock stand-in: fine for synth and "
            "tests, but the deployed semantic router answers 503 until the stack is synthesized "
            "with AWS credentials (semanticIndexEmbeddings=auto|bedrock).",
        )
    return RouterLayer(
        spec.name,
        layer,
        environment={SEMANTIC_INDEX_DIR_ENV: LAMBDA_INDEX_DIR},
        unzipped_bytes=built.unzipped_bytes if built else None,
    )
