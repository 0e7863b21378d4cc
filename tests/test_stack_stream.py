"""The synthesized POST /ask/stream of every router stack: a STREAM integration to a function of
its own, with the same key, validator and model as /ask, and a role that may stream from exactly
the answer targets (cfn-lint and cdk-nag run over the same templates in tests/test_stacks.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llm_router.config import RoutesConfig
from llm_router.config.cache import CACHE_TABLE_ENV
from llm_router.config.settings import BUDGET_TABLE_ENV, CONVERSATION_TABLE_ENV, TIER_KEYS_ENV
from llm_router.edge import STREAM_ENTRY_POINT as STREAM_HANDLER
from llm_router.governance.provenance import FEEDBACK_SECRET_ENV
from llm_router.pipeline.strategies import STRATEGIES, Strategy
from stack_synth import PLACEHOLDERS, Synth, render, shared_synth

from stacks.model_access import invoke_model_arns
from stacks.stream_api import EXEC_WRAPPER, EXEC_WRAPPER_ENV

STRATEGY_LIST = list(STRATEGIES.values())


@pytest.fixture(scope="module")
def synthesized() -> Synth:
    return shared_synth()


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement["Resource"]
    return [render(r) for r in (resources if isinstance(resources, list) else [resources])]


@pytest.mark.parametrize("strategy", STRATEGY_LIST, ids=lambda s: s.name)
def test_stream_method_is_a_streaming_integration(
    synthesized: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    method = synthesized.method(strategy, "stream", "POST")
    ask = synthesized.method(strategy, "ask", "POST")
    integration = method["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert integration["ResponseTransferMode"] == "STREAM"
    uri = integration["Uri"]["Fn::Join"][1]
    assert uri[-1] == "/response-streaming-invocations"
    assert ":lambda:path/2021-11-15/functions/" in uri
    function_id, function = synthesized.function(strategy, STREAM_HANDLER)
    assert {"Fn::GetAtt": [function_id, "Arn"]} in uri
    # The same gate as /ask: key, validator, request model.
    for key in ("ApiKeyRequired", "RequestValidatorId", "RequestModels"):
        assert method[key] == ask[key]
    assert "ResponseTransferMode" not in ask["Integration"]  # /ask stays buffered
    timeout = routes.stream_function_timeout_seconds
    assert function["Properties"]["Timeout"] == timeout
    assert integration["TimeoutInMillis"] == timeout * 1000 <= 900_000
    environment = function["Properties"]["Environment"]["Variables"]
    assert environment[EXEC_WRAPPER_ENV] == EXEC_WRAPPER
    _, router = synthesized.function(strategy)
    assert function["Properties"]["Layers"] == router["Properties"]["Layers"]
    assert function["Properties"]["Code"] == router["Properties"]["Code"]


@pytest.mark.parametrize("strategy", STRATEGY_LIST, ids=lambda s: s.name)
def test_stream_role_streams_from_exactly_the_answer_targets(
    synthesized: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    statements = synthesized.statements(strategy, STREAM_HANDLER)
    bedrock = {
        action: _resources(s)
        for s in statements
        for action in _actions(s)
        if action.startswith("bedrock:")
    }
    assert set(bedrock) == {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
    answers = invoke_model_arns(routes.answerer_model_ids(), routes, PLACEHOLDERS)
    assert sorted(bedrock["bedrock:InvokeModelWithResponseStream"]) == sorted(answers)
    decision = invoke_model_arns(strategy.decision_models(routes), routes, PLACEHOLDERS)
    assert sorted(bedrock["bedrock:InvokeModel"]) == sorted(decision)
    # The buffered router never streams.
    router_actions = {a for s in synthesized.statements(strategy) for a in _actions(s)}
    assert "bedrock:InvokeModelWithResponseStream" not in router_actions


@pytest.mark.parametrize("strategy", STRATEGY_LIST, ids=lambda s: s.name)
def test_stream_url_is_an_output(synthesized: Synth, strategy: Strategy) -> None:
    outputs = synthesized.templates[strategy.stack_name]["Outputs"]
    assert "/ask/stream" in str(outputs["StreamUrl"]["Value"])


@pytest.mark.parametrize("strategy", STRATEGY_LIST, ids=lambda s: s.name)
def test_stream_role_has_the_routers_request_data_and_nothing_broader(
    synthesized: Synth, strategy: Strategy
) -> None:
    """Besides its models, the streaming function reads and writes exactly what the router
    function does (budget, cache, conversation tables, the feedback secret), with the same
    variables naming them: a streamed answer is cached, kept and signed as /ask's."""

    def data_grants(handler: str | None) -> list[tuple[tuple[str, ...], str]]:
        statements = (synthesized.statements(strategy, handler) if handler
                      else synthesized.statements(strategy))
        return sorted(
            (tuple(sorted(_actions(s))), json.dumps(s["Resource"], sort_keys=True))
            for s in statements
            if not any(a.startswith(("bedrock:", "logs:", "xray:")) for a in _actions(s))
        )

    stream, router = data_grants(STREAM_HANDLER), data_grants(None)
    assert stream == router
    granted = {a for actions, _ in stream for a in actions}
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
            "secretsmanager:GetSecretValue"} <= granted
    assert not [a for a in granted if "*" in a]
    variables = (BUDGET_TABLE_ENV, CACHE_TABLE_ENV, CONVERSATION_TABLE_ENV, FEEDBACK_SECRET_ENV,
                 TIER_KEYS_ENV)
    _, function = synthesized.function(strategy, STREAM_HANDLER)
    _, buffered = synthesized.function(strategy)
    env = function["Properties"]["Environment"]["Variables"]
    router_env = buffered["Properties"]["Environment"]["Variables"]
    for variable in variables:
        if variable in router_env:
            assert env[variable] == router_env[variable], variable
    assert {CACHE_TABLE_ENV, CONVERSATION_TABLE_ENV, FEEDBACK_SECRET_ENV} <= set(env)
