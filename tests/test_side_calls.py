"""The writes that end a request (llm_router.pipeline.side_calls): the budget's settlement, the
cache's entry and the conversation's turn are made at once, each exactly once, in the request's
context; one that fails is logged and the answer is still returned."""

from __future__ import annotations

import json
import logging
import threading
from contextvars import ContextVar
from typing import Any

import pytest
from apigw_events import LocalLambdaContext, proxy_event
from llm_router.config import RoutesConfig
from llm_router.edge.handler import RouterHandler
from llm_router.governance.budget import Reservation
from llm_router.models.request_context import current
from llm_router.pipeline.cache.response_cache import MISS, CacheRequest, CacheResult
from llm_router.pipeline.factory import build_service
from llm_router.pipeline.side_calls import write_together
from test_routers import WW2

WAIT = 10.0  # seconds a write waits for the others before the barrier breaks (not concurrent)
_seen: ContextVar[str] = ContextVar("test_end_writes", default="unset")


def test_the_writes_run_at_once_each_in_the_callers_context() -> None:
    barrier = threading.Barrier(3, timeout=WAIT)  # passes only if all three wait at once
    done: list[tuple[str, str]] = []

    def write(name: str) -> Any:
        def run() -> None:
            barrier.wait()
            done.append((name, _seen.get()))

        return run

    token = _seen.set("request-1")
    try:
        write_together([(n, write(n)) for n in ("settle", "cache", "conversation")])
    finally:
        _seen.reset(token)
    assert sorted(done) == [
        ("cache", "request-1"), ("conversation", "request-1"), ("settle", "request-1")
    ]


def test_a_write_that_raises_is_logged_and_the_others_still_happen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("table gone")

    with caplog.at_level(logging.ERROR, logger="llm_router.pipeline.side_calls"):
        write_together([("cache", broken), ("settle", lambda: done.append("settle")),
                        ("conversation", broken)])
    assert done == ["settle"]
    assert sorted(r.getMessage() for r in caplog.records) == [
        "the request's cache write failed; the answer stands",
        "the request's conversation write failed; the answer stands",
    ]


# --- through the router: fakes of the guard, the cache and the store that meet at a barrier -----


class Ends:
    """What the request's end writes did, and the barrier they meet at (None: no meeting)."""

    def __init__(self, parties: int | None, failing: frozenset[str] = frozenset()) -> None:
        self.barrier = threading.Barrier(parties, timeout=WAIT) if parties else None
        self.failing = failing
        self.calls: list[tuple[str, Any]] = []
        self.request_ids: set[str | None] = set()

    def write(self, name: str, detail: Any) -> None:
        if self.barrier is not None:
            self.barrier.wait()
        self.request_ids.add(current().request_id)  # the request's context, in any thread
        self.calls.append((name, detail))
        if name in self.failing:
            raise RuntimeError(f"{name} failed")


class FakeGuard:
    def __init__(self, ends: Ends) -> None:
        self.ends = ends
        self.reserved = 0

    def reserve(self, tier: str, worst_case: float) -> Reservation:
        self.reserved += 1
        return Reservation("ok", 60.0, "2026-12-03", ("stack",), worst_case)

    def room_expected(self, tier: str) -> bool:
        return False  # reserve first: the end writes are what this file is about

    def settle(self, reservation: Reservation, cost_usd: float | None) -> None:
        self.ends.write("settle", cost_usd)


class FakeCache:
    def __init__(self, ends: Ends) -> None:
        self.ends = ends

    def prepare(self, question: str, category: str, *args: Any, **kwargs: Any) -> CacheRequest:
        return CacheRequest(category, "key", None, read=False, write=True)

    def lookup(self, request: CacheRequest) -> CacheResult:
        return CacheResult(MISS)

    def keeping(self, request: CacheRequest, answer: str, *args: Any) -> list[Any]:
        return [("cache", lambda: self.ends.write("cache", answer))]

    def stale(self, request: CacheRequest) -> None:
        return None


class FakeStore:
    def __init__(self, ends: Ends) -> None:
        self.ends = ends

    def load(self, conversation_id: str, owner: str) -> Any:
        raise LookupError(conversation_id)

    def append(self, previous: Any, owner: str, question: str, answer: str, capped: Any) -> str:
        self.ends.write("conversation", question)
        return "c0ffee00-0000-4000-8000-000000000000"


def handler_with(routes: RoutesConfig, client: Any, ends: Ends) -> tuple[RouterHandler, Any]:
    guard = FakeGuard(ends)
    handler = RouterHandler(
        service_factory=lambda: build_service(
            "llm-assisted", routes, client, budget=guard, cache=FakeCache(ends),
            conversations=FakeStore(ends),
        ),
        eager=True,
        tier_keys={},
        feedback_tokens=None,
    )
    return handler, guard


def ask(handler: RouterHandler) -> tuple[int, dict[str, Any]]:
    response = handler(proxy_event(json.dumps({"question": WW2})), LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_an_answer_settles_once_and_keeps_its_answer_and_turn_all_at_once(
    routes: RoutesConfig, bedrock_client: Any, fresh_standin: Any
) -> None:
    ends = Ends(parties=3)
    handler, guard = handler_with(routes, bedrock_client, ends)
    status, body = ask(handler)
    assert status == 200 and body["conversation_id"] == "c0ffee00-0000-4000-8000-000000000000"
    assert guard.reserved == 1
    assert sorted(name for name, _ in ends.calls) == ["cache", "conversation", "settle"]
    assert dict(ends.calls)["settle"] == body["usage"]["cost_usd"]["total"]
    assert dict(ends.calls)["cache"] == body["answer"]
    assert ends.request_ids == {body["request_id"]}


@pytest.mark.parametrize("failing", ["settle", "cache", "conversation"])
def test_a_failing_end_write_is_logged_and_the_answer_still_returned(
    routes: RoutesConfig, bedrock_client: Any, fresh_standin: Any, failing: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ends = Ends(parties=None, failing=frozenset({failing}))
    handler, guard = handler_with(routes, bedrock_client, ends)
    with caplog.at_level(logging.ERROR, logger="llm_router.pipeline.side_calls"):
        status, body = ask(handler)
    assert status == 200 and body["answer"]
    assert sorted(name for name, _ in ends.calls) == ["cache", "conversation", "settle"]
    assert (body["conversation_id"] is None) == (failing == "conversation")
    logged = {"settle": "budget settlement"}.get(failing, failing)
    assert f"the request's {logged} write failed; the answer stands" in caplog.text


def test_calls_made_together_return_in_order_and_raise_the_first_failure() -> None:
    from llm_router.pipeline.side_calls import together

    barrier = threading.Barrier(3, timeout=WAIT)  # passes only if all three run at once
    ended: list[str] = []

    def call(name: str, fail: bool = False) -> Any:
        def run() -> str:
            barrier.wait()
            ended.append(name)
            if fail:
                raise RuntimeError(name)
            return name

        return run

    assert together([call("a"), call("b"), call("c")]) == ["a", "b", "c"]
    barrier.reset()
    ended.clear()
    with pytest.raises(RuntimeError, match="^b$"):
        together([call("a"), call("b", fail=True), call("c", fail=True)])
    assert sorted(ended) == ["a", "b", "c"]  # every call ended before the failure was raised
    assert together([]) == []


def test_a_streamed_answer_keeps_its_turn_with_the_other_end_writes(
    routes: RoutesConfig, bedrock_client: Any, fresh_standin: Any
) -> None:
    """The stream's conversation turn is one of its end writes, not a write after them."""
    ends = Ends(parties=3)
    guard = FakeGuard(ends)
    service = build_service(
        "llm-assisted", routes, bedrock_client, budget=guard, cache=FakeCache(ends),
        conversations=FakeStore(ends),
    )
    kept = service.open_conversation(None, "owner")
    events = list(service.ask_stream_in_conversation(WW2, kept))
    done = events[-1]
    assert done.name == "done"
    assert done.data["conversation_id"] == "c0ffee00-0000-4000-8000-000000000000"
    assert sorted(name for name, _ in ends.calls) == ["cache", "conversation", "settle"]
    answer = "".join(e.data["text"] for e in events if e.name == "delta")
    assert dict(ends.calls)["conversation"] == WW2 and dict(ends.calls)["cache"] == answer
