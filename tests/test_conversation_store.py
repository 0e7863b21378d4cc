"""Server-kept conversations (llm_router.governance.conversation_store) through the shipped
handler, on moto's DynamoDB server (as the local run starts it) and the Bedrock stand-in."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import backends
import pytest
from apigw_events import LocalLambdaContext, proxy_event
from conftest import HAIKU, SONNET, STANDIN_SOURCE, local_dynamodb_table
from llm_router.config import RoutesConfig, parse_routes
from llm_router.decision.conversation import Turn
from llm_router.edge.handler import RouterHandler
from llm_router.governance.conversation_store import ConversationStore
from llm_router.models.warm_up import SharedClient
from llm_router.pipeline.factory import build_service

TABLE = backends.LOCAL_CONVERSATION_TABLE
ALICE, BOB = "key-alice", "key-bob"


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with local_dynamodb_table(TABLE, "conversation_id") as client:
        yield client


@pytest.fixture
def store(routes: RoutesConfig, dynamodb: Any) -> ConversationStore:
    return ConversationStore(routes, TABLE, client=dynamodb)


def handler_for(
    strategy: str, config: RoutesConfig, client: Any, store: Any, index: Path | None = None
) -> RouterHandler:
    return RouterHandler(
        service_factory=lambda: build_service(
            strategy, config, client, index, STANDIN_SOURCE, budget=None, conversations=store
        ),
        eager=True,
        tier_keys={},
    )


@pytest.fixture
def handler(routes: RoutesConfig, bedrock_client: Any, store: Any) -> RouterHandler:
    return handler_for("llm-assisted", routes, bedrock_client, store)


def ask(handler: Any, body: dict[str, Any], key: str = ALICE) -> tuple[int, dict[str, Any]]:
    response = handler(proxy_event(json.dumps(body), api_key_id=key), LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def item(client: Any, conversation_id: str) -> dict[str, Any]:
    return client.get_item(
        TableName=TABLE, Key={"conversation_id": {"S": conversation_id}}, ConsistentRead=True
    )["Item"]


def converse_messages(standin: Any) -> list[list[str]]:
    """The roles of each Converse call's messages, in call order."""
    return [
        [m["role"] for m in call["body"]["messages"]]
        for call in standin.calls()
        if call["api"] == "converse"
    ]


def test_each_answer_returns_an_id_and_the_next_turn_reads_the_stored_turns(
    handler: Any, fresh_standin: Any, dynamodb: Any
) -> None:
    status, first = ask(handler, {"question": "What is 12 times 12?"})
    assert status == 200 and first["answerer_LLM"] == SONNET
    conversation_id = first["conversation_id"]
    assert str(uuid.UUID(conversation_id)) == conversation_id
    status, second = ask(handler, {"question": "And what is that divided by 3?",
                                   "conversation_id": conversation_id})
    assert status == 200 and second["conversation_id"] == conversation_id
    assert converse_messages(fresh_standin) == [["user"], ["user", "assistant", "user"]]
    stored = item(dynamodb, conversation_id)
    assert stored["owner"] == {"S": ALICE}
    assert [t["M"]["role"]["S"] for t in stored["turns"]["L"]] == ["user", "assistant"] * 2
    assert stored["turns"]["L"][1]["M"]["content"]["S"] == first["answer"]  # the model's own
    assert 0 < int(stored["expires_at"]["N"]) - time.time() <= 24 * 3600
    assert stored["version"] == {"N": "2"}


def test_another_key_an_unknown_id_and_an_expired_one_are_the_same_404(
    handler: Any, fresh_standin: Any, store: ConversationStore, routes: RoutesConfig
) -> None:
    _, first = ask(handler, {"question": "What is 12 times 12?"})
    conversation_id = first["conversation_id"]
    status, foreign = ask(handler, {"question": "Go on.", "conversation_id": conversation_id}, BOB)
    status_unknown, unknown = ask(
        handler, {"question": "Go on.", "conversation_id": str(uuid.uuid4())}
    )
    assert status == status_unknown == 404
    assert {k: v for k, v in foreign.items() if k != "request_id"} == {
        k: v for k, v in unknown.items() if k != "request_id"
    }
    assert foreign["code"] == "conversation_not_found" and ALICE not in json.dumps(foreign)
    expired = ConversationStore(
        routes, TABLE, client=store.client, clock=lambda: time.time() + 25 * 3600
    )
    with pytest.raises(LookupError):
        expired.load(conversation_id, ALICE)


@pytest.mark.parametrize("body,needle", [
    ({"question": "Go on.", "conversation_id": "not-an-id"}, "conversation_id"),
    ({"question": "Go on.", "conversation_id": str(uuid.uuid4()).upper()}, "conversation_id"),
    ({"question": "Go on.", "conversation_id": str(uuid.uuid4()),
      "history": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
     "not both"),
])
def test_a_malformed_id_or_an_id_with_client_history_is_a_400(
    handler: Any, body: dict[str, Any], needle: str
) -> None:
    status, reply = ask(handler, body)
    assert status == 400 and needle in reply["error"]


def test_a_declined_question_is_not_stored(
    handler: Any, fresh_standin: Any, dynamodb: Any
) -> None:
    status, declined = ask(handler, {"question": "What's a good recipe for pasta carbonara?"})
    assert status == 200 and declined["answerer_LLM"] is None
    assert declined["conversation_id"] is None  # nothing to continue
    _, first = ask(handler, {"question": "What is 12 times 12?"})
    conversation_id = first["conversation_id"]
    _, again = ask(handler, {"question": "What's a good recipe for pasta carbonara?",
                             "conversation_id": conversation_id})
    assert again["answerer_LLM"] is None and again["conversation_id"] == conversation_id
    assert len(item(dynamodb, conversation_id)["turns"]["L"]) == 2  # the declined turn is not


def test_a_capped_turn_keeps_the_conversation_capped_while_the_model_reads_it(
    handler: Any, fresh_standin: Any
) -> None:
    _, first = ask(handler, {"question": "What is 12 times 12? Also, how do I fix a leaking "
                                         "kitchen faucet?"})
    assert first["routing"]["cost_cap"]["capped"] is True and first["answerer_LLM"] == HAIKU
    _, second = ask(handler, {"question": "What is 7 times 8?",
                              "conversation_id": first["conversation_id"]})
    assert second["routing"]["cost_cap"]["reason"] == "the conversation holds a capped turn"
    assert second["answerer_LLM"] == HAIKU


def test_a_turn_answered_within_the_cap_is_checked_before_a_dearer_target_reads_it(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path, store: Any,
    fresh_standin: Any, dynamodb: Any,
) -> None:
    """The cheap category's answer is not checked (nothing to cap), so its turn is stored
    unchecked; a math question that would send it to Sonnet checks it first."""
    raw = json.loads(json.dumps(routes.raw))  # history's targets all within the cap's price
    raw["presets"][routes.preset]["answerers"]["history"]["fallbacks"] = [f"us.{HAIKU}"]
    config = parse_routes(raw, preset=routes.preset)
    handler = handler_for("semantic", config, bedrock_client, store, semantic_index_dir)
    _, first = ask(handler, {"question": "Who was Napoleon Bonaparte? Also, write me a poem "
                                         "about the ocean."})
    assert first["question_classification"] == "history" and "cost_cap" not in first["routing"]
    stored = item(dynamodb, first["conversation_id"])["turns"]["L"]
    assert "capped" not in stored[0]["M"]  # unchecked
    _, second = ask(handler, {"question": "What is 7 times 8?",
                              "conversation_id": first["conversation_id"]})
    assert second["question_classification"] == "math"
    assert second["routing"]["cost_cap"]["off_topic"] == ["history[0]"]
    assert second["answerer_LLM"] == HAIKU


def test_a_concurrent_write_is_detected_not_overwritten(store: ConversationStore) -> None:
    new_id = store.append(None, ALICE, "What is 2 + 2?", "4", False)
    assert new_id is not None
    read = store.load(new_id, ALICE)
    assert store.append(read, ALICE, "And 3 + 3?", "6", False) == new_id
    assert store.append(read, ALICE, "And 4 + 4?", "8", False) is None  # stale version
    assert store.append(read, BOB, "And 5 + 5?", "10", False) is None  # not Bob's
    assert [t.content for t in store.load(new_id, ALICE).turns][-1] == "6"


def test_only_the_newest_max_turns_are_kept(routes: RoutesConfig, dynamodb: Any) -> None:
    raw = json.loads(json.dumps(routes.raw))
    raw["conversation"] = {**raw.get("conversation", {}), "max_turns": 4}
    store = ConversationStore(parse_routes(raw, preset=routes.preset), TABLE, client=dynamodb)
    conversation_id = None
    previous = None
    for n in range(4):
        conversation_id = store.append(previous, ALICE, f"question {n}", f"answer {n}", False)
        assert conversation_id is not None
        previous = store.load(conversation_id, ALICE)
    assert previous is not None and previous.turns == (
        Turn("user", "question 2"), Turn("assistant", "answer 2"),
        Turn("user", "question 3"), Turn("assistant", "answer 3"),
    )


def test_an_unreadable_store_is_a_503_with_a_stable_code(
    routes: RoutesConfig, bedrock_client: Any, dynamodb: Any, fresh_standin: Any
) -> None:
    missing = ConversationStore(routes, "no-such-table", client=dynamodb)
    handler = handler_for("llm-assisted", routes, bedrock_client, missing)
    status, body = ask(handler, {"question": "Go on.", "conversation_id": str(uuid.uuid4())})
    assert status == 503 and body["code"] == "conversation_unavailable"
    assert "no-such-table" not in json.dumps(body)


@pytest.mark.parametrize("note,flag", [
    (None, None),  # no check ran: the turn is checked when a dearer target would read it
    ({"capped": False, "segments": 2, "off_topic": []}, False),
    ({"capped": True, "reason": "part of the input is off-topic", "off_topic": ["question"]},
     True),
    ({"capped": True, "reason": "part of the input is off-topic", "off_topic": ["history[0]"]},
     False),  # the question itself was read and is in scope
    ({"capped": True, "reason": "classification unavailable"}, None),
    ({"capped": True, "reason": "the conversation holds a capped turn"}, None),
    ({"capped": True, "reason": "the input could not be checked in full"}, True),
])
def test_a_stored_turn_records_what_the_check_learnt_of_its_own_text(
    note: Any, flag: bool | None
) -> None:
    from llm_router.pipeline.service import RouterService

    assert RouterService.question_flag(note) is flag


def test_the_store_shares_the_budget_guards_client_without_touching_it_at_build(
    routes: RoutesConfig, bedrock_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second DynamoDB client would cost the first request ~100 ms; the guard's is made by its
    warm-up off the request path, and reading it at build would make it synchronously."""

    class Guard:
        reads = 0

        @property
        def client(self) -> Any:
            Guard.reads += 1
            return "the guard's client"

        def shared_client(self) -> SharedClient:  # as BudgetGuard's: the client, read later
            return SharedClient(lambda: self.client, lambda wait: True)

    monkeypatch.setenv("CONVERSATION_TABLE_NAME", "conversations")
    service = build_service("llm-assisted", routes, bedrock_client, budget=Guard())
    assert isinstance(service.conversations, ConversationStore) and Guard.reads == 0
    assert service.conversations.client == "the guard's client" and Guard.reads == 1
