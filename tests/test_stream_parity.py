"""POST /ask/stream at parity with /ask: the ``done`` event's feedback token (accepted by
POST /feedback), server-kept conversations and the response cache, on moto's DynamoDB and the
Bedrock stand-in, through the shipped streaming handler."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import backends
import pytest
from apigw_events import LocalLambdaContext, proxy_event
from conftest import HAIKU, STANDIN_SOURCE
from llm_router.config import RoutesConfig
from llm_router.edge.feedback import FeedbackHandler
from llm_router.edge.streaming import StreamingResponse, StreamingRouterHandler, deliver
from llm_router.governance.conversation_store import ConversationStore
from llm_router.governance.provenance import FeedbackTokens
from llm_router.pipeline.cache.response_cache import ResponseCache
from llm_router.pipeline.cache.store import CacheStore
from llm_router.pipeline.factory import build_service
from test_cache import HISTORY_Q, config_with

ALICE, BOB = "key-alice", "key-bob"
ANSWER = "The war in Europe ended in May and in Asia in September."
FOLLOW_UP = "Why did it end then?"
TOKENS = FeedbackTokens(lambda: b"stream-parity-secret", ttl_seconds=3600)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        started = backends.local_dynamodb(stack)
        assert started is not None, "moto is a dev requirement"
        yield started[0]


@pytest.fixture
def tables(dynamodb: Any) -> dict[str, str]:
    """Fresh conversation, cache and feedback tables for one test."""
    suffix = uuid.uuid4().hex[:8]
    names = {"conversations": f"conv-{suffix}", "cache": f"cache-{suffix}",
             "feedback": f"feedback-{suffix}"}
    backends.create_local_table(dynamodb, names["conversations"], "conversation_id")
    backends.create_local_table(dynamodb, names["feedback"], "request_id")
    backends.create_cache_table(dynamodb, names["cache"])
    return names


@pytest.fixture
def handler(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, dynamodb: Any,
    tables: dict[str, str],
) -> StreamingRouterHandler:
    """The streaming handler as the streaming function builds it: cache, conversations, tokens."""
    config = config_with(routes)  # history is cached (exact and semantic)
    service = build_service(
        "semantic", config, bedrock_client, semantic_index_dir, STANDIN_SOURCE, budget=None,
        cache=ResponseCache(config, CacheStore(tables["cache"], dynamodb)),
        conversations=ConversationStore(config, tables["conversations"], client=dynamodb),
    )
    return StreamingRouterHandler(
        strategy="semantic", service_factory=lambda: service, eager=True, tier_keys={},
        feedback_tokens=TOKENS,
    )


def parse(chunks: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    pairs = [chunk.decode().split("\n")[:2] for chunk in chunks]
    return [(n.removeprefix("event: "), json.loads(d.removeprefix("data: "))) for n, d in pairs]


def open_stream(
    handler: StreamingRouterHandler, body: dict[str, Any], key: str = ALICE
) -> StreamingResponse:
    return handler.stream(proxy_event(json.dumps(body), api_key_id=key), LocalLambdaContext())


def stream(
    handler: StreamingRouterHandler, body: dict[str, Any], key: str = ALICE
) -> list[tuple[str, dict[str, Any]]]:
    """Every event of a stream its client reads to the end (as the runtime loop delivers it)."""
    response = open_stream(handler, body, key)
    assert response.status == 200, b"".join(response.body)
    written: list[bytes] = []
    deliver(response, written.append)
    return parse(written)


def answer_calls(standin: Any) -> list[dict[str, Any]]:
    return [c for c in standin.calls() if c["api"] in ("converse", "converse-stream")]


def stored_turns(dynamodb: Any, table: str, conversation_id: str) -> list[tuple[str, str]]:
    item = dynamodb.get_item(TableName=table, Key={"conversation_id": {"S": conversation_id}},
                             ConsistentRead=True)["Item"]
    return [(t["M"]["role"]["S"], t["M"]["content"]["S"]) for t in item["turns"]["L"]]


def test_done_carries_a_feedback_token_that_post_feedback_accepts(
    handler: StreamingRouterHandler, routes: RoutesConfig, fresh_standin: Any,
    dynamodb: Any, tables: dict[str, str],
) -> None:
    fresh_standin.script(HAIKU, [ANSWER])
    events = stream(handler, {"question": HISTORY_Q})
    name, done = events[-1]
    assert name == "done" and done["feedback_token"], done
    feedback = FeedbackHandler(routes, tables["feedback"], dynamodb, tokens=TOKENS)
    response = feedback(proxy_event(json.dumps({"feedback_token": done["feedback_token"],
                                                "helpful": True}),
                                    path="/feedback", api_key_id=ALICE), LocalLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["request_id"] == done["request_id"]
    refused = feedback(proxy_event(json.dumps({"feedback_token": done["feedback_token"],
                                               "helpful": True}),
                                   path="/feedback", api_key_id=BOB), LocalLambdaContext())
    assert refused["statusCode"] == 403, refused["body"]  # only the key it was issued to


def test_a_streamed_conversation_of_two_turns_reads_and_stores_its_history(
    handler: StreamingRouterHandler, fresh_standin: Any, dynamodb: Any, tables: dict[str, str],
) -> None:
    fresh_standin.script(HAIKU, [ANSWER, "Because both sides were exhausted."])
    first = stream(handler, {"question": HISTORY_Q})
    conversation_id = first[-1][1]["conversation_id"]
    assert conversation_id and str(uuid.UUID(conversation_id)) == conversation_id
    second = stream(handler, {"question": FOLLOW_UP, "conversation_id": conversation_id})
    assert second[-1][0] == "done" and second[-1][1]["conversation_id"] == conversation_id
    assert second[0][1]["conversation"]["affinity"] == "kept"  # routed as a follow-up
    calls = answer_calls(fresh_standin)
    assert [c["api"] for c in calls] == ["converse-stream"] * 2
    messages = calls[1]["body"]["messages"]  # the answer model read the first exchange
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"][0]["text"] == ANSWER
    assert stored_turns(dynamodb, tables["conversations"], conversation_id) == [
        ("user", HISTORY_Q), ("assistant", ANSWER),
        ("user", FOLLOW_UP), ("assistant", "Because both sides were exhausted."),
    ]


def test_an_unknown_or_another_keys_conversation_is_a_404_before_any_event(
    handler: StreamingRouterHandler, fresh_standin: Any
) -> None:
    fresh_standin.script(HAIKU, [ANSWER])
    conversation_id = stream(handler, {"question": HISTORY_Q})[-1][1]["conversation_id"]
    for body, key in (({"question": FOLLOW_UP, "conversation_id": conversation_id}, BOB),
                      ({"question": FOLLOW_UP, "conversation_id": str(uuid.uuid4())}, ALICE)):
        response = open_stream(handler, body, key)
        assert response.status == 404 and response.headers["Content-Type"] == "application/json"
        assert json.loads(b"".join(response.body))["code"] == "conversation_not_found"
    assert len(answer_calls(fresh_standin)) == 1


def test_the_second_identical_streamed_question_is_a_cache_hit(
    handler: StreamingRouterHandler, fresh_standin: Any
) -> None:
    fresh_standin.script(HAIKU, [ANSWER])
    first = stream(handler, {"question": HISTORY_Q})
    assert first[-1][1]["routing"]["cache"] == "miss"
    second = stream(handler, {"question": HISTORY_Q})
    assert [name for name, _ in second] == ["routing", "delta", "done"]
    assert second[0][1]["cache"] == "hit" and second[1][1]["text"] == ANSWER
    assert second[-1][1]["usage"]["cost_usd"]["answer"] == 0.0
    assert second[-1][1]["feedback_token"] and second[-1][1]["conversation_id"]
    assert len(answer_calls(fresh_standin)) == 1  # no answer model call for the hit


def test_an_abandoned_stream_is_neither_cached_nor_appended(
    handler: StreamingRouterHandler, fresh_standin: Any, dynamodb: Any, tables: dict[str, str],
) -> None:
    fresh_standin.script(HAIKU, [ANSWER, "Because both sides were exhausted."])
    conversation_id = stream(handler, {"question": HISTORY_Q})[-1][1]["conversation_id"]
    follow_up = {"question": FOLLOW_UP, "conversation_id": conversation_id}
    response = open_stream(handler, follow_up)
    written: list[bytes] = []

    def write(chunk: bytes) -> None:  # the client goes away after the first delta
        if len(written) == 2:
            raise BrokenPipeError
        written.append(chunk)

    deliver(response, write)  # the model's stream is still read to its end
    assert [name for name, _ in parse(written)] == ["routing", "delta"]
    assert response.context.abandoned
    assert stored_turns(dynamodb, tables["conversations"], conversation_id) == [
        ("user", HISTORY_Q), ("assistant", ANSWER),
    ]
    # Asked again in the same conversation, the follow-up is answered anew (not a cache hit)
    # and only then stored.
    fresh_standin.script(HAIKU, ["Because both sides were exhausted."])
    again = stream(handler, follow_up)
    assert again[0][1]["cache"] == "miss", again[0]
    assert len(answer_calls(fresh_standin)) == 3
    assert len(stored_turns(dynamodb, tables["conversations"], conversation_id)) == 4


def test_ask_chat_streams_a_kept_conversation_by_its_id(
    handler: StreamingRouterHandler, routes: RoutesConfig, fresh_standin: Any, dynamodb: Any,
    tables: dict[str, str],
) -> None:
    """ask.py --chat streams (its default) and sends the id the router's ``done`` returned."""
    from local_api import ApiSettings, LocalApiServer, LocalGateway
    from local_api.gateway import LOCAL_API_KEY_ID
    from test_ask_chat import KEY, run_chat

    fresh_standin.script(HAIKU, [ANSWER, "Because both sides were exhausted."])
    gateway = LocalGateway(ApiSettings.from_config(routes, KEY), {"semantic": handler},
                           stream_handlers={"semantic": handler})
    with LocalApiServer(gateway, request_log=lambda *_: None) as server:
        result = run_chat(f"{server.url}/semantic", f"{HISTORY_Q}\n{FOLLOW_UP}\n", "--json")
    assert result.returncode == 0, result.stderr
    bodies = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    conversation_id = bodies[0]["conversation_id"]
    assert conversation_id and bodies[1]["conversation_id"] == conversation_id
    calls = answer_calls(fresh_standin)
    assert [c["api"] for c in calls] == ["converse-stream"] * 2
    assert [m["role"] for m in calls[1]["body"]["messages"]] == ["user", "assistant", "user"]
    assert len(stored_turns(dynamodb, tables["conversations"], conversation_id)) == 4
    item = dynamodb.get_item(TableName=tables["conversations"],
                             Key={"conversation_id": {"S": conversation_id}})["Item"]
    assert item["owner"]["S"] == LOCAL_API_KEY_ID  # the caller's key, as API Gateway passes it
