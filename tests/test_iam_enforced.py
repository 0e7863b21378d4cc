"""The functions run with exactly their synthesized roles, and every call they make is allowed.

moto enforces IAM on DynamoDB and the Bedrock stand-in on model calls, with each function's role
read from the CDK templates (scripts/offline_iam). The routers and the feedback function are
driven through their real handlers under those roles: any call their role lacks is refused, as
AWS would refuse it, and shows up here instead of after a deploy.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from apigw_events import LocalLambdaContext, proxy_event
from backends import create_cache_table
from botocore.exceptions import ClientError
from build_index import STANDIN_SOURCE
from llm_router.config import RoutesConfig, parse_routes
from llm_router.config.cache import CACHE_TABLE_ENV
from llm_router.config.settings import BUDGET_TABLE_ENV, CONVERSATION_TABLE_ENV
from llm_router.edge import FEEDBACK_ENTRY_POINT, ROUTER_ENTRY_POINT, STREAM_ENTRY_POINT
from llm_router.edge.feedback import FEEDBACK_TABLE_ENV, FeedbackHandler
from llm_router.edge.handler import RouterHandler
from llm_router.governance.budget import BudgetGuard, dynamodb_client
from llm_router.governance.conversation_store import ConversationStore
from llm_router.governance.provenance import (
    FEEDBACK_SECRET_ENV,
    FeedbackTokens,
    SecretSource,
    parse_feedback_settings,
)
from llm_router.models.bedrock import aws_client, runtime_client
from llm_router.pipeline.cache.response_cache import ResponseCache
from llm_router.pipeline.cache.store import CacheStore
from llm_router.pipeline.factory import build_service
from llm_router.pipeline.strategies import STRATEGIES
from offline_iam import moto_iam
from offline_iam.local_roles import LocalRoles, grant_local_roles, roles_of
from stack_synth import shared_synth

from layers.aws_sdk import operations_called

REGION = "us-east-1"
SECRET = "iam-feedback-secret"
TABLES = {
    BUDGET_TABLE_ENV: "iam-budget",
    FEEDBACK_TABLE_ENV: "iam-feedback",
    CONVERSATION_TABLE_ENV: "iam-conversations",
    CACHE_TABLE_ENV: "iam-cache",
}
CORE = Path(__file__).resolve().parents[1] / "lambdas" / "llm_router"
BOOTSTRAP = moto_iam.Credentials("bootstrap", "bootstrap")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):
        server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name=REGION,
                            **BOOTSTRAP.as_client_kwargs())
    keys = {
        TABLES[BUDGET_TABLE_ENV]: "pk",
        TABLES[FEEDBACK_TABLE_ENV]: "request_id",
        TABLES[CONVERSATION_TABLE_ENV]: "conversation_id",
    }
    for table, key in keys.items():
        dynamodb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        )
    secrets = boto3.client("secretsmanager", endpoint_url=url, region_name=REGION,
                           **BOOTSTRAP.as_client_kwargs())
    secrets.create_secret(Name=SECRET, SecretString="iam-test-secret")
    create_cache_table(dynamodb, TABLES[CACHE_TABLE_ENV])
    yield url
    server.stop()


def secret_arn(url: str) -> str:
    secrets = boto3.client("secretsmanager", endpoint_url=url, region_name=REGION,
                           **BOOTSTRAP.as_client_kwargs())
    return str(secrets.describe_secret(SecretId=SECRET)["ARN"])


@pytest.fixture(scope="module")
def granted(moto_url: str, standin: Any) -> LocalRoles:
    # The secret's local name is what follows "secret:" in moto's ARN (its suffix included).
    names = {**TABLES, FEEDBACK_SECRET_ENV: secret_arn(moto_url).split(":secret:", 1)[1]}
    roles = roles_of(shared_synth().templates, REGION, names)
    return grant_local_roles(
        roles, moto_url, REGION, BOOTSTRAP, standin, ROUTER_ENTRY_POINT, FEEDBACK_ENTRY_POINT,
        STREAM_ENTRY_POINT,
    )


def role_tokens(url: str, credentials: moto_iam.Credentials) -> FeedbackTokens:
    """Feedback tokens whose secret is read with the function's role, as in Lambda."""
    client = aws_client("secretsmanager", endpoint_url=url, region_name=REGION,
                        **credentials.as_client_kwargs())
    return FeedbackTokens.from_source(
        SecretSource(secret_arn(url), client), parse_feedback_settings({})
    )


def role_dynamodb(url: str, credentials: moto_iam.Credentials) -> Any:
    return dynamodb_client(endpoint_url=url, timeout_seconds=10, region_name=REGION,
                           **credentials.as_client_kwargs())


def role_bedrock(standin: Any, credentials: moto_iam.Credentials) -> Any:
    return runtime_client(region=REGION, endpoint_url=standin.url,
                          credentials=(credentials.access_key_id, credentials.secret_access_key))


def with_budget(routes: RoutesConfig, daily_usd: float) -> RoutesConfig:
    raw = json.loads(json.dumps(routes.raw))
    raw["budget"] = {**raw.get("budget", {}), "daily_usd": daily_usd, "soft_fraction": 0.99}
    return parse_routes(raw, preset=routes.preset, source_path=routes.source_path)


def ask(handler: Any, question: str) -> tuple[int, dict[str, Any]]:
    response = handler(proxy_event(json.dumps({"question": question})), LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_each_router_works_with_exactly_its_role(
    strategy: str, granted: LocalRoles, moto_url: str, fresh_standin: Any,
    routes: RoutesConfig, semantic_index_dir: Path,
) -> None:
    """Classify, answer, check and record the budget, look up and fill the response cache (its
    semantic candidates too), refuse over the budget: nothing is denied."""
    config = with_budget(routes, daily_usd=5.0)
    credentials = granted.routers[strategy]
    table = TABLES[BUDGET_TABLE_ENV]
    guard = BudgetGuard(config, table, client=role_dynamodb(moto_url, credentials))
    cache = ResponseCache(
        config, CacheStore(TABLES[CACHE_TABLE_ENV], role_dynamodb(moto_url, credentials))
    )
    service = build_service(strategy, config, role_bedrock(fresh_standin, credentials),
                            semantic_index_dir, STANDIN_SOURCE, budget=guard, cache=cache)
    handler = RouterHandler(
        strategy=strategy, service_factory=lambda: service, eager=True,
        feedback_tokens=role_tokens(moto_url, credentials),
    )
    operator = role_dynamodb(moto_url, granted.operator)  # a fresh day for each router
    for item in operator.scan(TableName=TABLES[BUDGET_TABLE_ENV])["Items"]:
        operator.delete_item(TableName=TABLES[BUDGET_TABLE_ENV], Key={"pk": item["pk"]})
    moto_iam.DENIALS.clear()
    question = f"What year did World War II end? ({strategy})"  # each router's own entry
    with moto_iam.enforced():
        guard.read_today()  # what each instance does at init (GetItem), with the role
        assert guard.room_expected(config.default_tier)  # so the first request reserves beside
        status, body = ask(handler, question)
        assert status == 200, body
        assert body["routing"]["budget"] == "ok"
        assert body["feedback_token"]  # the secret was read with the router's role
        assert body["routing"]["cache"] == "miss"  # GetItem, Query (history), PutItem x2
        status, body = ask(handler, question)
        assert status == 200 and body["routing"]["cache"] == "hit", body
        guard.record(config.default_tier, 10.0)  # what the function records, past the limit
        status, refused = ask(handler, question)
    assert status == 429, refused  # the guard read the spend: it did not fail open
    assert not moto_iam.DENIALS, list(moto_iam.DENIALS)
    denied = [c for c in fresh_standin.calls() if c["status"] == 403]
    assert not denied, denied


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_each_stream_works_with_exactly_its_role_and_the_router_role_cannot_stream(
    strategy: str, granted: LocalRoles, moto_url: str, fresh_standin: Any,
    routes: RoutesConfig, semantic_index_dir: Path,
) -> None:
    """POST /ask/stream on the streaming function's role: decision models (InvokeModel),
    ConverseStream on the answer targets (InvokeModelWithResponseStream), the budget table, the
    response cache (a repeat is a hit), the conversation table (a follow-up continues it) and
    the feedback secret (``done`` carries a token); the buffered router's role may not stream,
    as Bedrock would refuse it."""
    from llm_router.edge.streaming import StreamingRouterHandler

    config = with_budget(routes, daily_usd=5.0)
    stream_role = granted.streams[strategy]

    def stream_handler(credentials: moto_iam.Credentials) -> StreamingRouterHandler:
        dynamodb = role_dynamodb(moto_url, credentials)
        service = build_service(
            strategy, config, role_bedrock(fresh_standin, credentials), semantic_index_dir,
            STANDIN_SOURCE, budget=BudgetGuard(config, TABLES[BUDGET_TABLE_ENV], client=dynamodb),
            cache=ResponseCache(config, CacheStore(TABLES[CACHE_TABLE_ENV], dynamodb)),
            conversations=ConversationStore(config, TABLES[CONVERSATION_TABLE_ENV],
                                            client=dynamodb),
        )
        return StreamingRouterHandler(
            strategy=strategy, service_factory=lambda: service, eager=True,
            feedback_tokens=role_tokens(moto_url, credentials),
        )

    def last_event(
        handler: StreamingRouterHandler, body: dict[str, Any]
    ) -> tuple[bytes, dict[str, Any]]:
        with moto_iam.enforced():
            response = handler.stream(proxy_event(json.dumps(body)), LocalLambdaContext())
            chunks = list(response.body)
        assert response.status == 200, chunks
        name, data = chunks[-1].split(b"\n")[:2]
        return name, json.loads(data.removeprefix(b"data: "))

    operator = role_dynamodb(moto_url, granted.operator)  # a fresh day
    for item in operator.scan(TableName=TABLES[BUDGET_TABLE_ENV])["Items"]:
        operator.delete_item(TableName=TABLES[BUDGET_TABLE_ENV], Key={"pk": item["pk"]})
    moto_iam.DENIALS.clear()
    handler = stream_handler(stream_role)
    question = {"question": f"When did the Western Roman Empire fall? (stream {strategy})"}
    name, done = last_event(handler, question)
    assert name == b"event: done", done
    assert done["usage"]["answer"]["output_tokens"] > 0
    assert done["feedback_token"] and done["conversation_id"]  # the secret; GetItem, PutItem
    assert done["routing"]["cache"] == "miss"  # GetItem, Query, PutItem x2
    streams = len([c for c in fresh_standin.calls() if c["api"] == "converse-stream"])
    name, hit = last_event(handler, question)
    assert name == b"event: done" and hit["routing"]["cache"] == "hit", hit
    assert len([c for c in fresh_standin.calls() if c["api"] == "converse-stream"]) == streams
    name, follow_up = last_event(
        handler, {"question": "Why did it fall?", "conversation_id": done["conversation_id"]}
    )
    assert name == b"event: done" and follow_up["conversation_id"] == done["conversation_id"]
    assert not moto_iam.DENIALS, list(moto_iam.DENIALS)
    assert not [c for c in fresh_standin.calls() if c["api"] == "converse-stream"
                and c["status"] == 403]
    router_handler = stream_handler(granted.routers[strategy])  # the buffered router's role
    name, error = last_event(router_handler, {"question": "What year did World War II end?"})
    assert name == b"event: error" and error["code"] == "models_access_denied", error
    refused = [c for c in fresh_standin.calls() if c["status"] == 403]
    assert refused and {c["api"] for c in refused} == {"converse-stream"}


def test_a_router_keeps_a_conversation_with_exactly_its_role(
    granted: LocalRoles, moto_url: str, fresh_standin: Any, routes: RoutesConfig
) -> None:
    """Start and continue a server-kept conversation (GetItem, conditional PutItem) under the
    router's role; the feedback function's role may not read it."""
    credentials = granted.routers["llm-assisted"]
    table = TABLES[CONVERSATION_TABLE_ENV]
    store = ConversationStore(routes, table, client=role_dynamodb(moto_url, credentials))
    service = build_service("llm-assisted", routes, role_bedrock(fresh_standin, credentials),
                            budget=None, conversations=store)
    handler = RouterHandler(strategy="llm-assisted", service_factory=lambda: service, eager=True)
    assert granted.feedback is not None
    moto_iam.DENIALS.clear()
    with moto_iam.enforced():
        status, first = ask(handler, "What is 12 times 12?")
        assert status == 200 and first["conversation_id"], first
        response = handler(proxy_event(json.dumps(
            {"question": "And divided by 3?", "conversation_id": first["conversation_id"]}
        )), LocalLambdaContext())
        assert response["statusCode"] == 200, response["body"]
        assert not moto_iam.DENIALS, list(moto_iam.DENIALS)
        with pytest.raises(ClientError) as refused:
            role_dynamodb(moto_url, granted.feedback).get_item(
                TableName=table, Key={"conversation_id": {"S": first["conversation_id"]}}
            )
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_the_feedback_function_writes_with_exactly_its_role(
    granted: LocalRoles, moto_url: str, routes: RoutesConfig
) -> None:
    assert granted.feedback is not None
    tokens = role_tokens(moto_url, granted.feedback)
    handler = FeedbackHandler(routes, TABLES[FEEDBACK_TABLE_ENV],
                              role_dynamodb(moto_url, granted.feedback), tokens=tokens)
    token = FeedbackTokens(lambda: b"iam-test-secret", 3600).issue("iam-1", "key-1", "standard")
    moto_iam.DENIALS.clear()
    with moto_iam.enforced():
        body = json.dumps({"feedback_token": token, "helpful": True})
        event = proxy_event(body, "/feedback", api_key_id="key-1")
        response = handler(event, LocalLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert not moto_iam.DENIALS, list(moto_iam.DENIALS)


def test_a_call_the_role_lacks_is_refused_as_aws_refuses_it(
    moto_url: str, standin: Any, granted: LocalRoles
) -> None:
    """The enforcement can fail: a narrower role is denied by DynamoDB and by Bedrock."""
    table_arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLES[BUDGET_TABLE_ENV]}"
    narrow = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table_arn},
        {"Effect": "Allow", "Action": "bedrock:InvokeModel",
         "Resource": f"arn:aws:bedrock:{REGION}::foundation-model/amazon.titan-embed-text-v2:0"},
    ]}
    credentials = moto_iam.assume_role(moto_url, REGION, granted.operator, "narrow", narrow)
    standin.register_identity(credentials.access_key_id, "narrow", narrow)
    dynamodb = role_dynamodb(moto_url, credentials)
    bedrock = role_bedrock(standin, credentials)
    key = {"pk": {"S": "x"}}
    with moto_iam.enforced():
        dynamodb.get_item(TableName=TABLES[BUDGET_TABLE_ENV], Key=key)  # granted
        for call in (
            lambda: dynamodb.update_item(TableName=TABLES[BUDGET_TABLE_ENV], Key=key),
            lambda: dynamodb.get_item(TableName=TABLES[FEEDBACK_TABLE_ENV],
                                      Key={"request_id": {"S": "x"}}),
        ):
            with pytest.raises(ClientError) as denied:
                call()
            assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        bedrock.invoke_model(modelId="amazon.titan-embed-text-v2:0",
                             body=json.dumps({"inputText": "hi"}))  # granted
        with pytest.raises(ClientError) as denied:
            bedrock.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0",
                             messages=[{"role": "user", "content": [{"text": "hi"}]}])
    error = denied.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_inference_profile_needs_every_destination_region(
    moto_url: str, standin: Any, granted: LocalRoles
) -> None:
    """A profile routes to several regions; a grant missing one of them is refused."""
    profile = "us.anthropic.claude-3-haiku-20240307-v1:0"
    base = "anthropic.claude-3-haiku-20240307-v1:0"
    partial = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "bedrock:InvokeModel",
        "Resource": [f"arn:aws:bedrock:{REGION}:123456789012:inference-profile/{profile}",
                     f"arn:aws:bedrock:us-east-1::foundation-model/{base}"],
    }]}
    credentials = moto_iam.assume_role(moto_url, REGION, granted.operator, "partial", partial)
    standin.register_identity(credentials.access_key_id, "partial", partial)
    with pytest.raises(ClientError) as denied:
        role_bedrock(standin, credentials).converse(
            modelId=profile, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert "us-east-2::foundation-model" in denied.value.response["Error"]["Message"]


# -- every operation the code calls is granted ----------------------------------------------------

# IAM's name for the API's operations where they differ (Bedrock authorizes Converse as
# InvokeModel: Bedrock User Guide, "Converse API").
IAM_ACTION = {
    ("bedrock-runtime", "Converse"): "bedrock:InvokeModel",
    ("bedrock-runtime", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
}
IAM_PREFIX = {"bedrock-runtime": "bedrock"}
SERVICES = ("dynamodb", "bedrock-runtime", "ssm", "secretsmanager", "kms")


def operations_called_in(paths: Iterable[Path]) -> set[str]:
    """IAM actions of every AWS API operation called anywhere in ``paths`` (the scan that also
    decides what the runtime layer's botocore keeps: layers.aws_sdk)."""
    called = operations_called(list(paths), SERVICES)
    return {
        IAM_ACTION.get((service, operation), f"{IAM_PREFIX.get(service, service)}:{operation}")
        for service, operations in called.items()
        for operation in operations
    }


def operations_called_in_the_core() -> set[str]:
    """IAM actions of every AWS API operation called anywhere in lambdas/llm_router."""
    return operations_called_in(CORE.rglob("*.py"))


def granted_actions() -> set[str]:
    actions = set()
    for template in shared_synth().templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::IAM::Policy":
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                    listed = statement["Action"]
                    actions |= set([listed] if isinstance(listed, str) else listed)
    return actions


def test_every_operation_in_the_core_is_granted_to_a_function() -> None:
    called = operations_called_in_the_core()
    granted = granted_actions()
    assert {"dynamodb:UpdateItem", "bedrock:InvokeModel"} <= called, called  # the scan finds them
    assert called <= granted, f"called but granted to no function: {sorted(called - granted)}"


@pytest.mark.parametrize("handler", [ROUTER_ENTRY_POINT, STREAM_ENTRY_POINT])
def test_every_data_operation_of_the_request_path_is_granted_to_its_function(
    handler: str,
) -> None:
    """/ask and /ask/stream run the same pipeline: every non-Bedrock operation the core calls
    outside the feedback function's own module (budget, cache, conversations, the feedback
    secret) is granted to each router's function and to its streaming function. Which Bedrock
    call each may make is its model grant's (tests/test_stack_stream.py)."""
    feedback_only = CORE / "edge" / "feedback.py"
    called = {
        action for action in operations_called_in(
            path for path in CORE.rglob("*.py") if path != feedback_only
        )
        if not action.startswith("bedrock:")
    }
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
            "secretsmanager:GetSecretValue"} <= called, called  # the scan finds them
    synth = shared_synth()
    for strategy in STRATEGIES.values():
        granted = {
            action for statement in synth.statements(strategy, handler)
            for action in ([statement["Action"]] if isinstance(statement["Action"], str)
                           else statement["Action"])
        }
        assert called <= granted, (strategy.name, sorted(called - granted))
