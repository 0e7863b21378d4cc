"""Stacks for issues 7, 8, 10 and 11: tiers, deadlines, IAM exactness, WAF, concurrency, CORS,
the budget and feedback tables and ``POST /feedback``, on synthesized templates.

Two apps are read: the shipped routes.json (shared with test_stacks.py, synthesized once per
session) and a variant written to tmp_path with two tiers, a shorter integration timeout, no
budget, no reserved concurrency, one CORS origin and the WAF switched on by context.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import active_routes_file
from llm_router.config import ConfigError, RoutesConfig, load_routes, parse_routes
from llm_router.config.settings import TIER_KEYS_ENV
from llm_router.decision.conversation import parse_conversation
from llm_router.pipeline.strategies import STRATEGIES, Strategy
from stack_synth import (
    Synth,
    bedrock_resources,
    render,
    routes_file,
    shared_synth,
    synth,
)

from stacks.api_keys import tier_suffixes
from stacks.concurrency import FROM_USAGE_PLAN, reserved_concurrency
from stacks.deployment import context_flag, parse_deployment
from stacks.tables import budget_enabled

LLM = STRATEGIES["llm-assisted"]
PRO_MATH = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
PRO_MATH_FALLBACK = "anthropic.claude-3-5-sonnet-20240620-v1:0"
ORIGIN = "https://tutor.example.com"
PARTITION_REGION = "arn:${AWS::Partition}:bedrock:${AWS::Region}"


def strategies() -> list[Strategy]:
    return list(STRATEGIES.values())


def variant_routes() -> dict[str, Any]:
    raw = json.loads(active_routes_file().read_text(encoding="utf-8"))
    raw["api"]["integration_timeout_seconds"] = 25
    raw["tiers"] = {
        "default": "basic",
        "definitions": {
            "basic": {
                "throttle_rate_limit": 2,
                "throttle_burst_limit": 4,
                "quota_requests_per_day": 100,
            },
            "pro": {
                "throttle_rate_limit": 50,
                "throttle_burst_limit": 100,
                "quota_requests_per_day": 50000,
                "answerers": {
                    "math": {
                        "pool": [{"model_id": PRO_MATH, "weight": 1}],
                        "fallbacks": [PRO_MATH_FALLBACK],
                    }
                },
            },
        },
    }
    raw["budget"] = {"daily_usd": None}
    raw["cache"]["customer_managed_key"] = True
    raw["deployment"] = {
        "reserved_concurrency": None,
        "waf": {"enabled": False, "rate_limit_per_5_minutes": 500},
        "cors_allowed_origins": [ORIGIN],
    }
    return raw


@pytest.fixture(scope="module")
def default() -> Synth:
    return shared_synth()


@pytest.fixture(scope="module")
def variant_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routes") / "routes.json"
    path.write_text(json.dumps(variant_routes(), indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def variant_config(variant_file: Path) -> RoutesConfig:
    return load_routes(variant_file)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory, variant_file: Path) -> Synth:
    """The variant app, WAF on by context (routes.json says off): the context wins."""
    with routes_file(variant_file):
        return synth(tmp_path_factory.mktemp("cdk-out-variant"), waf="true")


# -- deadline -------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_integration_timeout_and_derived_function_timeout(
    default: Synth, variant: Synth, strategy: Strategy, variant_config: RoutesConfig
) -> None:
    shipped = load_routes()
    for synthesized, config, integration_ms, function_s in (
        (default, shipped, 29_000, 30),
        (variant, variant_config, 25_000, 26),
    ):
        ask = synthesized.method(strategy, "ask", "POST")
        assert ask["Integration"]["TimeoutInMillis"] == integration_ms
        _, function = synthesized.function(strategy)
        # budget (integration timeout less the response margin) plus the function's margin
        assert function["Properties"]["Timeout"] == function_s
        assert function_s == config.lambda_settings.timeout_seconds
        assert function_s * 1000 > integration_ms  # the function outlives the caller's wait ...
        assert config.request_budget_seconds * 1000 < integration_ms  # ... but answers before


# -- tiers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_one_usage_plan_and_key_per_tier(
    variant: Synth, strategy: Strategy, variant_config: RoutesConfig
) -> None:
    keys = variant.resources(strategy, "AWS::ApiGateway::ApiKey")
    plans = variant.resources(strategy, "AWS::ApiGateway::UsagePlan")
    links = variant.resources(strategy, "AWS::ApiGateway::UsagePlanKey").values()
    assert len(keys) == len(plans) == len(links) == 2
    outputs = variant.templates[strategy.stack_name]["Outputs"]
    assert {"ApiKeyId", "ApiKeyIdPro"} <= set(outputs)
    key_of_tier = {
        "basic": outputs["ApiKeyId"]["Value"]["Ref"],
        "pro": outputs["ApiKeyIdPro"]["Value"]["Ref"],
    }
    assert set(key_of_tier.values()) == set(keys)
    for tier_name, key_id in key_of_tier.items():
        tier = variant_config.tiers[tier_name]
        link = next(
            lk["Properties"] for lk in links if lk["Properties"]["KeyId"] == {"Ref": key_id}
        )
        plan = plans[link["UsagePlanId"]["Ref"]]["Properties"]
        assert plan["Throttle"] == {
            "RateLimit": tier.throttle_rate_limit,
            "BurstLimit": tier.throttle_burst_limit,
        }
        assert plan["Quota"] == {"Limit": tier.quota_requests_per_day, "Period": "DAY"}
        assert plan["ApiStages"][0]["ApiId"] == {
            "Ref": variant.one(strategy, "AWS::ApiGateway::RestApi")[0]
        }
        assert "StageKeys" not in keys[key_id]["Properties"]  # the plan ties key and stage
    # The stage lets the highest tier's rate through; the plans limit each key.
    _, stage = variant.one(strategy, "AWS::ApiGateway::Stage")
    assert stage["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] == 50


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_function_maps_key_ids_to_tiers(default: Synth, variant: Synth, strategy: Strategy) -> None:
    for synthesized, outputs_by_tier in (
        (default, {"standard": "ApiKeyId"}),
        (variant, {"basic": "ApiKeyId", "pro": "ApiKeyIdPro"}),
    ):
        _, function = synthesized.function(strategy)
        value = function["Properties"]["Environment"]["Variables"][TIER_KEYS_ENV]
        outputs = synthesized.templates[strategy.stack_name]["Outputs"]
        # Rendered with ${LogicalId} for each key's Ref, the JSON must parse to tier -> key.
        mapping = json.loads(render(value))
        assert mapping == {
            tier: "${" + outputs[name]["Value"]["Ref"] + "}"
            for tier, name in outputs_by_tier.items()
        }


def test_tier_output_names_must_not_clash(routes: RoutesConfig) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    raw["tiers"] = {"default": "a", "definitions": {"a": {}, "free-trial": {}, "free_trial": {}}}
    with pytest.raises(ConfigError, match="'free-trial' and 'free_trial'"):
        tier_suffixes(parse_routes(raw, preset=routes.preset))
    raw["tiers"]["definitions"] = {"a": {}, "free-trial": {}, "pro": {}}
    assert tier_suffixes(parse_routes(raw, preset=routes.preset)) == {
        "a": "",
        "free-trial": "FreeTrial",
        "pro": "Pro",
    }


# -- IAM: every target and fallback, no wildcard ---------------------------------------------------


def expected_arns(raw: Mapping[str, Any], preset: str, strategy: Strategy) -> set[str]:
    """The Bedrock resources a router needs, derived from the JSON here, not by model_access."""
    models = raw["presets"][preset]
    ids: list[str] = []
    if strategy.uses_classifier_llm:
        ids.append(models["classifier_model_id"])
    if strategy.uses_embeddings:
        ids.append(models["embedding_model_id"])
    plans = list(models["answerers"].values())
    for tier in raw.get("tiers", {}).get("definitions", {}).values():
        plans.extend(tier.get("answerers", {}).values())
    for plan in plans:
        if isinstance(plan, str):
            ids.append(plan)
        else:
            ids.extend(p["model_id"] for p in plan["pool"])
            ids.extend(plan.get("fallbacks", []))
    arns: set[str] = set()
    for model_id in ids:
        geo, _, foundation = model_id.partition(".")
        if geo in raw["inference_profile_regions"]:
            arns.add(f"{PARTITION_REGION}:${{AWS::AccountId}}:inference-profile/{model_id}")
            arns.update(
                f"arn:${{AWS::Partition}}:bedrock:{region}::foundation-model/{foundation}"
                for region in raw["inference_profile_regions"][geo]
            )
        else:
            arns.add(f"{PARTITION_REGION}::foundation-model/{model_id}")
    return arns


def effective_preset(raw: dict[str, Any]) -> str:
    """The preset a synth without -c preset uses: ROUTES_PRESET (conftest pins it), else the
    file's active_preset."""
    return os.environ.get("ROUTES_PRESET") or raw["active_preset"]


@pytest.mark.parametrize("preset", ["blog-2024", "current"])
@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_policy_has_every_target_and_fallback_exactly(preset: str, strategy: Strategy) -> None:
    raw = json.loads(active_routes_file().read_text(encoding="utf-8"))
    synthesized = shared_synth() if preset == effective_preset(raw) else shared_synth(preset=preset)
    rendered = bedrock_resources(synthesized, strategy)
    assert len(rendered) == len(set(rendered))
    assert set(rendered) == expected_arns(raw, preset, strategy)
    assert not any("*" in arn for arn in rendered)
    answers = raw["presets"][preset]["answerers"].values()
    fallbacks = [f for plan in answers if isinstance(plan, dict) for f in plan["fallbacks"]]
    assert fallbacks and any(f.startswith("us.") for f in fallbacks)
    for model_id in fallbacks:
        assert any(arn.endswith(f"/{model_id}") for arn in rendered), model_id


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_policy_covers_tier_overrides(variant: Synth, strategy: Strategy) -> None:
    rendered = bedrock_resources(variant, strategy)
    raw = variant_routes()
    assert set(rendered) == expected_arns(raw, effective_preset(raw), strategy)
    assert f"{PARTITION_REGION}:${{AWS::AccountId}}:inference-profile/{PRO_MATH}" in rendered


# -- hardening options ----------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_reserved_concurrency_caps_every_model_caller_unless_null(
    default: Synth, variant: Synth, strategy: Strategy
) -> None:
    routes = load_routes()
    settings = parse_deployment(routes.raw)
    cap = reserved_concurrency(routes, settings.reserved_concurrency, settings.p99_answer_seconds)
    assert cap == 120  # burst 20 + 10 requests/s x p99 10 s (routes.json api.*, deployment.*)
    _, feedback = default.feedback_function(strategy)
    for function in default.resources(strategy, "AWS::Lambda::Function").values():
        if function is feedback:  # calls no model: no spend to cap (stacks.concurrency)
            assert "ReservedConcurrentExecutions" not in function["Properties"]
        else:
            assert function["Properties"]["ReservedConcurrentExecutions"] == cap
    for function in variant.resources(strategy, "AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in function["Properties"]


def cors_origins(synthesized: Synth, strategy: Strategy, path: str) -> str:
    options = synthesized.method(strategy, path, "OPTIONS")
    params = options["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
    return params["method.response.header.Access-Control-Allow-Origin"]


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_cors_origins_come_from_config(default: Synth, variant: Synth, strategy: Strategy) -> None:
    for synthesized, origin in ((default, "*"), (variant, ORIGIN)):
        for path in ("ask", "feedback"):
            assert cors_origins(synthesized, strategy, path) == f"'{origin}'"
        for response in synthesized.resources(
            strategy, "AWS::ApiGateway::GatewayResponse"
        ).values():
            header = response["Properties"]["ResponseParameters"]
            assert header["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{origin}'"
            assert set(header) <= {  # THROTTLED adds Retry-After (tests/test_concurrency.py)
                "gatewayresponse.header.Access-Control-Allow-Origin",
                "gatewayresponse.header.Retry-After",
            }


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_waf_off_by_default_and_acknowledged(default: Synth, strategy: Strategy) -> None:
    assert default.resources(strategy, "AWS::WAFv2::WebACL") == {}
    _, stage = default.one(strategy, "AWS::ApiGateway::Stage")
    acknowledged = default.acknowledged(strategy)
    stage_path = next(p for p in acknowledged if p.endswith("/Router/Api/DeploymentStage.prod"))
    assert "AwsSolutions-APIG3" in acknowledged[stage_path]
    assert default.nag_errors() == []


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_waf_on_protects_the_stage_and_resolves_the_finding(
    variant: Synth, strategy: Strategy
) -> None:
    acl_id, acl = variant.one(strategy, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    assert props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in props["Rules"]}
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert (common["VendorName"], common["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    rate = rules["RatePerClientIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == 500
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    _, association = variant.one(strategy, "AWS::WAFv2::WebACLAssociation")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    stage_id, _ = variant.one(strategy, "AWS::ApiGateway::Stage")
    assert {"Ref": stage_id} in association["Properties"]["ResourceArn"]["Fn::Join"][1]
    # cdk-nag passed the synth without an APIG3 acknowledgment: the finding is resolved.
    assert not any("AwsSolutions-APIG3" in r for r in variant.acknowledged(strategy).values())
    assert variant.nag_errors() == []


def test_cfn_lint_clean_with_waf_tiers_and_no_budget(variant: Synth) -> None:
    assert variant.lint(LLM.stack_name) == []


# -- budget table ---------------------------------------------------------------------------------


def table_with_key(synthesized: Synth, strategy: Strategy, key: str) -> tuple[str, dict[str, Any]]:
    tables = {
        k: v
        for k, v in synthesized.resources(strategy, "AWS::DynamoDB::Table").items()
        if v["Properties"]["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    }
    assert len(tables) == 1
    return next(iter(tables.items()))


def assert_expiring_on_demand(table: dict[str, Any], key: str) -> None:
    props = table["Properties"]
    assert props["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["DeletionPolicy"] == "Delete"


def dynamodb_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if any(
            a.startswith("dynamodb:")
            for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        )
    ]


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_budget_table_with_ttl_and_scoped_iam(default: Synth, strategy: Strategy) -> None:
    table_id, table = table_with_key(default, strategy, "pk")
    assert_expiring_on_demand(table, "pk")
    _, function = default.function(strategy)
    assert function["Properties"]["Environment"]["Variables"]["BUDGET_TABLE_NAME"] == {
        "Ref": table_id
    }
    on_table = [
        s for s in dynamodb_statements(default.statements(strategy))
        if s["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    ]
    assert on_table == [
        {
            # reserve and settle; read the day once per instance at init; nothing else
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
        }
    ]


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_conversation_table_with_ttl_and_getitem_putitem_only(
    default: Synth, strategy: Strategy
) -> None:
    """The server-kept conversations: expiring like the other tables, and the function may
    only read an item and (conditionally) write one: what conversation_store calls."""
    table_id, table = table_with_key(default, strategy, "conversation_id")
    assert_expiring_on_demand(table, "conversation_id")
    _, function = default.function(strategy)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["CONVERSATION_TABLE_NAME"] == {"Ref": table_id}
    on_table = [
        s
        for s in dynamodb_statements(default.statements(strategy))
        if s["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    ]
    assert on_table == [
        {
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
        }
    ]


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_no_budget_no_table(variant: Synth, strategy: Strategy) -> None:
    tables = variant.resources(strategy, "AWS::DynamoDB::Table")
    assert len(tables) == 3  # feedback, the response cache and conversations
    _, function = variant.function(strategy)
    assert "BUDGET_TABLE_NAME" not in function["Properties"]["Environment"]["Variables"]
    cache_id, _ = cache_table_of(variant, strategy)
    conversations, _ = table_with_key(variant, strategy, "conversation_id")
    assert all(
        s["Resource"] in ({"Fn::GetAtt": [cache_id, "Arn"]}, {"Fn::GetAtt": [conversations, "Arn"]})
        for s in dynamodb_statements(variant.statements(strategy))
    )


# -- response cache -------------------------------------------------------------------------------


def cache_table_of(synthesized: Synth, strategy: Strategy) -> tuple[str, dict[str, Any]]:
    tables = {
        k: v
        for k, v in synthesized.resources(strategy, "AWS::DynamoDB::Table").items()
        if v["Properties"]["KeySchema"]
        == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    }
    assert len(tables) == 1
    return next(iter(tables.items()))


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_cache_table_with_ttl_aws_owned_encryption_and_exactly_the_calls_it_makes(
    default: Synth, strategy: Strategy
) -> None:
    from llm_router.pipeline.cache.store import ACTIONS

    table_id, table = cache_table_of(default, strategy)
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # SSEEnabled false: encrypted at rest with the AWS-owned key (DynamoDB's default, always on).
    assert props["SSESpecification"] == {"SSEEnabled": False}
    assert "PointInTimeRecoverySpecification" not in props  # a cache: see stacks/tables.py
    _, function = default.function(strategy)
    assert function["Properties"]["Environment"]["Variables"]["CACHE_TABLE_NAME"] == {
        "Ref": table_id
    }
    on_table = [
        s for s in dynamodb_statements(default.statements(strategy))
        if s["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    ]
    assert on_table == [
        {"Action": sorted(ACTIONS), "Effect": "Allow",
         "Resource": {"Fn::GetAtt": [table_id, "Arn"]}}
    ]
    assert sorted(ACTIONS) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    assert "AwsSolutions-DDB3" in next(
        v for k, v in default.acknowledged(strategy).items() if k.endswith("/Router/CacheTable")
    )


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_cache_table_with_a_customer_managed_key_when_configured(
    variant: Synth, strategy: Strategy
) -> None:
    _, table = cache_table_of(variant, strategy)
    key_id, key = variant.one(strategy, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert table["Properties"]["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    kms = [
        s for s in variant.statements(strategy)
        if s["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    ]
    assert len(kms) == 1
    assert sorted(kms[0]["Action"]) == [
        "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"
    ]


def test_a_tier_budget_alone_needs_the_table(routes: RoutesConfig) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    raw["budget"] = {"daily_usd": None}
    assert not budget_enabled(parse_routes(raw, preset=routes.preset))
    raw["tiers"] = {"default": "s", "definitions": {"s": {}, "pro": {"daily_budget_usd": 5}}}
    assert budget_enabled(parse_routes(raw, preset=routes.preset))
    del raw["budget"]  # the budget guard's default applies: on
    raw.pop("tiers")
    assert budget_enabled(parse_routes(raw, preset=routes.preset))


# -- feedback -------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_one_token_secret_read_by_exactly_its_two_functions(
    default: Synth, strategy: Strategy
) -> None:
    secrets = default.resources(strategy, "AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    secret_id, secret = next(iter(secrets.items()))
    assert secret["Properties"]["GenerateSecretString"]["ExcludePunctuation"] is True
    for handler in (None, "llm_router.edge.feedback.lambda_handler"):
        args = (strategy,) if handler is None else (strategy, handler)
        _, function = default.function(*args)
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["FEEDBACK_SECRET_ARN"] == {"Ref": secret_id}
        reads = [
            st for st in default.statements(*args)
            if "secretsmanager" in json.dumps(st["Action"]) or "kms:" in json.dumps(st["Action"])
        ]
        assert reads == [
            {"Action": "secretsmanager:GetSecretValue", "Effect": "Allow",
             "Resource": {"Ref": secret_id}}
        ]



@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_feedback_function_table_and_putitem_only(default: Synth, strategy: Strategy) -> None:
    table_id, table = table_with_key(default, strategy, "request_id")
    assert_expiring_on_demand(table, "request_id")
    function_id, function = default.feedback_function(strategy)
    props = function["Properties"]
    _, router = default.function(strategy)
    assert props["Code"] == router["Properties"]["Code"]  # the same code asset
    runtime_layer = next(
        ref["Ref"]
        for ref in router["Properties"]["Layers"]
        if "aws-lambda-powertools=="
        in default.resources(strategy, "AWS::Lambda::LayerVersion")[ref["Ref"]]["Properties"][
            "Description"
        ]
    )
    assert props["Layers"] == [{"Ref": runtime_layer}]
    assert props["Environment"]["Variables"]["FEEDBACK_TABLE_NAME"] == {"Ref": table_id}
    statements = default.statements(strategy, props["Handler"])
    assert dynamodb_statements(statements) == [
        {
            "Action": "dynamodb:PutItem",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
        }
    ]
    assert not any(s["Action"] == "bedrock:InvokeModel" for s in statements)
    # The router may not touch the feedback table.
    assert all(
        s.get("Resource") != {"Fn::GetAtt": [table_id, "Arn"]} for s in default.statements(strategy)
    )
    method = default.method(strategy, "feedback", "POST")
    assert method["ApiKeyRequired"] is True
    assert function_id in json.dumps(method["Integration"]["Uri"])
    validator_id, _ = default.one(strategy, "AWS::ApiGateway::RequestValidator")
    assert method["RequestValidatorId"] == {"Ref": validator_id}


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_feedback_body_schema(default: Synth, strategy: Strategy, routes: RoutesConfig) -> None:
    method = default.method(strategy, "feedback", "POST")
    model = default.resources(strategy, "AWS::ApiGateway::Model")[
        method["RequestModels"]["$default"]["Ref"]
    ]
    schema = model["Properties"]["Schema"]
    assert schema["required"] == ["feedback_token"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert set(props) == {
        "feedback_token",
        "request_id",
        "helpful",
        "correct_category",
        "question",
        "comment",
        "answerer_LLM",
        "question_classification",
    }
    assert props["helpful"] == {"type": "boolean"}
    assert props["correct_category"]["enum"] == [*routes.category_names, "out_of_scope"]
    assert props["question_classification"] == props["correct_category"]
    for name in ("feedback_token", "request_id", "question", "comment", "answerer_LLM"):
        assert props[name]["type"] == "string" and props[name]["maxLength"] > 0
    assert props["question"]["maxLength"] == routes.api.max_question_chars


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_ask_body_accepts_a_bounded_history(
    default: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    method = default.method(strategy, "ask", "POST")
    model = default.resources(strategy, "AWS::ApiGateway::Model")[
        method["RequestModels"]["$default"]["Ref"]
    ]
    schema = model["Properties"]["Schema"]
    assert schema["required"] == ["question"]  # history is optional
    history = schema["properties"]["history"]
    limits = parse_conversation(routes.raw)  # the function's own limits
    assert history["type"] == "array"
    assert history["maxItems"] == limits.max_turns
    turn = history["items"]
    assert turn["required"] == ["role", "content"]
    assert turn["additionalProperties"] is False
    assert turn["properties"]["role"] == {"type": "string", "enum": ["user", "assistant"]}
    assert turn["properties"]["content"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.max_total_chars,
    }


# -- settings parsing -----------------------------------------------------------------------------


def test_deployment_defaults_and_context_override() -> None:
    settings = parse_deployment({})
    assert settings.reserved_concurrency == FROM_USAGE_PLAN
    assert settings.p99_answer_seconds == 10.0
    assert settings.waf.enabled is False
    assert settings.cors_allowed_origins == ("*",)
    on = {"deployment": {"waf": {"enabled": True}}}
    assert parse_deployment(on).waf.enabled is True
    assert parse_deployment(on, waf_override=False).waf.enabled is False
    assert context_flag("true", "waf") is True
    assert context_flag("False", "waf") is False
    assert context_flag(None, "waf") is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"reserved_concurrency": 0}, "reserved_concurrency"),
        ({"reserved_concurrency": "10"}, "reserved_concurrency"),
        ({"p99_answer_seconds": 0}, "p99_answer_seconds"),
        ({"p99_answer_seconds": "10"}, "p99_answer_seconds"),
        ({"waf": {"enabled": "yes"}}, "waf.enabled"),
        ({"waf": {"rate_limit_per_5_minutes": 5}}, "rate_limit_per_5_minutes"),
        ({"cors_allowed_origins": []}, "cors_allowed_origins"),
        ({"cors_allowed_origins": ["*", ORIGIN]}, "cannot be combined"),
        ({"cors_allowed_origins": ["tutor.example.com"]}, "not an origin"),
        ({"cors_allowed_origins": [ORIGIN + "/"]}, "not an origin"),
    ],
)
def test_deployment_errors_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_deployment({"deployment": section})
    with pytest.raises(ConfigError, match="context waf"):
        context_flag("maybe", "waf")
