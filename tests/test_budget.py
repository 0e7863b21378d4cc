"""The daily budget guard against moto's DynamoDB: levels, per-tier budgets, a new day, failures,
and the router through its soft and hard thresholds (cheapest targets, then 429 + Retry-After)."""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from apigw_events import LocalLambdaContext, proxy_event
from budget_state import spend_state
from conftest import HAIKU, SONNET, active_routes_file
from llm_router.config import ConfigError, RoutesConfig, parse_routes
from llm_router.edge.handler import RouterHandler
from llm_router.governance.budget import (
    BUDGET_TABLE_ENV,
    DEFAULT_DAILY_USD,
    BudgetGuard,
    parse_budget,
    spend_key,
    worst_case_usd,
)
from llm_router.pipeline.factory import build_service
from moto import mock_aws
from test_routers import QUADRATIC

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE = "router-budget"
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def routes_raw() -> dict[str, Any]:
    return json.loads(active_routes_file().read_text(encoding="utf-8"))


def config_with(
    budget: dict[str, Any] | None = None, tiers: dict[str, Any] | None = None
) -> RoutesConfig:
    raw = routes_raw()
    if budget is not None:
        raw["budget"] = budget
    if tiers is not None:
        raw["tiers"] = tiers
    return parse_routes(raw, preset="blog-2024")


def create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=TABLE,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto_dynamodb import correct_moto_dynamodb

    correct_moto_dynamodb()  # atomic writes and DynamoDB's number arithmetic, as locally
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        yield client


def guard_for(config: RoutesConfig, client: Any, clock: Clock) -> BudgetGuard:
    return BudgetGuard(config, TABLE, client=client, clock=clock)


# --- settings ------------------------------------------------------------------------------


def test_the_shipped_budget_is_on_with_the_documented_default() -> None:
    settings = parse_budget(routes_raw())
    assert settings.daily_usd == DEFAULT_DAILY_USD == 20
    assert (settings.soft_fraction, settings.ttl_days) == (0.8, 3)
    assert parse_budget({}) == settings  # the section's defaults are the shipped values


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"daily_usd": 0}, "budget.daily_usd must be positive or null"),
        ({"daily_usd": "20"}, "budget.daily_usd must be a number"),
        ({"soft_fraction": 1.5}, r"budget.soft_fraction must be in \(0, 1\]"),
        ({"ttl_days": 0}, "budget.ttl_days must be a whole number"),
        ({"daily_limit": 5}, "budget: unknown key"),
        ([], "budget must be an object"),
    ],
)
def test_bad_budget_sections_name_the_key(section: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_budget({"budget": section})


def test_from_env_needs_a_table_and_a_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_with()
    monkeypatch.delenv(BUDGET_TABLE_ENV, raising=False)
    assert BudgetGuard.from_env(config) is None
    monkeypatch.setenv(BUDGET_TABLE_ENV, TABLE)
    guard = BudgetGuard.from_env(config, client=object())
    assert guard is not None and guard.table_name == TABLE
    off = config_with(budget={"daily_usd": None})
    assert BudgetGuard.from_env(off) is None  # null turns it off...
    tiers = {"default": "standard", "definitions": {"standard": {"daily_budget_usd": 5}}}
    tier_only = config_with({"daily_usd": None}, tiers)
    assert BudgetGuard.from_env(tier_only) is not None  # ...but not a tier's budget


# --- levels --------------------------------------------------------------------------------


def test_levels_ok_soft_hard_and_retry_after_until_midnight(dynamodb: Any) -> None:
    config = config_with(budget={"daily_usd": 1.0, "soft_fraction": 0.8})
    clock = Clock(NOON)
    guard = guard_for(config, dynamodb, clock)
    state = spend_state(guard, "standard")
    assert (state.level, state.spent_usd, state.limit_usd) == ("ok", 0.0, 1.0)
    assert state.retry_after_seconds == 12 * 3600
    guard.record("standard", 0.5)
    guard.record("standard", 0.29)
    assert spend_state(guard, "standard").level == "ok"
    guard.record("standard", 0.01)  # 0.80: the soft threshold
    state = spend_state(guard, "standard")
    assert state.level == "soft" and state.spent_usd == pytest.approx(0.8)
    guard.record("standard", 0.2)  # 1.00: the budget
    clock.now = NOON + timedelta(hours=11, minutes=59, seconds=30)
    state = spend_state(guard, "standard")
    assert (state.level, state.scope) == ("hard", "stack")
    assert state.spent_usd == pytest.approx(1.0)
    assert state.retry_after_seconds == 30


def test_a_new_day_starts_from_zero_and_old_days_expire(dynamodb: Any) -> None:
    config = config_with(budget={"daily_usd": 1.0, "ttl_days": 3})
    clock = Clock(NOON)
    guard = guard_for(config, dynamodb, clock)
    guard.record("standard", 1.5)
    assert spend_state(guard, "standard").level == "hard"
    clock.now = NOON + timedelta(hours=12)  # midnight UTC
    state = spend_state(guard, "standard")
    assert (state.level, state.spent_usd) == ("ok", 0.0)
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": spend_key("2026-11-23")}})
    assert float(item["Item"]["usd#stack"]["N"]) == pytest.approx(1.5)
    expires = int(item["Item"]["expires_at"]["N"])
    assert expires == int(datetime(2026, 11, 26, tzinfo=UTC).timestamp())  # the day + 3 days
    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"


def test_a_tier_budget_applies_to_its_tier_only_and_the_stricter_level_wins(
    dynamodb: Any,
) -> None:
    tiers = {
        "default": "standard",
        "definitions": {"standard": {}, "pro": {"daily_budget_usd": 0.5}},
    }
    config = config_with(budget={"daily_usd": 10.0}, tiers=tiers)
    guard = guard_for(config, dynamodb, Clock(NOON))
    guard.record("pro", 0.45)  # 90% of pro's budget, 4.5% of the stack's
    pro, standard = spend_state(guard, "pro"), spend_state(guard, "standard")
    assert (pro.level, pro.scope, pro.limit_usd) == ("soft", "tier#pro", 0.5)
    assert (standard.level, standard.spent_usd, standard.limit_usd) == ("ok", 0.45, 10.0)
    guard.record("standard", 9.0)  # the stack's spend is 9.45 now: soft for everyone
    assert spend_state(guard, "standard").level == "soft"
    guard.record("pro", 0.05)  # pro's budget is spent; the stack's is not
    assert spend_state(guard, "pro").level == "hard"
    assert spend_state(guard, "standard").level == "soft"
    pro_only = guard_for(config_with({"daily_usd": None}, tiers), dynamodb, Clock(NOON))
    assert spend_state(pro_only, "standard").level == "off"
    assert spend_state(pro_only, "pro").level == "hard"


def test_functions_add_to_one_total_without_local_state(dynamodb: Any) -> None:
    """Two functions (guards) interleave their records: the table adds (UpdateItem ADD), neither
    writes back a total it read. (Whether ADD is atomic under concurrency is DynamoDB's promise;
    moto's in-process backend is not thread-safe, so it is not tested with threads here.)"""
    config = config_with(budget={"daily_usd": 100.0})
    first, second = (guard_for(config, dynamodb, Clock(NOON)) for _ in range(2))
    for _ in range(10):
        first.record("standard", 0.01)
        second.record("standard", 0.02)
    assert spend_state(first, "standard").spent_usd == pytest.approx(0.3)
    assert spend_state(second, "standard").spent_usd == pytest.approx(0.3)


def test_nothing_is_recorded_for_free_or_unknown_costs(dynamodb: Any) -> None:
    guard = guard_for(config_with(budget={"daily_usd": 1.0}), dynamodb, Clock(NOON))
    for cost in (0.0, -1.0, float("nan")):
        guard.record("standard", cost)
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0


def test_a_failing_table_never_fails_a_request(
    dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    guard = BudgetGuard(config_with(), "no-such-table", client=dynamodb, clock=Clock(NOON))
    reservation = guard.reserve("standard", 0.01)
    assert reservation.level == "ok" and reservation.error == "ResourceNotFoundException"
    assert reservation.amount_usd == 0.0  # nothing reserved: nothing to settle
    guard.settle(reservation, 0.5)
    guard.record("standard", 0.5)  # must not raise
    assert "budget reservation failed" in caplog.text and "not counted" in caplog.text
    assert spend_state(guard, "standard").error == "ResourceNotFoundException"


def test_an_unreachable_dynamodb_is_treated_as_ok_fast() -> None:
    from llm_router.governance.budget import dynamodb_client

    client = dynamodb_client(
        endpoint_url="http://127.0.0.1:9",  # the discard port: nothing listens
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    guard = BudgetGuard(config_with(), TABLE, client=client, clock=Clock(NOON))
    assert spend_state(guard, "standard").level == "ok"
    assert guard.reserve("standard", 0.01).level == "ok"
    guard.record("standard", 0.5)


# --- reservations --------------------------------------------------------------------------


def test_a_reservation_counts_until_settled_and_refuses_what_does_not_fit(dynamodb: Any) -> None:
    """Reserve, refuse, settle, release; a refusal says retry soon while only reservations in
    flight fill the budget, and at midnight once the settled spend does."""
    config = config_with(budget={"daily_usd": 1.0, "soft_fraction": 0.5})
    guard = guard_for(config, dynamodb, Clock(NOON))
    first = guard.reserve("standard", 0.6)
    assert (first.level, first.amount_usd, first.scopes) == ("ok", 0.6, ("stack",))
    assert spend_state(guard, "standard").spent_usd == pytest.approx(0.6)  # in flight counts
    refused = guard.reserve("standard", 0.5)  # 0.6 + 0.5 would pass the limit
    assert (refused.level, refused.amount_usd) == ("hard", 0.0)
    assert refused.retry_after_seconds == config.request_budget_seconds  # only in flight
    assert spend_state(guard, "standard").spent_usd == pytest.approx(0.6)  # a refusal adds nothing
    guard.settle(first, 0.1)  # the answer cost less than its worst case
    assert spend_state(guard, "standard").spent_usd == pytest.approx(0.1)
    second = guard.reserve("standard", 0.5)  # fits now; the spend before it is 0.1: ok
    assert second.level == "ok"
    third = guard.reserve("standard", 0.3)  # 0.6 committed before it: soft
    assert third.level == "soft"
    guard.settle(second, None)  # an unknown cost keeps the reservation
    guard.settle(third, 0.0)  # a failed request releases it
    assert spend_state(guard, "standard").spent_usd == pytest.approx(0.6)
    late = guard.reserve("standard", 0.5)  # 0.6 settled: 0.5 will never fit today
    assert (late.level, late.retry_after_seconds) == ("hard", 12 * 3600)


def test_one_update_reserves_the_stack_and_the_tier_budget_together(dynamodb: Any) -> None:
    pro = {"daily_budget_usd": 0.5}
    tiers = {"default": "standard", "definitions": {"standard": {}, "pro": pro}}
    config = config_with(budget={"daily_usd": 10.0}, tiers=tiers)
    guard = guard_for(config, dynamodb, Clock(NOON))
    calls: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    reservation = guard.reserve("pro", 0.4)
    assert calls == ["UpdateItem"]  # one round trip reserves and reads both budgets
    assert reservation.scopes == ("stack", "tier#pro") and reservation.level == "ok"
    assert guard.reserve("pro", 0.2).level == "hard"  # the tier's 0.5 would pass: refused
    assert spend_state(guard, "standard").spent_usd == pytest.approx(0.4)  # stack: untouched
    assert guard.reserve("standard", 0.2).level == "ok"  # the standard tier has no tier budget
    guard.settle(reservation, 0.05)
    state = spend_state(guard, "pro")
    assert (state.scope, state.spent_usd) == ("tier#pro", pytest.approx(0.05))


def test_a_worst_case_counts_every_byte_and_the_dearest_target() -> None:
    routes = config_with()
    from llm_router.governance.budget import MESSAGE_OVERHEAD_TOKENS, worst_case_usd

    question = "Solve 2x + 3 = 7 ∑"  # the last character is three UTF-8 bytes
    system = routes.answering.system_prompt
    tokens = len(system.encode()) + len(question.encode()) + 2 * MESSAGE_OVERHEAD_TOKENS
    sonnet = routes.price_of(SONNET)
    assert sonnet is not None
    expected = sonnet.cost_usd(tokens, routes.answering.max_tokens)  # Sonnet is the dearest
    assert worst_case_usd(routes, "standard", [question]) == pytest.approx(expected)
    longer = worst_case_usd(routes, "standard", [question, "an earlier turn"])
    assert longer > expected


def test_a_hundred_concurrent_requests_stay_within_the_stated_bound(
    bedrock_client: Any, fresh_standin: Any
) -> None:
    """The issue's attack: 100 concurrent math requests against a $0.05 budget (before the
    reservations: $0.244 spent). moto's writes are atomic (moto_dynamodb), as DynamoDB's are."""
    import contextlib
    from concurrent.futures import ThreadPoolExecutor

    from backends import local_budget

    limit = 0.05
    config = cheaper_fallback_config(daily_usd=limit)
    with contextlib.ExitStack() as stack:
        local, _ = local_budget(stack, config)
        guard = BudgetGuard(config, local.table_name, client=local.client, clock=Clock(NOON))
        service = build_service("llm-assisted", config, bedrock_client, budget=guard)
        handler = RouterHandler(
            strategy="llm-assisted", service_factory=lambda: service, eager=True
        )
        with ThreadPoolExecutor(max_workers=100) as pool:
            wave = list(pool.map(lambda _: ask(handler, QUADRATIC), range(100)))
        # Then one at a time until the settled spend leaves no room: the budget gets used.
        later = []
        while not later or later[-1][0] == 200:
            later.append(ask(handler, QUADRATIC))
            assert len(later) < 200
        recorded = spend_state(guard, "standard").spent_usd
    answered = [body for status, body, _ in wave + later if status == 200]
    refused = [(body, headers) for status, body, headers in wave if status == 429]
    assert len(refused) + sum(status == 200 for status, _, _ in wave) == 100 and refused
    spent = sum(body["usage"]["cost_usd"]["total"] for body in answered)
    classification = max(sum(body["usage"]["cost_usd"]["classification"]) for body in answered)
    # The module docstring's bound: N = 100 in flight, and as many refused beside their decision
    # (one guard stands for 100 instances here: each one's reading said there was room).
    bound = limit + (100 + 100) * classification
    assert spent <= recorded <= bound, (spent, recorded, bound)
    # Every reservation was settled, none leaked; what was recorded beyond the answers is the
    # classifications of requests refused beside their decision, at most one each.
    assert recorded - spent <= len(refused) * classification + 1e-9
    worst = worst_case_usd(config, "standard", [QUADRATIC])
    assert spent > limit - worst - 100 * classification  # and it was not left unused
    for body, headers in refused:  # in-flight reservations: retry after one request budget
        assert body["code"] == "over_budget"
        assert int(headers["Retry-After"]) == math.ceil(config.request_budget_seconds)
        assert not {"spent_usd", "limit_usd"} & set(body)  # when to retry, not the spend
    status, body, headers = later[-1]  # the settled spend is full: retry at midnight
    assert status == 429 and int(headers["Retry-After"]) == 12 * 3600
    print(f"100 concurrent: {len(wave) - len(refused)} answered at once, {len(answered)} in all; "
          f"spent ${spent:.4f} of ${limit} (bound ${bound:.4f})")


def test_the_guard_reads_the_day_once_at_init_and_requests_do_not_wait_for_it(
    monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    """Start-up creates a client and then reads the day's spend (one GetItem), in the
    background; a request waits for the client only, never for the reading."""
    import threading

    import llm_router.governance.budget as budget_module

    calls: list[str] = []
    reading = threading.Event()

    def before_call(model: Any, **_: Any) -> None:
        calls.append(model.name)
        if model.name == "GetItem":
            assert reading.wait(10)  # held until the test has seen the client ready

    dynamodb.meta.events.register("before-call.dynamodb.*", before_call)
    monkeypatch.setattr(budget_module, "dynamodb_client", lambda: dynamodb)
    monkeypatch.setenv(BUDGET_TABLE_ENV, TABLE)
    guard = BudgetGuard.from_env(config_with(budget={"daily_usd": 1.0}), clock=Clock(NOON))
    assert guard is not None
    assert guard.client_ready(wait=5)  # while the reading is still held
    assert not guard.room_expected("standard")  # nothing read yet: reserve first
    reading.set()
    for _ in range(500):
        if guard.room_expected("standard"):
            break
        threading.Event().wait(0.01)
    assert calls == ["GetItem"]
    assert guard.room_expected("standard")  # an empty day: every budget at ok


def test_the_reservation_runs_beside_the_decision_only_while_the_reading_leaves_room(
    dynamodb: Any,
) -> None:
    """ok on the last reading: beside; soft, hard, a refusal today, or no reading: first."""
    guard = BudgetGuard(config_with(budget={"daily_usd": 1.0, "soft_fraction": 0.5}), TABLE,
                        client=dynamodb, clock=Clock(NOON))
    assert not guard.room_expected("standard")  # no reading yet
    guard.read_today()
    assert guard.room_expected("standard")
    assert guard.reserve("standard", 0.4).level == "ok"  # the answer updates the reading: 0.4
    assert guard.room_expected("standard")
    assert guard.reserve("standard", 0.2).level == "ok"  # 0.6 now: soft from here
    assert not guard.room_expected("standard")
    guard.settle(guard.reserve("standard", 0.0), 0.0)
    other = BudgetGuard(guard.config, TABLE, client=dynamodb, clock=Clock(NOON))
    other.read_today()
    assert not other.room_expected("standard")  # another instance reads the same day: soft
    assert other.reserve("standard", 0.5).level == "hard"
    assert not other.room_expected("standard")


# --- through the router --------------------------------------------------------------------


def cheaper_fallback_config(daily_usd: float) -> RoutesConfig:
    """Math answered by Sonnet with Haiku behind it: the soft level must put Haiku first."""
    raw = routes_raw()
    preset = copy.deepcopy(raw["presets"]["blog-2024"])
    preset["answerers"]["math"] = {"pool": [SONNET], "fallbacks": [HAIKU]}
    raw["presets"]["blog-2024"] = preset
    raw["budget"] = {"daily_usd": daily_usd, "soft_fraction": 0.5}
    return parse_routes(raw, preset="blog-2024")


def ask(handler: RouterHandler, question: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = handler(proxy_event(json.dumps({"question": question})), LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def test_the_router_economises_at_soft_refuses_at_hard_and_resets_next_day(
    dynamodb: Any, bedrock_client: Any, fresh_standin: Any
) -> None:
    # A budget of under three worst-case Sonnet answers (each reserves ~$0.0087): the
    # first is ok, the second soft, then hard.
    config = cheaper_fallback_config(daily_usd=0.025)
    clock = Clock(NOON)
    guard = guard_for(config, dynamodb, clock)
    service = build_service("llm-assisted", config, bedrock_client, budget=guard)
    handler = RouterHandler(strategy="llm-assisted", service_factory=lambda: service, eager=True)
    question = "Solve the quadratic equation: 2x^2 - 5x + 3 = 0"

    calls: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    status, first, _ = ask(handler, question)
    assert status == 200, first
    assert calls == ["UpdateItem", "UpdateItem"]  # reserve before the models, settle after
    assert (first["question_classification"], first["answerer_LLM"]) == ("math", SONNET)
    assert first["routing"]["budget"] == "ok"
    spent = first["usage"]["cost_usd"]["total"]
    assert spend_state(guard, "standard").spent_usd == pytest.approx(spent)  # settled: real cost

    # Push the day's spend past the soft threshold (half the budget).
    guard.record("standard", config.raw["budget"]["daily_usd"] * 0.5)
    status, soft, _ = ask(handler, question)
    assert status == 200, soft
    assert soft["routing"]["budget"] == "soft"
    assert soft["answerer_LLM"] == HAIKU  # the cheapest target of the math plan

    guard.record("standard", 1.0)
    status, refused, headers = ask(handler, question)
    assert status == 429, refused
    assert refused["code"] == "over_budget" and "daily budget" in refused["error"]
    retry_after = int(headers["Retry-After"])
    assert retry_after == 12 * 3600  # until midnight UTC
    assert refused["request_id"]

    clock.now = NOON + timedelta(days=1)
    status, next_day, _ = ask(handler, question)
    assert status == 200 and next_day["routing"]["budget"] == "ok"
    assert next_day["answerer_LLM"] == SONNET


def test_the_local_run_counts_spend_in_moto_in_process() -> None:
    import contextlib

    from backends import local_budget

    config = config_with(budget={"daily_usd": 1.0})
    with contextlib.ExitStack() as stack:
        guard, line = local_budget(stack, config)
        assert guard is not None
        assert "moto in this process at http://127.0.0.1:" in line and "$1.00 a day" in line
        guard.record("standard", 0.9)
        assert spend_state(guard, "standard").level == "soft"
    off, line = local_budget(contextlib.ExitStack(), config_with(budget={"daily_usd": None}))
    assert off is None and line.startswith("Budget: off")


def test_from_env_creates_the_client_in_the_background_and_reserve_waits_for_it(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llm_router.governance.budget as budget_module

    release = threading.Event()

    def slow_client() -> Any:
        release.wait(5)
        return dynamodb

    monkeypatch.setattr(budget_module, "dynamodb_client", slow_client)
    monkeypatch.setenv(BUDGET_TABLE_ENV, TABLE)
    guard = BudgetGuard.from_env(config_with(budget={"daily_usd": 1.0}), clock=Clock(NOON))
    assert guard is not None
    dynamodb.update_item(  # the day is already over budget
        TableName=TABLE,
        Key={"pk": {"S": spend_key("2026-11-23")}},
        UpdateExpression="ADD #usd :c",
        ExpressionAttributeNames={"#usd": "usd#stack"},
        ExpressionAttributeValues={":c": {"N": "5"}},
    )
    threading.Timer(0.2, release.set).start()
    reservation = guard.reserve("standard", 0.01)  # waits for the client: not served unchecked
    assert reservation.level == "hard" and reservation.error is None
    state = spend_state(guard, "standard")
    assert state.level == "hard" and state.spent_usd == pytest.approx(5.0)
