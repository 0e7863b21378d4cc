"""The CDK app: one router stack per strategy, checked on the synthesized templates.

Most tests read an app synthesized with bundling skipped (seconds). One module fixture
synthesizes with real bundling: layers pip-installed from PyPI (cached in .build/layers) and the
semantic index embedded by the offline Bedrock stand-in.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from llm_router.config import RoutesConfig, parse_routes
from llm_router.strategies import STRATEGIES, Strategy

from layers import REPO_ROOT
from layers.build import LAMBDA_UNZIPPED_LIMIT_BYTES, tree_size
from stacks.app_builder import build_app
from stacks.model_access import ArnScope, ModelAccessError, invoke_model_arns, model_resource_arns

PLACEHOLDERS = ArnScope("${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}")
# CDK puts an explicit DependsOn on a function's role next to the GetAtt; harmless and generated.
CFN_LINT_IGNORED = {"W3005"}


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict[str, Any]]

    def template(self, strategy: Strategy) -> Template:
        return Template.from_json(self.templates[strategy.stack_name])

    def resources(self, strategy: Strategy, kind: str) -> dict[str, Any]:
        resources = self.templates[strategy.stack_name]["Resources"]
        return {k: v for k, v in resources.items() if v["Type"] == kind}

    def one(self, strategy: Strategy, kind: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(strategy, kind)
        assert len(found) == 1, f"{strategy.stack_name}: {len(found)} {kind}"
        return next(iter(found.items()))


def synth(outdir: Path, bundling: bool = False, **context: Any) -> Synth:
    """Synthesize the app as `cdk synth` would: cdk.json's context plus ``context``."""
    settings = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    settings["semanticIndexEmbeddings"] = "stand-in"  # never reach for real Bedrock in tests
    if not bundling:
        settings["aws:cdk:bundling-stacks"] = []
    settings.update(context)
    app = cdk.App(context=settings, outdir=str(outdir))
    stacks = build_app(app)
    assembly = app.synth()
    return Synth(
        outdir, {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in stacks}
    )


@pytest.fixture(scope="module")
def skipped(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("cdk-out"))


@pytest.fixture(scope="module")
def x86(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("cdk-out-x86"), architecture="x86_64")


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The real thing: layers built with pip (cached under .build/layers) and the stand-in index."""
    yield synth(tmp_path_factory.mktemp("cdk-out-bundled"), bundling=True)


def strategies() -> list[Strategy]:
    return list(STRATEGIES.values())


def render(value: Any) -> str:
    """A CloudFormation string value with pseudo-parameter Refs rendered as ${AWS::...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    raise AssertionError(f"unexpected CloudFormation value {value!r}")


def render_url(value: Any) -> str:
    """Like render, but resource Refs (the API and stage ids) become ${LogicalId}."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render_url(p) for p in parts)
    return render(value)


def statements(synth: Synth, strategy: Strategy) -> list[dict[str, Any]]:
    _, policy = synth.one(strategy, "AWS::IAM::Policy")
    return policy["Properties"]["PolicyDocument"]["Statement"]


# -- shape ----------------------------------------------------------------------------------------


def test_one_stack_per_strategy(skipped: Synth) -> None:
    assert sorted(skipped.templates) == sorted(s.stack_name for s in STRATEGIES.values())


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_post_ask_requires_key_and_validates_body(
    skipped: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    template = skipped.template(strategy)
    template.resource_count_is("AWS::ApiGateway::RestApi", 1)
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "ask"})
    validator_id, _ = skipped.one(strategy, "AWS::ApiGateway::RequestValidator")
    model_id, model = skipped.one(strategy, "AWS::ApiGateway::Model")
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "ApiKeyRequired": True,
            "RequestValidatorId": {"Ref": validator_id},
            "RequestModels": {"$default": {"Ref": model_id}},
            "Integration": {"Type": "AWS_PROXY"},
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True}
    )
    schema = model["Properties"]["Schema"]
    assert schema["required"] == ["question"]
    assert schema["properties"]["question"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": routes.api.max_question_chars,
    }
    assert schema["properties"]["category"]["type"] == "string"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_cors_preflight_without_key(skipped: Synth, strategy: Strategy) -> None:
    skipped.template(strategy).has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": "OPTIONS", "ApiKeyRequired": False, "Integration": {"Type": "MOCK"}},
    )


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_usage_plan_throttles_and_caps_the_key(
    skipped: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    template = skipped.template(strategy)
    key_id, key = skipped.one(strategy, "AWS::ApiGateway::ApiKey")
    plan_id, _ = skipped.one(strategy, "AWS::ApiGateway::UsagePlan")
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {
                "RateLimit": routes.api.throttle_rate_limit,
                "BurstLimit": routes.api.throttle_burst_limit,
            },
            "Quota": {"Limit": routes.api.quota_requests_per_day, "Period": "DAY"},
            "ApiStages": [Match.object_like({"ApiId": Match.any_value()})],
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlanKey",
        {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}},
    )
    assert "Value" not in key.get("Properties", {})  # generated by API Gateway, never in code


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_stage_logs_and_traces(skipped: Synth, strategy: Strategy) -> None:
    _, stage = skipped.one(strategy, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "DestinationArn" in props["AccessLogSetting"]
    assert "$context.requestId" in props["AccessLogSetting"]["Format"]
    assert props["MethodSettings"][0]["LoggingLevel"] == "ERROR"
    assert props["MethodSettings"][0]["DataTraceEnabled"] is False


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_function_runtime_sizing_and_environment(
    skipped: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    _, function = skipped.one(strategy, "AWS::Lambda::Function")
    props = function["Properties"]
    minor = re.fullmatch(r"python3\.(\d+)", props["Runtime"])
    assert minor and int(minor.group(1)) >= 12
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "llm_router.handler.lambda_handler"
    assert props["MemorySize"] == routes.lambda_settings.memory_mb
    assert props["Timeout"] == routes.lambda_settings.timeout_seconds
    assert props["TracingConfig"] == {"Mode": "Active"}
    env = props["Environment"]["Variables"]
    assert env["ROUTER_STRATEGY"] == strategy.name
    assert env["ROUTES_PRESET"] == routes.preset
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"} <= set(env)
    if strategy.needs_index:
        assert env["SEMANTIC_INDEX_DIR"] == "/opt/semantic-index"
    else:
        assert "SEMANTIC_INDEX_DIR" not in env


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_x86_64_by_context(x86: Synth, strategy: Strategy) -> None:
    _, function = x86.one(strategy, "AWS::Lambda::Function")
    assert function["Properties"]["Architectures"] == ["x86_64"]
    for layer in x86.resources(strategy, "AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_log_groups_keep_configured_retention(
    skipped: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    groups = skipped.resources(strategy, "AWS::Logs::LogGroup")
    assert len(groups) == 2  # the function's and the API's access log
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == routes.lambda_settings.log_retention_days
    _, function = skipped.one(strategy, "AWS::Lambda::Function")
    assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups


# -- IAM ------------------------------------------------------------------------------------------


SCOPE = ArnScope("aws", "us-east-1", "123456789012")
ROUTER_ARN = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"


def with_router_targets(routes: RoutesConfig) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    raw["prompt_router_targets"] = {
        ROUTER_ARN: ["anthropic.claude-3-haiku-20240307-v1:0", "us.amazon.nova-micro-v1:0"]
    }
    return parse_routes(raw, preset=routes.preset)


def test_foundation_model_maps_to_its_regional_arn(routes: RoutesConfig) -> None:
    assert model_resource_arns("amazon.titan-embed-text-v2:0", routes, SCOPE) == (
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
    )


def test_geographic_profile_maps_to_profile_and_every_destination(routes: RoutesConfig) -> None:
    arns = model_resource_arns("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", routes, SCOPE)
    assert arns[0] == (
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    assert arns[1:] == tuple(
        f"arn:aws:bedrock:{region}::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
        for region in routes.inference_profile_regions["eu"]
    )


def test_global_profile_adds_the_regionless_foundation_model(routes: RoutesConfig) -> None:
    assert model_resource_arns("global.anthropic.claude-haiku-4-5-v1:0", routes, SCOPE) == (
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
        "global.anthropic.claude-haiku-4-5-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-v1:0",
        "arn:aws:bedrock:::foundation-model/anthropic.claude-haiku-4-5-v1:0",
    )


def test_profile_prefix_without_regions_is_an_error(routes: RoutesConfig) -> None:
    with pytest.raises(ModelAccessError, match=r"inference_profile_regions\['jp'\]"):
        model_resource_arns("jp.anthropic.claude-haiku-4-5-v1:0", routes, SCOPE)


def test_arns_map_to_themselves_and_prompt_routers_to_their_targets(
    routes: RoutesConfig,
) -> None:
    app_profile = "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/abc123"
    assert model_resource_arns(app_profile, routes, SCOPE) == (app_profile,)
    with pytest.raises(ModelAccessError, match="prompt_router_targets"):
        model_resource_arns(ROUTER_ARN, routes, SCOPE)
    arns = model_resource_arns(ROUTER_ARN, with_router_targets(routes), SCOPE)
    assert arns == (
        ROUTER_ARN,
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0",
        *(
            f"arn:aws:bedrock:{region}::foundation-model/amazon.nova-micro-v1:0"
            for region in routes.inference_profile_regions["us"]
        ),
    )
    profile_arn = (
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-micro-v1:0"
    )
    assert model_resource_arns(profile_arn, routes, SCOPE)[0] == profile_arn
    assert len(model_resource_arns(profile_arn, routes, SCOPE)) == 1 + len(
        routes.inference_profile_regions["eu"]
    )
    with pytest.raises(ModelAccessError, match="not a Bedrock ARN"):
        model_resource_arns("arn:aws:s3:::bucket", routes, SCOPE)


def test_shared_resources_are_listed_once(routes: RoutesConfig) -> None:
    arns = invoke_model_arns(
        ["us.amazon.nova-micro-v1:0", "us.amazon.nova-micro-v1:0", "amazon.titan-text-express-v1"],
        routes,
        SCOPE,
    )
    assert len(arns) == len(set(arns)) == 1 + len(routes.inference_profile_regions["us"]) + 1


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_bedrock_policy_names_exactly_the_configured_models(
    skipped: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    bedrock = [s for s in statements(skipped, strategy) if s["Action"] == "bedrock:InvokeModel"]
    assert len(bedrock) == 1
    resources = bedrock[0]["Resource"]
    resources = resources if isinstance(resources, list) else [resources]
    rendered = [render(r) for r in resources]
    expected = invoke_model_arns(strategy.invoked_models(routes), routes, PLACEHOLDERS)
    assert sorted(rendered) == sorted(expected)
    assert not any("*" in arn for arn in rendered)
    for model_id in strategy.invoked_models(routes):
        assert any(arn.endswith(f"/{model_id}") for arn in rendered)


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_only_xray_has_a_wildcard_resource(skipped: Synth, strategy: Strategy) -> None:
    for statement in statements(skipped, strategy):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if statement["Resource"] == "*":
            assert all(a.startswith("xray:") for a in actions), statement
    function_roles = [
        r
        for r in skipped.resources(strategy, "AWS::IAM::Role").values()
        if "lambda.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(function_roles) == 1
    assert "ManagedPolicyArns" not in function_roles[0]["Properties"]


def test_preset_context_changes_the_policy(tmp_path: Path) -> None:
    current = synth(tmp_path, preset="current")
    llm = STRATEGIES["llm-assisted"]
    rendered = {
        render(r)
        for s in statements(current, llm)
        if s["Action"] == "bedrock:InvokeModel"
        for r in s["Resource"]
    }
    profile = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert (
        f"arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}:${{AWS::AccountId}}:"
        f"inference-profile/{profile}"
    ) in rendered
    for region in ("us-east-1", "us-east-2", "us-west-2"):
        assert (
            f"arn:${{AWS::Partition}}:bedrock:{region}::foundation-model/"
            "anthropic.claude-haiku-4-5-20251001-v1:0"
        ) in rendered
    _, function = current.one(llm, "AWS::Lambda::Function")
    assert function["Properties"]["Environment"]["Variables"]["ROUTES_PRESET"] == "current"


# -- layers and outputs ---------------------------------------------------------------------------


def layer_refs(synth: Synth, strategy: Strategy) -> dict[str, str]:
    """Logical id -> description of each layer the function uses."""
    _, function = synth.one(strategy, "AWS::Lambda::Function")
    layers = synth.resources(strategy, "AWS::Lambda::LayerVersion")
    return {
        ref["Ref"]: layers[ref["Ref"]]["Properties"]["Description"]
        for ref in function["Properties"]["Layers"]
    }


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_runtime_layer_everywhere_semantic_layer_only_where_needed(
    skipped: Synth, strategy: Strategy
) -> None:
    refs = layer_refs(skipped, strategy)
    assert any("aws-lambda-powertools==" in d for d in refs.values())
    has_semantic = any("faiss-cpu==" in d and "numpy==" in d for d in refs.values())
    assert has_semantic == strategy.needs_index
    _, function = skipped.one(strategy, "AWS::Lambda::Function")
    for layer in skipped.resources(strategy, "AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == [function["Properties"]["Runtime"]]
        assert (
            layer["Properties"]["CompatibleArchitectures"]
            == function["Properties"]["Architectures"]
        )


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_outputs_name_the_api_but_never_the_key_value(skipped: Synth, strategy: Strategy) -> None:
    outputs = skipped.templates[strategy.stack_name]["Outputs"]
    assert set(outputs) == {"ApiUrl", "ApiId", "ApiKeyId"}
    key_id, _ = skipped.one(strategy, "AWS::ApiGateway::ApiKey")
    api_id, _ = skipped.one(strategy, "AWS::ApiGateway::RestApi")
    assert outputs["ApiKeyId"]["Value"] == {"Ref": key_id}
    assert outputs["ApiId"]["Value"] == {"Ref": api_id}
    assert render_url(outputs["ApiUrl"]["Value"]).endswith("/ask")
    # A key's value is never a template attribute: nothing may read it out of the ApiKey.
    text = json.dumps(skipped.templates[strategy.stack_name])
    assert f'"Fn::GetAtt": ["{key_id}"' not in text


# -- linters --------------------------------------------------------------------------------------


def test_cfn_lint_clean(skipped: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    for stack_name in skipped.templates:
        path = skipped.outdir / f"{stack_name}.template.json"
        matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
        problems = [str(m) for m in matches if m.rule.id not in CFN_LINT_IGNORED]
        assert problems == [], stack_name


def test_cdk_nag_reports_no_unacknowledged_error(skipped: Synth) -> None:
    # Synthesis raises on an unacknowledged error; the report must hold no error either.
    report = json.loads((skipped.outdir / "validation-report.json").read_text())
    errors = [
        (v["ruleName"], c["constructPath"])
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        if v["severity"] == "error"
        for c in v["violatingConstructs"]
    ]
    assert errors == []


def test_cdk_nag_is_active(tmp_path: Path) -> None:
    """A wildcard added outside the acknowledged spots fails the synth."""
    from aws_cdk import aws_iam as iam

    settings = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    settings.update({"aws:cdk:bundling-stacks": [], "semanticIndexEmbeddings": "stand-in"})
    app = cdk.App(context=settings, outdir=str(tmp_path))
    stack = build_app(app)[0]
    role = iam.Role(stack, "Extra", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    with pytest.raises(Exception, match="[Vv]alidation"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    failing = {
        (v["ruleName"], c["constructPath"])
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        if v["severity"] == "error"
        for c in v["violatingConstructs"]
    }
    assert failing == {
        ("AwsSolutions-IAM5[Resource::*]", f"{stack.stack_name}/Extra/DefaultPolicy/Resource")
    }


# -- the real synth -------------------------------------------------------------------------------


def staged_asset(synth: Synth, strategy: Strategy, logical_id: str) -> Path:
    """The cloud-assembly directory of a function's or layer's code asset."""
    props = synth.templates[strategy.stack_name]["Resources"][logical_id]["Properties"]
    s3_key = (props.get("Code") or props["Content"])["S3Key"]
    return synth.outdir / f"asset.{s3_key.removesuffix('.zip')}"


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_bundled_assets_hold_code_layers_and_index(
    bundled: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    function_id, function = bundled.one(strategy, "AWS::Lambda::Function")
    code = staged_asset(bundled, strategy, function_id)
    assert (code / "llm_router" / "handler.py").is_file()
    assert json.loads((code / "routes.json").read_text()) == dict(routes.raw)
    assert not list(code.rglob("__pycache__"))
    total = tree_size(code)
    for layer_id in (r["Ref"] for r in function["Properties"]["Layers"]):
        layer = staged_asset(bundled, strategy, layer_id)
        assert (layer / "python").is_dir()
        manifests = list((layer / "layer-manifests").glob("*.json"))
        assert len(manifests) == 1
        manifest = json.loads(manifests[0].read_text())
        assert manifest["lambda_architecture"] == function["Properties"]["Architectures"][0]
        assert (
            f"python{manifest['platform']['python_version']}" == function["Properties"]["Runtime"]
        )
        total += tree_size(layer)
    assert total < LAMBDA_UNZIPPED_LIMIT_BYTES
    index = Path("/opt/semantic-index")
    if strategy.needs_index:
        layer_dirs = [
            staged_asset(bundled, strategy, r["Ref"]) for r in function["Properties"]["Layers"]
        ]
        found = [d / index.name for d in layer_dirs if (d / index.name).is_dir()]
        assert len(found) == 1
        assert {p.name for p in found[0].iterdir()} == {
            "index.faiss",
            "labels.json",
            "manifest.json",
            "embedding-probe.json",
        }
