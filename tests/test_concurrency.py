"""Reserved concurrency holds the usage plan: the synthesized stage throttle trips (429 with
Retry-After) before Lambda would throttle (which API Gateway reports as a 500), in the templates
and in the local API, which models both limits."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from llm_router.config import ConfigError, RoutesConfig, load_routes
from llm_router.edge.http_api import json_response
from llm_router.pipeline.strategies import STRATEGIES, Strategy
from local_api import ApiSettings, LocalApiServer, LocalGateway
from stack_synth import Synth, shared_synth
from test_local_api import KEY, ask, settings

from stacks.concurrency import (
    DEFAULT_RESERVABLE,
    FROM_USAGE_PLAN,
    THROTTLED_RETRY_AFTER_SECONDS,
    StageThrottle,
    required_concurrency,
    reserved_concurrency,
    stage_throttle,
)
from stacks.deployment import parse_deployment


@pytest.fixture(scope="module")
def default() -> Synth:
    return shared_synth()


def stage_limits(synthesized: Synth, strategy: Strategy) -> StageThrottle:
    """The stage's method throttle, read back from the template."""
    _, stage = synthesized.one(strategy, "AWS::ApiGateway::Stage")
    (settings_,) = stage["Properties"]["MethodSettings"]
    return StageThrottle(settings_["ThrottlingRateLimit"], settings_["ThrottlingBurstLimit"])


@pytest.mark.parametrize("strategy", STRATEGIES.values(), ids=lambda s: s.name)
def test_every_function_can_run_all_the_stage_admits(default: Synth, strategy: Strategy) -> None:
    throttle = stage_limits(default, strategy)
    p99 = parse_deployment(load_routes().raw).p99_answer_seconds
    # The most requests in flight when each takes p99: the bucket's burst plus rate x p99.
    in_flight = throttle.burst + throttle.rate * p99
    reserved = [
        f["Properties"]["ReservedConcurrentExecutions"]
        for f in default.resources(strategy, "AWS::Lambda::Function").values()
        if "ReservedConcurrentExecutions" in f["Properties"]
    ]
    _, router = default.function(strategy)
    _, feedback = default.feedback_function(strategy)
    assert router["Properties"]["ReservedConcurrentExecutions"] >= in_flight
    assert "ReservedConcurrentExecutions" not in feedback["Properties"]  # calls no model
    assert all(r >= in_flight for r in reserved)
    for plan in default.resources(strategy, "AWS::ApiGateway::UsagePlan").values():
        plan_throttle = plan["Properties"]["Throttle"]
        assert plan_throttle["RateLimit"] <= throttle.rate
        assert plan_throttle["BurstLimit"] <= throttle.burst


def test_a_default_account_can_reserve_what_the_app_reserves(default: Synth) -> None:
    total = sum(
        f["Properties"].get("ReservedConcurrentExecutions", 0)
        for strategy in STRATEGIES.values()
        for f in default.resources(strategy, "AWS::Lambda::Function").values()
    )
    assert 0 < total <= DEFAULT_RESERVABLE  # else a deploy fails at the default quota of 1,000


@pytest.mark.parametrize("strategy", STRATEGIES.values(), ids=lambda s: s.name)
def test_the_stage_throttle_answers_429_with_retry_after(
    default: Synth, strategy: Strategy
) -> None:
    responses = [
        r["Properties"]
        for r in default.resources(strategy, "AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "THROTTLED"
    ]
    assert len(responses) == 1
    assert responses[0]["StatusCode"] == "429"
    headers = responses[0]["ResponseParameters"]
    assert headers["gatewayresponse.header.Retry-After"] == f"'{THROTTLED_RETRY_AFTER_SECONDS}'"
    assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"


def test_derived_figure_and_checked_settings(routes: RoutesConfig) -> None:
    throttle = stage_throttle(routes)
    assert (throttle.rate, throttle.burst) == (10, 20)  # routes.json api.*
    assert required_concurrency(throttle, 10) == 120
    assert required_concurrency(throttle, 2.05) == 41  # rounded up, never down
    assert reserved_concurrency(routes, FROM_USAGE_PLAN, 10) == 120
    assert reserved_concurrency(routes, 500, 10) == 500
    assert reserved_concurrency(routes, None, 10) is None
    with pytest.raises(ConfigError, match=r"reserved_concurrency 10 cannot hold .* at least 120"):
        reserved_concurrency(routes, 10, 10)


class Blocking:
    """A handler that holds its execution until released, counting the most running at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(10)
        with self._lock:
            self.running -= 1
        return json_response(200, {"ok": True})


def burst(api_settings: ApiSettings, requests: int) -> tuple[list[tuple[int, dict, bytes]], int]:
    """``requests`` concurrent questions to one router whose executions block until all were
    sent; the responses and the most executions running at once."""
    handler = Blocking()
    server = LocalApiServer(LocalGateway(api_settings, {"semantic": handler})).start()
    try:
        with ThreadPoolExecutor(requests) as pool:
            futures = [pool.submit(ask, server.url, {"question": "q"}) for _ in range(requests)]
            # Refusals come back at once; the admitted requests wait for the release.
            threading.Timer(2.0, handler.release.set).start()
            results = [f.result() for f in futures]
    finally:
        handler.release.set()
        server.stop()
    return results, handler.most


def test_local_api_refuses_beyond_reserved_concurrency_as_aws_does() -> None:
    results, most = burst(settings(reserved_concurrency=3), 6)
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 200, 200, 500, 500, 500]
    assert most == 3
    for status, headers, body in results:
        if status == 500:  # Lambda refused the invocation; API Gateway's bare 500
            assert json.loads(body) == {"message": "Internal server error"}
            assert "Retry-After" not in headers


def test_local_api_with_the_shipped_settings_throttles_before_lambda(routes: RoutesConfig) -> None:
    shipped = ApiSettings.from_config(routes, KEY)
    assert shipped.reserved_concurrency == 120
    throttle = stage_throttle(routes)
    # Well beyond the bucket: its burst, plus far more than it refills while they are sent.
    results, most = burst(shipped, throttle.burst + 40)
    statuses = [status for status, _, _ in results]
    assert 500 not in statuses
    assert statuses.count(429) >= 1
    assert most <= shipped.reserved_concurrency
    for status, headers, body in results:
        if status == 429:
            assert json.loads(body) == {"message": "Too Many Requests"}
            assert headers["Retry-After"] == str(THROTTLED_RETRY_AFTER_SECONDS)
