"""The daily budget guard through the router: cheapest targets past the soft threshold, 429 with
Retry-After at the hard one, and a new UTC day starts afresh. DynamoDB is moto's, on loopback."""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apigw_events import LocalLambdaContext, proxy_event
from backends import LOCAL_BUDGET_TABLE, local_budget
from conftest import HAIKU, SONNET, STANDIN_SOURCE
from llm_router.config import RoutesConfig, parse_routes
from llm_router.edge.handler import RouterHandler
from llm_router.governance.budget import BudgetGuard
from llm_router.pipeline.factory import build_service
from test_routers import QUADRATIC


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def config(routes: RoutesConfig) -> RoutesConfig:
    """Math answered by Sonnet with Haiku behind it, and a budget a few answers deep."""
    raw = copy.deepcopy(dict(routes.raw))
    raw["presets"]["blog-2024"]["answerers"]["math"] = {"pool": [SONNET], "fallbacks": [HAIKU]}
    raw["budget"] = {"daily_usd": 0.03, "soft_fraction": 0.6, "ttl_days": 3}
    return parse_routes(raw)


@pytest.fixture
def budget_client(config: RoutesConfig) -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        guard, _ = local_budget(stack, config)
        yield guard.client


def test_soft_then_hard_then_a_new_day(
    config: RoutesConfig, budget_client: Any, bedrock_client: Any, semantic_index_dir: Path,
    fresh_standin: Any,
) -> None:
    clock = Clock()
    guard = BudgetGuard(config, LOCAL_BUDGET_TABLE, client=budget_client, clock=clock)
    service = build_service(
        "semantic", config, bedrock_client, semantic_index_dir, STANDIN_SOURCE, budget=guard
    )
    handler = RouterHandler(service_factory=lambda: service, eager=True)

    def ask() -> tuple[int, dict[str, str], dict[str, Any]]:
        response = handler(proxy_event(json.dumps({"question": QUADRATIC})), LocalLambdaContext())
        return response["statusCode"], response["headers"], json.loads(response["body"])

    seen: list[tuple[str, str | None]] = []
    for _ in range(40):
        status, headers, body = ask()
        if status == 429:
            break
        assert status == 200
        seen.append((body["routing"]["budget"], body["answerer_LLM"]))
    else:
        pytest.fail("the hard budget was never reached")
    levels = [level for level, _ in seen]
    assert levels[0] == "ok" and "soft" in levels
    assert all(model == SONNET for level, model in seen if level == "ok")
    assert all(model == HAIKU for level, model in seen if level == "soft")  # the cheapest target
    assert body["code"] == "over_budget"
    assert not {"limit_usd", "spent_usd"} & set(body)  # when to retry, not the stack's spend
    assert int(headers["Retry-After"]) == 2 * 3600  # until midnight UTC
    calls = len(fresh_standin.calls())
    assert ask()[0] == 429 and len(fresh_standin.calls()) == calls  # nothing more is paid for
    clock.now += timedelta(hours=2, minutes=1)  # past midnight UTC: a new day
    status, _, body = ask()
    assert status == 200
    assert (body["routing"]["budget"], body["answerer_LLM"]) == ("ok", SONNET)


class BesideDecision:
    """A guard whose reading leaves room, so the core reserves beside the decision; each
    reservation waits until the stand-in has received the decision's model call (proof that
    they overlap), then answers ``level``."""

    def __init__(self, standin: Any, level: str) -> None:
        self.standin, self.level = standin, level
        self.recorded: list[float] = []
        self.settled: list[float | None] = []
        self.overlapped = False

    def room_expected(self, tier: str) -> bool:
        return True

    def reserve(self, tier: str, worst_case: float) -> Any:
        from llm_router.governance.budget import Reservation

        for _ in range(500):
            if self.standin.calls():
                self.overlapped = True
                break
            threading.Event().wait(0.01)
        if self.level == "hard":
            return Reservation("hard", 60.0, "2026-11-23")
        return Reservation(self.level, 3600.0, "2026-11-23", ("stack",), worst_case)

    def settle(self, reservation: Any, cost_usd: float | None) -> None:
        self.settled.append(cost_usd)

    def record(self, tier: str, cost_usd: float) -> None:
        self.recorded.append(cost_usd)


@pytest.mark.parametrize("strategy", ["semantic", "llm-assisted"])
def test_with_room_the_reservation_runs_beside_the_decision_and_a_refusal_records_its_cost(
    strategy: str, config: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path,
    fresh_standin: Any,
) -> None:
    def ask(guard: BesideDecision) -> tuple[int, dict[str, Any]]:
        service = build_service(
            strategy, config, bedrock_client, semantic_index_dir, STANDIN_SOURCE, budget=guard
        )
        handler = RouterHandler(service_factory=lambda: service, eager=True)
        response = handler(proxy_event(json.dumps({"question": QUADRATIC})), LocalLambdaContext())
        return response["statusCode"], json.loads(response["body"])

    fine = BesideDecision(fresh_standin, "ok")
    status, body = ask(fine)
    assert status == 200 and body["routing"]["budget"] == "ok"
    assert fine.overlapped and fine.settled == [body["usage"]["cost_usd"]["total"]]

    fresh_standin.reset()
    refused = BesideDecision(fresh_standin, "hard")
    status, body = ask(refused)
    assert status == 429 and body["code"] == "over_budget"
    assert refused.overlapped  # the decision ran: its model call is spent...
    answers = [c for c in fresh_standin.calls() if c["api"] == "converse"
               and c["model_id"] in (SONNET, HAIKU)]
    assert not answers  # ...but no answer model was called
    assert len(refused.recorded) == 1 and refused.recorded[0] > 0  # and it is counted
