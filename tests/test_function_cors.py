"""The function answers browsers as deployment.cors_allowed_origins allows, like the API does."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from apigw_events import LocalLambdaContext, proxy_event
from conftest import STANDIN_SOURCE
from llm_router.config import RoutesConfig, parse_routes
from llm_router.edge.handler import RouterHandler
from llm_router.pipeline.factory import build_service
from test_routers import WW2

pytestmark = pytest.mark.generic  # holds for any valid routes file

SITE = "https://tutor.example.org"


def handler_with(origins: list[str], routes: RoutesConfig, client: Any, index: Path) -> Any:
    raw = copy.deepcopy(dict(routes.raw))
    raw.setdefault("deployment", {})["cors_allowed_origins"] = origins
    config = parse_routes(raw)
    return RouterHandler(
        service_factory=lambda: build_service("semantic", config, client, index, STANDIN_SOURCE),
        eager=True,
    )


@pytest.mark.parametrize("origins,origin,expected", [
    (["*"], SITE, "*"),
    ([SITE], SITE, SITE),
    ([SITE], "https://evil.example", None),
    ([SITE], None, None),
])
def test_allow_origin_follows_the_configured_origins(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any,
    origins: list[str], origin: str | None, expected: str | None,
) -> None:
    handler = handler_with(origins, routes, bedrock_client, semantic_index_dir)
    headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {})}
    response = handler(proxy_event(json.dumps({"question": WW2}), headers=headers),
                       LocalLambdaContext())
    assert response["statusCode"] == 200
    assert response["headers"].get("Access-Control-Allow-Origin") == expected
    if expected == SITE:
        assert response["headers"]["Vary"] == "Origin"


@pytest.mark.parametrize("headers", [["Origin", SITE], "Origin: x", 7, {7: SITE}])
def test_odd_headers_with_an_origin_list_are_answered_not_raised(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any,
    headers: Any,
) -> None:
    """with_cors runs inside the handler's guarantee: odd ``headers`` cannot escape as a 500
    (or an exception out of the function)."""
    handler = handler_with([SITE], routes, bedrock_client, semantic_index_dir)
    event = {**proxy_event(json.dumps({"question": WW2})), "headers": headers}
    response = handler(event, LocalLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert "Access-Control-Allow-Origin" not in response["headers"]


@pytest.mark.parametrize("context", [None, object(), "context"])
def test_a_missing_or_odd_lambda_context_is_not_a_500(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any,
    context: Any,
) -> None:
    handler = handler_with(["*"], routes, bedrock_client, semantic_index_dir)
    response = handler(proxy_event(json.dumps({"question": WW2})), context)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["request_id"]  # a new one, as for any event without requestContext
