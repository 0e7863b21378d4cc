"""Which Bedrock resources a router's Lambda may invoke: exactly its configured models.

The Converse API is authorised by ``bedrock:InvokeModel`` on the resource the request names and,
for inference profiles and prompt routers, on every foundation model the request may be sent to:

* a foundation model id (``amazon.titan-embed-text-v2:0``) -> its ARN in the stack's region;
* a geographic inference profile (``us.anthropic...``) -> the profile's ARN in the stack's region
  plus the foundation model's ARN in every region of ``inference_profile_regions[<prefix>]``;
* a global profile (``global.anthropic...``) -> the profile, the foundation model in the stack's
  region and the region-less ``arn:<partition>:bedrock:::foundation-model/<id>``;
* a full ARN -> itself; a system inference profile ARN also gets its foundation models as above,
  and a prompt router ARN the resources of each entry of ``prompt_router_targets[<arn>]``.

No wildcards: a misconfigured or missing entry fails the synth instead of widening the policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct
from llm_router.config import RoutesConfig
from llm_router.pipeline.strategies import Strategy

GLOBAL_PREFIX = "global"
# Geographic prefixes Bedrock uses for system inference profiles; one found in a model id without
# an inference_profile_regions entry is an error rather than being mistaken for a provider name.
KNOWN_GEO_PREFIXES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", GLOBAL_PREFIX})
INVOKE_ACTIONS = ("bedrock:InvokeModel",)  # Converse is authorised by InvokeModel
STREAM_ACTIONS = ("bedrock:InvokeModelWithResponseStream",)  # and ConverseStream by this
_PROMPT_ROUTER_TYPES = ("prompt-router/", "default-prompt-router/")


class ModelAccessError(ValueError):
    """A model id cannot be mapped to exact IAM resources; the message says what to configure."""


@dataclass(frozen=True)
class ArnScope:
    """Partition, region and account of the stack (CloudFormation tokens when env-agnostic)."""

    partition: str
    region: str
    account: str

    @classmethod
    def of(cls, scope: Construct) -> ArnScope:
        stack = Stack.of(scope)
        return cls(stack.partition, stack.region, stack.account)

    def foundation_model(self, model_id: str, region: str | None = None) -> str:
        where = self.region if region is None else region
        return f"arn:{self.partition}:bedrock:{where}::foundation-model/{model_id}"

    def inference_profile(self, profile_id: str) -> str:
        where = f"{self.partition}:bedrock:{self.region}:{self.account}"
        return f"arn:{where}:inference-profile/{profile_id}"


def profile_prefix(model_id: str, config: RoutesConfig) -> str | None:
    """The geographic prefix of an inference profile id, None for a foundation model id."""
    head, dot, rest = model_id.partition(".")
    if not dot or "." not in rest:
        return None  # provider.model: a foundation model
    if head in config.inference_profile_regions or head in KNOWN_GEO_PREFIXES:
        return head
    return None


def model_resource_arns(model_id: str, config: RoutesConfig, scope: ArnScope) -> tuple[str, ...]:
    """Every ARN ``bedrock:InvokeModel`` must allow for a request naming ``model_id``."""
    if model_id.startswith("arn:"):
        return _arn_resources(model_id, config, scope)
    prefix = profile_prefix(model_id, config)
    if prefix is None:
        return (scope.foundation_model(model_id),)
    return (scope.inference_profile(model_id), *_profile_models(model_id, prefix, config, scope))


def invoke_model_arns(
    model_ids: Iterable[str], config: RoutesConfig, scope: ArnScope
) -> tuple[str, ...]:
    """The de-duplicated resources of several models, in configuration order."""
    arns: list[str] = []
    for model_id in model_ids:
        arns.extend(model_resource_arns(model_id, config, scope))
    return tuple(dict.fromkeys(arns))


def invoke_statement(
    scope: Construct, strategy: Strategy, config: RoutesConfig
) -> iam.PolicyStatement:
    """``bedrock:InvokeModel`` on exactly the models ``strategy`` uses with ``config``."""
    return _invoke_models_statement(
        "InvokeConfiguredBedrockModels", strategy.invoked_models(config), scope, config
    )


def decision_invoke_statement(
    scope: Construct, strategy: Strategy, config: RoutesConfig
) -> iam.PolicyStatement:
    """``bedrock:InvokeModel`` on the decision's models only (the streaming function's)."""
    return _invoke_models_statement(
        "InvokeDecisionModels", strategy.decision_models(config), scope, config
    )


def _invoke_models_statement(
    sid: str, model_ids: Iterable[str], scope: Construct, config: RoutesConfig
) -> iam.PolicyStatement:
    """``bedrock:InvokeModel`` on ``model_ids``' resources: the one shape of every invoke grant,
    whichever models (all of a strategy's, or its decision's) it covers."""
    arns = invoke_model_arns(model_ids, config, ArnScope.of(scope))
    return iam.PolicyStatement(sid=sid, actions=list(INVOKE_ACTIONS), resources=list(arns))


def stream_statement(scope: Construct, config: RoutesConfig) -> iam.PolicyStatement:
    """``bedrock:InvokeModelWithResponseStream`` on exactly the answer targets, the models
    ``ConverseStream`` calls (with their profiles' and prompt routers' foundation models)."""
    arns = invoke_model_arns(config.answerer_model_ids(), config, ArnScope.of(scope))
    return iam.PolicyStatement(
        sid="StreamAnswerTargets", actions=list(STREAM_ACTIONS), resources=list(arns)
    )


def _profile_models(
    profile_id: str, prefix: str, config: RoutesConfig, scope: ArnScope
) -> tuple[str, ...]:
    model_id = profile_id[len(prefix) + 1 :]
    if prefix == GLOBAL_PREFIX:
        return (scope.foundation_model(model_id), scope.foundation_model(model_id, region=""))
    regions = config.inference_profile_regions.get(prefix)
    if not regions:
        raise ModelAccessError(
            f"{profile_id} is a {prefix!r} cross-region inference profile, but routes.json has no "
            f"inference_profile_regions[{prefix!r}]: list the regions it routes to so the IAM "
            "policy can name the foundation model in each"
        )
    return tuple(scope.foundation_model(model_id, region=r) for r in regions)


def _arn_resources(arn: str, config: RoutesConfig, scope: ArnScope) -> tuple[str, ...]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "bedrock":
        raise ModelAccessError(f"{arn} is not a Bedrock ARN")
    resource = parts[5]
    if resource.startswith(_PROMPT_ROUTER_TYPES):
        targets = config.prompt_router_targets.get(arn)
        if not targets:
            raise ModelAccessError(
                f"{arn} is a prompt router; list the models it routes to in "
                f"prompt_router_targets[{arn!r}] so the IAM policy can name them"
            )
        return (arn, *invoke_model_arns(targets, config, scope))
    if resource.startswith("inference-profile/"):
        profile_id = resource.split("/", 1)[1]
        prefix = profile_prefix(profile_id, config)
        if prefix is not None:
            profile_scope = ArnScope(parts[1], parts[3], scope.account)
            return (arn, *_profile_models(profile_id, prefix, config, profile_scope))
    return (arn,)
