"""Tiers in the local run: one key per tier, each with its usage plan and its answer targets."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HAIKU, SONNET_V2, STANDIN_SOURCE, two_tiers
from llm_router.config import RoutesConfig
from local_api import ApiSettings, LocalApiServer, LocalGateway
from local_api.routers import mount_routers
from test_routers import WW2

KEY = "local-tier-test-key-0123456789"


@pytest.fixture
def tiered(routes: RoutesConfig) -> RoutesConfig:
    return two_tiers(
        routes,
        basic={"throttle_rate_limit": 100, "throttle_burst_limit": 100},
        pro={"throttle_burst_limit": 2, "throttle_rate_limit": 0.001},
    )


@pytest.fixture
def server(
    tiered: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, fresh_standin: Any
) -> Iterator[Any]:
    routers = mount_routers(
        tiered, bedrock_client, semantic_index_dir, STANDIN_SOURCE, budget=None
    )
    gateway = LocalGateway(
        ApiSettings.from_config(tiered, KEY), {r.strategy.name: r.handler for r in routers}
    )
    with LocalApiServer(gateway, request_log=lambda *_: None) as running:
        yield running


def ask(server: Any, key: str) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request("POST", "/semantic/ask", json.dumps({"question": WW2}),
                           {"Content-Type": "application/json", "x-api-key": key})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_each_tier_key_gets_its_tiers_model_and_plan(server: Any) -> None:
    status, body = ask(server, KEY)
    assert status == 200
    assert (body["routing"]["tier"], body["answerer_LLM"]) == ("basic", HAIKU)
    status, body = ask(server, f"{KEY}-pro")
    assert status == 200
    assert (body["routing"]["tier"], body["answerer_LLM"]) == ("pro", SONNET_V2)
    statuses = [ask(server, f"{KEY}-pro")[0] for _ in range(3)]
    assert statuses[-1] == 429  # pro's own usage plan: burst 2
    assert ask(server, KEY)[0] == 200  # basic's plan is untouched
    assert ask(server, f"{KEY}-gold")[0] == 403
