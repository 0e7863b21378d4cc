"""The response cache end to end: the router's real handler, the Bedrock stand-in over HTTP and
moto's DynamoDB server on loopback (the local run's table), with an injectable clock.

Each test gets its own table, so the entries of one never serve another."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apigw_events import LocalLambdaContext, proxy_event
from backends import create_cache_table, local_dynamodb
from conftest import HAIKU, SONNET, STANDIN_SOURCE
from llm_router.config import ConfigError, RoutesConfig, parse_routes
from llm_router.edge.handler import RouterHandler
from llm_router.pipeline.cache.response_cache import ResponseCache, cache_control
from llm_router.pipeline.cache.store import CacheStore
from llm_router.pipeline.factory import build_service

HISTORY_Q = "When did World War II end?"
HISTORY_PARAPHRASE = "In what year did World War II end?"
MATH_Q = "Solve 2x + 3 = 5"
MATH_OTHER_NUMBERS = "Solve 2x + 3 = 7"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        found = local_dynamodb(stack)
        assert found is not None, "moto is a dev requirement"
        yield found[0]


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"cache-{uuid.uuid4().hex[:8]}"
    create_cache_table(dynamodb, name)
    return name


def config_with(routes: RoutesConfig, **changes: Any) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    for path, value in changes.items():
        node = raw
        *parents, last = path.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return parse_routes(raw, preset="blog-2024")


@pytest.fixture
def env(
    routes: RoutesConfig,
    dynamodb: Any,
    table: str,
    bedrock_client: Any,
    semantic_index_dir: Path,
    fresh_standin: Any,
) -> Any:
    """make(strategy, config) -> (handler, cache): one 'Lambda instance' on the shared table."""
    clock = Clock()

    def make(strategy: str = "semantic", config: RoutesConfig | None = None) -> Any:
        config = config or config_with(routes)
        cache = ResponseCache(config, CacheStore(table, dynamodb, clock=clock))
        service = build_service(
            strategy, config, bedrock_client, semantic_index_dir, STANDIN_SOURCE,
            budget=None, cache=cache,
        )
        handler = RouterHandler(strategy=strategy, service_factory=lambda: service, eager=True)
        return handler, cache

    make.clock = clock  # type: ignore[attr-defined]
    make.standin = fresh_standin  # type: ignore[attr-defined]
    return make


def ask(
    handler: RouterHandler, question: str, headers: dict[str, str] | None = None,
    api_key_id: str | None = None, **body: Any,
) -> tuple[int, dict[str, Any]]:
    event = proxy_event(
        json.dumps({"question": question, **body}),
        headers={"Content-Type": "application/json", **(headers or {})},
        api_key_id=api_key_id,
    )
    response = handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def answer_calls(standin: Any) -> int:
    """Calls that reached the stand-in's answer models (every answer target is a Claude)."""
    return sum(1 for c in standin.calls() if c["model_id"] in (HAIKU, SONNET) or "anthropic" in
               c["model_id"])


def test_the_same_question_twice_is_a_hit_with_no_answer_call_and_no_answer_cost(
    env: Any,
) -> None:
    handler, _ = env()
    status, first = ask(handler, HISTORY_Q)
    assert status == 200, first
    assert first["routing"]["cache"] == "miss"
    assert first["usage"]["cost_usd"]["answer"] > 0
    calls = answer_calls(env.standin)
    assert calls == 1

    status, second = ask(handler, "  when did world war ii END ")  # normalised: the same
    assert status == 200, second
    assert second["routing"]["cache"] == "hit"
    assert answer_calls(env.standin) == calls  # no answer model call reached the stand-in
    assert second["answer"] == first["answer"]
    assert second["usage"]["answer"] is None
    assert second["usage"]["cost_usd"]["answer"] == 0.0
    costs = second["usage"]["cost_usd"]
    assert costs["total"] == sum(costs["classification"])
    assert second["routing"]["cache_saved_usd"] == first["usage"]["cost_usd"]["answer"]
    assert second["answerer_LLM"] == first["answerer_LLM"]


def test_a_second_instance_hits_what_the_first_cached(env: Any) -> None:
    first_instance, _ = env()
    second_instance, _ = env()
    assert ask(first_instance, HISTORY_Q)[1]["routing"]["cache"] == "miss"
    status, body = ask(second_instance, HISTORY_Q)
    assert status == 200 and body["routing"]["cache"] == "hit"


@pytest.mark.parametrize("strategy", ["semantic", "hybrid"])
def test_a_close_paraphrase_of_a_history_question_is_a_semantic_hit_without_a_second_embedding(
    env: Any, strategy: str
) -> None:
    handler, _ = env(strategy)
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "miss"
    before = len(env.standin.calls())
    status, body = ask(handler, HISTORY_PARAPHRASE)
    assert status == 200, body
    assert body["routing"]["cache"] == "semantic_hit"
    assert body["routing"]["cache_similarity"] >= 0.9
    calls = env.standin.calls()[before:]
    embeddings = [c for c in calls if "embed" in c["model_id"]]
    assert len(embeddings) == 1  # the classifier's: the cache reused its vector
    assert not [c for c in calls if "anthropic" in c["model_id"]]


def test_a_math_question_with_other_numbers_is_never_served_a_cached_answer(
    env: Any, routes: RoutesConfig
) -> None:
    # Even with the semantic cache turned on for math (off in routes.json), the guard refuses.
    config = config_with(
        routes, cache__categories={"math": {"ttl_seconds": 3600, "semantic": True}},
        cache__semantic_min_similarity=0.5,
    )
    handler, _ = env("semantic", config)
    assert ask(handler, MATH_Q)[1]["routing"]["cache"] == "miss"
    calls = answer_calls(env.standin)
    status, body = ask(handler, MATH_OTHER_NUMBERS)
    assert status == 200 and body["routing"]["cache"] == "miss"
    assert answer_calls(env.standin) == calls + 1
    assert "cache_similarity" not in body["routing"]


def test_math_is_exact_only_in_the_tutor_configuration(routes: RoutesConfig) -> None:
    settings = routes.cache
    assert settings.for_category("history").semantic is True
    assert settings.for_category("math").semantic is False


def test_every_target_down_serves_the_cached_answer_stale_with_200(env: Any) -> None:
    handler, cache = env("llm-assisted")
    status, fresh = ask(handler, HISTORY_Q)
    assert status == 200 and fresh["routing"]["cache"] == "miss"
    ttl = cache.settings.for_category("history").ttl_seconds
    env.clock.now += ttl + 60  # past its TTL, within stale_max_seconds
    for model_id in cache.config.plan_for("history").model_ids():
        env.standin.inject_fault(model_id, "ServiceUnavailableException")
    status, body = ask(handler, HISTORY_Q)
    assert status == 200, body
    assert body["routing"]["cache"] == "stale"
    assert body["answer"] == fresh["answer"]
    assert body["usage"]["cost_usd"]["answer"] == 0.0

    env.clock.now += cache.settings.stale_max_seconds  # beyond the stale limit: the 503 stands
    status, body = ask(handler, HISTORY_Q)
    assert status == 503 and body["code"] == "models_unavailable"


def test_past_its_ttl_an_entry_is_a_miss_when_models_answer(env: Any) -> None:
    handler, cache = env("llm-assisted")
    ask(handler, HISTORY_Q)
    env.clock.now += cache.settings.for_category("history").ttl_seconds
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "miss"


def test_cache_control_no_cache_bypasses_and_refreshes_no_store_keeps_nothing(env: Any) -> None:
    handler, _ = env("llm-assisted")
    status, body = ask(handler, HISTORY_Q, headers={"Cache-Control": "no-store"})
    assert status == 200 and body["routing"]["cache"] == "bypass"
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "miss"  # no-store kept nothing
    calls = answer_calls(env.standin)
    status, body = ask(handler, HISTORY_Q, headers={"cache-control": "no-cache"})
    assert body["routing"]["cache"] == "bypass" and answer_calls(env.standin) == calls + 1
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "hit"
    assert cache_control("max-age=0, No-Cache") == (False, True)
    assert cache_control(None) == (True, True)


def test_a_category_switched_off_is_bypassed(env: Any, routes: RoutesConfig) -> None:
    config = config_with(routes, cache__categories={"math": {"enabled": False}})
    handler, _ = env("llm-assisted", config)
    for _ in range(2):
        status, body = ask(handler, MATH_Q)
        assert status == 200 and body["routing"]["cache"] == "bypass"


def test_entries_are_scoped_by_tier_or_by_api_key(env: Any, routes: RoutesConfig) -> None:
    tiers = {"default": "standard", "definitions": {"standard": {}, "pro": {}}}
    handler, _ = env("llm-assisted", config_with(routes, tiers=tiers))
    handler._tier_keys = {"key-pro": "pro"}
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "miss"
    assert ask(handler, HISTORY_Q, api_key_id="key-pro")[1]["routing"]["cache"] == "miss"
    assert ask(handler, HISTORY_Q, api_key_id="key-pro")[1]["routing"]["cache"] == "hit"

    by_key, _ = env("llm-assisted", config_with(routes, cache__scope="api_key"))
    assert ask(by_key, MATH_Q, api_key_id="alice")[1]["routing"]["cache"] == "miss"
    assert ask(by_key, MATH_Q, api_key_id="bob")[1]["routing"]["cache"] == "miss"
    assert ask(by_key, MATH_Q, api_key_id="alice")[1]["routing"]["cache"] == "hit"


def test_a_follow_up_is_served_only_after_the_same_conversation(env: Any) -> None:
    handler, _ = env("semantic")
    question = "And when did it start?"
    ww2 = [{"role": "user", "content": HISTORY_Q}, {"role": "assistant", "content": "In 1945."}]
    ww1 = [{"role": "user", "content": "When did World War I end?"},
           {"role": "assistant", "content": "In 1918."}]
    assert ask(handler, question, history=ww2)[1]["routing"]["cache"] == "miss"
    assert ask(handler, question, history=ww1)[1]["routing"]["cache"] == "miss"
    assert ask(handler, question)[1]["routing"]["cache"] == "miss"  # alone: another context
    assert ask(handler, question, history=ww2)[1]["routing"]["cache"] == "hit"


def test_changing_the_answer_configuration_invalidates(env: Any, routes: RoutesConfig) -> None:
    handler, _ = env("llm-assisted")
    ask(handler, HISTORY_Q)
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "hit"
    changed = config_with(routes, answering__max_tokens=256)
    other, _ = env("llm-assisted", changed)
    assert ask(other, HISTORY_Q)[1]["routing"]["cache"] == "miss"


def test_nothing_cached_is_logged(env: Any, caplog: pytest.LogCaptureFixture, capsys: Any) -> None:
    # At the function's level (INFO; botocore's own DEBUG wire dump is never on in Lambda).
    handler, _ = env("semantic")
    with caplog.at_level(logging.INFO):
        _, first = ask(handler, HISTORY_Q)
        _, second = ask(handler, HISTORY_Q)
    assert second["routing"]["cache"] == "hit"
    logged = caplog.text + capsys.readouterr().out
    assert "World War" not in logged
    assert first["answer"][:40] not in logged


def test_a_failing_table_is_a_miss_not_an_error(env: Any, dynamodb: Any, routes: RoutesConfig,
                                                bedrock_client: Any) -> None:
    cache = ResponseCache(config_with(routes), CacheStore("no-such-table", dynamodb))
    service = build_service("llm-assisted", cache.config, bedrock_client, budget=None, cache=cache)
    handler = RouterHandler(strategy="llm-assisted", service_factory=lambda: service, eager=True)
    for _ in range(2):
        status, body = ask(handler, HISTORY_Q)
        assert status == 200 and body["routing"]["cache"] == "miss"


def test_purge_by_category_and_entirely(env: Any, dynamodb: Any, table: str) -> None:
    from cache import purge

    handler, _ = env("semantic")
    ask(handler, HISTORY_Q)
    ask(handler, MATH_Q)
    assert purge(dynamodb, table, "math") == 1
    assert ask(handler, MATH_Q)[1]["routing"]["cache"] == "miss"
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "hit"
    assert purge(dynamodb, table) == 3  # history entry + its semantic candidate + math again
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "miss"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"scope": "user"}, "cache.scope"),
        ({"categories": {"poetry": {}}}, "not a category"),
        ({"categories": {"math": {"ttl_seconds": 0}}}, "ttl_seconds"),
        ({"categories": {"math": {"semantic": "yes"}}}, "semantic"),
        ({"semantic_min_similarity": 1.5}, "semantic_min_similarity"),
        ({"ttl": 5}, "unknown key"),
    ],
)
def test_a_bad_cache_section_is_a_config_error(
    routes: RoutesConfig, section: dict[str, Any], message: str
) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    raw["cache"] = section
    with pytest.raises(ConfigError, match=message):
        parse_routes(raw, preset="blog-2024")


def test_metrics_count_hits_misses_stale_and_the_money_saved() -> None:
    from llm_router.observability import metric_catalog as mc
    from llm_router.observability.telemetry import metric_values

    def values(**record: Any) -> dict[str, float]:
        return {s.name: v for s, v in metric_values({"status": 200, **record})}

    hit = values(cache="semantic_hit", cache_saved_usd=0.0004)
    assert hit[mc.CACHE_HITS.name] == hit[mc.CACHE_SEMANTIC_HITS.name] == 1
    assert hit[mc.CACHE_SAVED.name] == 0.0004
    assert mc.CACHE_MISSES.name not in hit
    miss = values(cache="miss", cache_saved_usd=None)
    assert miss[mc.CACHE_MISSES.name] == 1 and mc.CACHE_SAVED.name not in miss
    stale = values(cache="stale", cache_saved_usd=0.005)
    assert stale[mc.CACHE_STALE.name] == 1 and mc.CACHE_HITS.name not in stale
    assert values(cache="bypass").keys() == values().keys()


def test_cache_py_purges_a_category_then_everything(
    env: Any, dynamodb: Any, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import cache as cache_script

    handler, _ = env("llm-assisted")
    ask(handler, HISTORY_Q)
    ask(handler, MATH_Q)
    assert cache_script.main(["purge", "--table", table, "--category", "math"], dynamodb) == 0
    assert "deleted 1 items of category 'math'" in capsys.readouterr().out
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "hit"
    assert cache_script.main(["purge", "--table", table], dynamodb) == 0
    assert "deleted 1 items of every category" in capsys.readouterr().out
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "miss"
    assert cache_script.main(["purge", "--table", "missing"], dynamodb) == 1
    assert "ResourceNotFoundException" in capsys.readouterr().err


def test_the_cost_calculator_prices_the_cache_against_what_it_saves(routes: RoutesConfig) -> None:
    from decimal import Decimal

    import cost_calculator
    from costs import compute_answers, load_scenario
    from costs.cache_saving import compute_cache

    scenario = load_scenario()
    assert compute_cache(scenario, routes) is None  # the blog has no cache: left out
    answers = {line.category: line.monthly_cost for line in compute_answers(scenario)}
    none = compute_cache({**scenario, "cache": {**scenario["cache"], "hit_rate": 0}}, routes)
    assert none is not None and none["answers_saved"] == 0 and none["cache_cost"] > 0
    result = compute_cache(
        {**scenario, "cache": {**scenario["cache"], "hit_rate": Decimal("0.3")}}, routes
    )
    assert result is not None
    by_category = {line["category"]: line for line in result["categories"]}
    for name, line in by_category.items():
        assert line["answers_saved"] == answers[name] * Decimal("0.3")
        assert line["net_saving"] == line["answers_saved"] - line["cache_cost"]
    # The semantic category pays for its candidate queries; fewer misses write less.
    assert by_category["history"]["cache_cost"] > by_category["math"]["cache_cost"]
    assert by_category["math"]["cache_cost"] < none["categories"][1]["cache_cost"]
    text = cost_calculator.run(["--cache-hit-rate", "0.3"])
    assert "Response cache at a 30% hit rate" in text and "saved" in text
    assert "Response cache" not in cost_calculator.run([])
    per_category = cost_calculator.run(
        ["--cache-hit-rate", "history=0.5", "--cache-hit-rate", "math=0", "--format", "json"]
    )
    lines = {c["category"]: c for c in json.loads(per_category)["cache"]["categories"]}
    assert lines["history"]["hit_rate"] == 0.5 and lines["math"]["answers_saved"] == 0


def test_the_function_finds_its_cache_table_in_the_environment(
    routes: RoutesConfig, monkeypatch: pytest.MonkeyPatch, bedrock_client: Any
) -> None:
    from llm_router.config.cache import CACHE_TABLE_ENV

    assert ResponseCache.from_env(routes) is None  # no table, no cache
    assert build_service("llm-assisted", routes, bedrock_client, budget=None).cache is None
    monkeypatch.setenv(CACHE_TABLE_ENV, "router-cache")
    cache = ResponseCache.from_env(routes)
    assert cache is not None and cache.store.table_name == "router-cache"
    assert cache.store.ready(wait=5)  # the client was made in the background
    service = build_service("llm-assisted", routes, bedrock_client, budget=None)
    assert isinstance(service.cache, ResponseCache)
    assert ResponseCache.from_env(config_with(routes, cache__enabled=False)) is None


def test_with_a_budget_table_the_cache_and_conversations_use_the_guards_one_client(
    routes: RoutesConfig, monkeypatch: pytest.MonkeyPatch, bedrock_client: Any
) -> None:
    """One DynamoDB client for the function's tables: one service model loaded at init, one
    connection pool (in AWS, one TLS handshake in the first request instead of three)."""
    import llm_router.governance.budget as budget_module
    from llm_router.config.cache import CACHE_TABLE_ENV
    from llm_router.config.settings import BUDGET_TABLE_ENV, CONVERSATION_TABLE_ENV

    made: list[object] = []

    def dynamodb_client(**_: Any) -> object:
        made.append(object())
        return made[-1]

    monkeypatch.setattr(budget_module, "dynamodb_client", dynamodb_client)
    for variable in (BUDGET_TABLE_ENV, CACHE_TABLE_ENV, CONVERSATION_TABLE_ENV):
        monkeypatch.setenv(variable, f"table-{variable}")
    service = build_service("llm-assisted", routes, bedrock_client)
    assert service.budget is not None and service.cache is not None
    assert service.cache.store.ready(wait=5)  # the guard's warm-up, which made the client
    assert service.conversations is not None
    assert service.cache.store.client is service.budget.client
    assert service.conversations.client is service.budget.client  # type: ignore[attr-defined]
    assert len(made) == 1


def test_a_paraphrase_finds_its_question_however_many_others_were_cached_since(
    env: Any, routes: RoutesConfig
) -> None:
    # Candidates are partitioned by the guard's facts: newer questions about other things never
    # push the original out of the few a lookup reads.
    handler, _ = env("semantic", config_with(routes, cache__max_candidates=1))
    assert ask(handler, HISTORY_Q)[1]["routing"]["cache"] == "miss"
    for other in ("Why did the Roman Empire fall?", "Who was Napoleon Bonaparte?",
                  "What caused the French Revolution?"):
        assert ask(handler, other)[1]["routing"]["cache"] == "miss"
    assert ask(handler, HISTORY_PARAPHRASE)[1]["routing"]["cache"] == "semantic_hit"


def test_the_exact_entry_and_the_semantic_candidates_are_read_at_once(
    routes: RoutesConfig,
) -> None:
    """One round trip, not two: the Query for candidates runs while the GetItem does (each
    waits at a barrier that only both together pass), and a failing one is still a miss."""
    import threading

    from llm_router.pipeline.cache.guard import facts
    from llm_router.pipeline.cache.response_cache import MISS, CacheRequest

    barrier = threading.Barrier(2, timeout=10)

    class BothAtOnce:
        fail = False

        def ready(self, wait: float) -> bool:
            return True

        def now(self) -> int:
            return 0

        def get(self, key: str) -> None:
            barrier.wait()
            return None

        def candidates(self, partition: str, limit: int) -> list[Any]:
            barrier.wait()
            if self.fail:
                raise RuntimeError("Query failed")
            return []

    store = BothAtOnce()
    cache = ResponseCache(config_with(routes), store)  # type: ignore[arg-type]
    settings = cache.settings.for_category(next(iter(routes.categories)))
    request = CacheRequest(
        "c", "key", settings, partition="p", vector=[1.0], facts=facts("When did it end?")
    )
    assert cache.lookup(request).status == MISS
    store.fail = True
    assert cache.lookup(request).status == MISS  # logged, not raised
    assert not barrier.broken


def test_a_fresh_answer_keeps_its_entry_and_candidate_at_once(routes: RoutesConfig) -> None:
    """Two end writes, not one after the other: the entry's PutItem and the candidate's meet at
    a barrier only both together pass; one failing (logged) leaves the other written."""
    import threading

    from llm_router.pipeline.cache.guard import facts
    from llm_router.pipeline.cache.response_cache import CacheRequest
    from llm_router.pipeline.side_calls import write_together

    barrier = threading.Barrier(2, timeout=10)
    written: list[str] = []

    class BothAtOnce:
        fail = ""

        def ready(self, wait: float) -> bool:
            return True

        def now(self) -> int:
            return 100

        def put(self, key: str, entry: Any) -> None:
            barrier.wait()
            if self.fail == "entry":
                raise RuntimeError("PutItem failed")
            written.append(f"entry {key} {entry.fresh_until}")

        def put_candidate(self, partition: str, key: str, vector: Any, found: Any,
                          entry: Any) -> None:
            barrier.wait()
            written.append(f"candidate {partition} {key} {entry.fresh_until}")

    store = BothAtOnce()
    cache = ResponseCache(config_with(routes), store)  # type: ignore[arg-type]
    settings = cache.settings.for_category(next(iter(routes.categories)))
    assert settings is not None
    request = CacheRequest(
        "c", "key", settings, partition="p", vector=[1.0], facts=facts("When did it end?")
    )
    writes = cache.keeping(request, "1945.", "model", "target", 0.001)
    assert [name for name, _ in writes] == ["cache", "cache candidate"]
    write_together(writes)
    fresh_until = 100 + settings.ttl_seconds
    assert sorted(written) == [f"candidate p key {fresh_until}", f"entry key {fresh_until}"]
    assert not barrier.broken

    written.clear()
    store.fail = "entry"
    write_together(cache.keeping(request, "1945.", "model", "target", 0.001))
    assert written == [f"candidate p key {fresh_until}"]  # a lookup finds no entry: a miss
    exact_only = CacheRequest("c", "key", settings)
    assert [name for name, _ in cache.keeping(exact_only, "1945.", "m", "t", None)] == ["cache"]
    assert cache.keeping(exact_only, "   ", "m", "t", None) == []
