"""llm_router.decision.conversation: history validation, Converse messages, and follow-up routing.

Routing is tested twice: with stub classifiers (every branch of the rule, each call's usage), and
with the real routers over the Bedrock stand-in (what the dev set measures), including the
evaluation floors of the conversation dev set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HAIKU, STANDIN_SOURCE
from evaluation import conversations as conv_eval
from llm_router.config import OUT_OF_SCOPE, ConfigError, RoutesConfig, parse_routes
from llm_router.decision.classification import Classification, ModelUsage
from llm_router.decision.conversation import (
    ConversationError,
    Turn,
    context_text,
    converse_messages,
    history_messages,
    parse_conversation,
    parse_history,
    route_followup,
)
from llm_router.models.answering import ConverseAnswerer
from llm_router.pipeline.factory import build_service
from llm_router.pipeline.service import RouterService

from layers import REPO_ROOT

DEV_SET = REPO_ROOT / "eval" / "conversations_dev.jsonl"
ROME = "What led to the fall of the Western Roman Empire?"
ROME_ANSWER = "Political instability, economic decline and pressure from migrating peoples."


def turns(*contents: str) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[i % 2], "content": c} for i, c in enumerate(contents)]


def with_conversation(routes: RoutesConfig, **section: Any) -> RoutesConfig:
    raw = copy.deepcopy(dict(routes.raw))
    raw["conversation"] = {**raw.get("conversation", {}), **section}
    return parse_routes(raw)


# --- validation ----------------------------------------------------------------------------------


def test_a_valid_history_becomes_turns(routes: RoutesConfig) -> None:
    history = parse_history(turns(ROME, ROME_ANSWER), routes)
    assert history == (Turn("user", ROME), Turn("assistant", ROME_ANSWER))
    assert parse_history(None, routes) == ()
    assert parse_history([], routes) == ()


@pytest.mark.parametrize("value,message", [
    ("hi", r'"history" must be an array'),
    ([["user", "hi"]], r'"history"\[0\] must be an object'),
    ([{"role": "system", "content": "x"}, {"role": "assistant", "content": "y"}],
     r'"history"\[0\]\.role must be "user" or "assistant"'),
    (turns("q", "a", "q2"), r'must end with an "assistant" turn'),
    ([{"role": "assistant", "content": "a"}], r'"history"\[0\]\.role is "assistant" but "user"'),
    (turns("q") + [{"role": "user", "content": "again"}, {"role": "assistant", "content": "a"}],
     r'"history"\[1\]\.role is "user" but "assistant" was expected'),
    (turns("q", "   "), r'"history"\[1\]\.content must be a non-empty string'),
    (turns("q", 7), r'"history"\[1\]\.content must be a non-empty string'),
    (turns("q\ud800", "a"), r"unpaired surrogate"),
    ([{"role": "user", "content": "q", "name": "x"}, {"role": "assistant", "content": "a"}],
     r"unknown field\(s\) name"),
])
def test_invalid_histories_are_400s_naming_the_turn(
    value: Any, message: str, routes: RoutesConfig
) -> None:
    with pytest.raises(ConversationError, match=message):
        parse_history(value, routes)


def test_limits_are_400s_naming_the_limit(routes: RoutesConfig) -> None:
    config = with_conversation(routes, max_turns=4, max_total_chars=30)
    parse_history(turns("q1", "a1", "q2", "a2"), config)
    with pytest.raises(ConversationError, match=r"6 turns; the maximum is 4 \(conversation"):
        parse_history(turns("q1", "a1", "q2", "a2", "q3", "a3"), config)
    with pytest.raises(ConversationError, match=r"31 characters; the maximum is 30 \(conversat"):
        parse_history(turns("q" * 16, "a" * 15), config)


@pytest.mark.parametrize("section,message", [
    ({"max_turns": 0}, "conversation.max_turns must be a whole number"),
    ({"context_turns": True}, "conversation.context_turns must be a whole number"),
    ({"clear_min_similarity": 2}, r"conversation.clear_min_similarity must be a similarity"),
    ({"clear_min_margin": "x"}, "conversation.clear_min_margin must be a number"),
    ({"max_chars": 3}, r"conversation: unknown key\(s\) max_chars"),
])
def test_bad_settings_are_config_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_conversation({"conversation": section})


def test_defaults_without_a_section() -> None:
    settings = parse_conversation({})
    assert settings.max_turns == 20 and settings.context_turns >= 1


def test_converse_messages_alternate_and_end_with_the_question() -> None:
    history = (Turn("user", ROME), Turn("assistant", ROME_ANSWER))
    messages = converse_messages(history, "Why did that happen?")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[-1] == {"role": "user", "content": [{"text": "Why did that happen?"}]}
    assert history_messages(history) == messages[:-1]


def test_context_keeps_the_newest_user_turns_within_the_limit() -> None:
    history = tuple(Turn(r, c) for r, c in
                    [("user", "first"), ("assistant", "a"), ("user", "second"),
                     ("assistant", "b"), ("user", "third"), ("assistant", "c")])
    assert context_text(history, 2, 100) == "second\nthird"
    assert context_text(history, 5, 100, "why?") == "first\nsecond\nthird\nwhy?"
    assert context_text(history, 5, 11, "why?") == "third\nwhy?"
    assert context_text(history, 5, 3) == "ird"  # one turn over the limit keeps its end
    assert len(context_text(history, 5, 12, "why?")) <= 12


# --- the rule, with stub classifiers -------------------------------------------------------------


def semantic(category: str, **scores: float) -> Classification:
    """A semantic-style decision: per-label best similarity, as SemanticClassifier reports."""
    return Classification(category, "embed", 0.01, (ModelUsage("embed", 5, 0),),
                          {"label_similarity": scores, "decided_by": "semantic"})


def llm(category: str) -> Classification:
    return Classification(category, "llm", 0.02, (ModelUsage("llm", 50, 1),),
                          {"classifier_output": category, "decided_by": "llm"})


def stub(answers: dict[str, Classification]) -> tuple[Callable[[str], Classification], list[str]]:
    asked: list[str] = []

    def classify(text: str) -> Classification:
        asked.append(text)
        return answers[text]

    return classify, asked


HISTORY = (Turn("user", ROME), Turn("assistant", ROME_ANSWER))
PREVIOUS_HISTORY = semantic("history", history=0.9, math=0.2, out_of_scope=0.2)


def test_no_history_is_a_new_conversation(routes: RoutesConfig) -> None:
    classify, asked = stub({"Who was Caesar?": semantic("history", history=0.8, math=0.1)})
    decision = route_followup("Who was Caesar?", (), classify, routes)
    assert decision.category == "history" and asked == ["Who was Caesar?"]
    assert decision.details["conversation"]["affinity"] == "new_conversation"


def test_an_unclear_off_topic_follow_up_keeps_the_conversation(routes: RoutesConfig) -> None:
    why = semantic(OUT_OF_SCOPE, history=0.21, math=0.16, out_of_scope=0.24)
    classify, asked = stub({ROME: PREVIOUS_HISTORY, "why?": why})
    decision = route_followup("why?", HISTORY, classify, routes)
    assert decision.category == "history"
    conversation = decision.details["conversation"]
    assert conversation["affinity"] == "kept"
    assert conversation["previous_category"] == "history"
    assert conversation["question_alone"] == OUT_OF_SCOPE
    assert "follow-up" in conversation["reason"]
    assert asked == [ROME, "why?"]
    assert len(decision.usages) == 2  # both calls are billed
    assert decision.seconds == pytest.approx(0.02)


# A semantic decision on the turn after a history one: (question, its classification, the
# category routed to, the conversation fields the decision reports).
AFTER_HISTORY = [
    pytest.param(
        "What about a pentagon?",
        semantic("math", history=0.28, math=0.31, out_of_scope=0.2),
        "history",
        {"affinity": "kept"},
        id="a-weak-lean-to-another-category-keeps-the-conversation",
    ),
    pytest.param(
        "Solve 4x + 2 = 18.",
        semantic("math", history=0.2, math=0.8, out_of_scope=0.1),
        "math",
        {"affinity": "topic_changed", "previous_category": "history"},
        id="a-clear-new-topic-re-routes",
    ),
    pytest.param(
        "A lasagna recipe?",
        semantic(OUT_OF_SCOPE, history=0.26, math=0.17, out_of_scope=0.57),
        OUT_OF_SCOPE,
        {"affinity": "topic_changed"},
        id="a-clearly-off-topic-turn-is-declined-mid-conversation",
    ),
]


@pytest.mark.parametrize("question,classification,category,conversation", AFTER_HISTORY)
def test_a_turn_after_a_history_one(
    routes: RoutesConfig,
    question: str,
    classification: Classification,
    category: str,
    conversation: dict[str, str],
) -> None:
    classify, _ = stub({ROME: PREVIOUS_HISTORY, question: classification})
    decision = route_followup(question, HISTORY, classify, routes)
    assert decision.category == category
    for field, value in conversation.items():
        assert decision.details["conversation"][field] == value


def test_clarity_thresholds_come_from_routes(routes: RoutesConfig) -> None:
    pasta = semantic(OUT_OF_SCOPE, history=0.26, math=0.17, out_of_scope=0.57)
    classify, _ = stub({ROME: PREVIOUS_HISTORY, "A lasagna recipe?": pasta})
    strict = with_conversation(routes, clear_min_similarity=0.6)
    assert route_followup("A lasagna recipe?", HISTORY, classify, strict).category == "history"


def test_an_off_topic_conversation_gives_no_context(routes: RoutesConfig) -> None:
    off = semantic(OUT_OF_SCOPE, out_of_scope=0.9, history=0.1)
    why = semantic(OUT_OF_SCOPE, history=0.21, out_of_scope=0.24)
    classify, _ = stub({ROME: off, "why?": why})
    decision = route_followup("why?", HISTORY, classify, routes)
    assert decision.category == OUT_OF_SCOPE
    assert decision.details["conversation"]["affinity"] == "new_conversation"


def test_llm_labels_in_scope_count_as_clear(routes: RoutesConfig) -> None:
    classify, asked = stub({ROME: llm("history"), "Solve 4x + 2 = 18.": llm("math")})
    decision = route_followup("Solve 4x + 2 = 18.", HISTORY, classify, routes)
    assert decision.category == "math" and len(asked) == 2


def test_an_llm_none_is_checked_with_the_conversation(routes: RoutesConfig) -> None:
    context = f"{ROME}\nwhy?"
    classify, asked = stub({ROME: llm("history"), "why?": llm(OUT_OF_SCOPE),
                            context: llm("history")})
    decision = route_followup("why?", HISTORY, classify, routes)
    assert decision.category == "history" and asked == [ROME, "why?", context]
    assert decision.details["conversation"]["affinity"] == "kept"
    assert len(decision.usages) == 3
    pasta = f"{ROME}\nA lasagna recipe?"
    classify, _ = stub({ROME: llm("history"), "A lasagna recipe?": llm(OUT_OF_SCOPE),
                        pasta: llm(OUT_OF_SCOPE)})
    assert route_followup("A lasagna recipe?", HISTORY, classify, routes).category == OUT_OF_SCOPE


# --- the real routers over the stand-in ----------------------------------------------------------


@pytest.fixture(scope="module")
def services(
    routes: RoutesConfig, bedrock_client: Any, semantic_index_dir: Path
) -> dict[str, RouterService]:
    return {name: build_service(name, routes, bedrock_client, semantic_index_dir, STANDIN_SOURCE)
            for name in ("semantic", "hybrid", "llm-assisted")}


def decide(service: RouterService, question: str, *history: str) -> Classification:
    return conv_eval.service_decider(service)(
        question, parse_history(turns(*history), service.config)
    )


# A turn after the Rome exchange, per router: (question, category, affinity; None: not checked).
# "Why?" stays with history; the real routers (no LLM) also switch topics and decline off-topic.
NEXT_TURNS = [
    *(
        pytest.param(router, "Why did that happen?", "history", "kept", id=f"{router}-why")
        for router in ("semantic", "hybrid", "llm-assisted")
    ),
    *(
        pytest.param(router, question, category, affinity, id=f"{router}-{name}")
        for router in ("semantic", "hybrid")
        for name, question, category, affinity in (
            ("switch", "Solve for x: 4x + 2 = 18.", "math", "topic_changed"),
            ("off-topic", "What's a good recipe for lasagna?", OUT_OF_SCOPE, None),
        )
    ),
]


@pytest.mark.parametrize("router,question,category,affinity", NEXT_TURNS)
def test_the_turn_after_a_history_question(
    router: str,
    question: str,
    category: str,
    affinity: str | None,
    services: dict[str, RouterService],
) -> None:
    decision = decide(services[router], question, ROME, ROME_ANSWER)
    assert decision.category == category
    if affinity is not None:
        assert decision.details["conversation"]["affinity"] == affinity


def test_the_answer_models_converse_request_carries_the_history(
    routes: RoutesConfig, bedrock_client: Any, fresh_standin: Any
) -> None:
    history = parse_history(turns(ROME, ROME_ANSWER), routes)
    answerer = ConverseAnswerer(bedrock_client, routes.answering)
    answer = answerer.answer("Why did that happen?", HAIKU, history_messages(history))
    alone = answerer.answer("Why did that happen?", HAIKU)
    converse = [c for c in fresh_standin.calls() if c["api"] == "converse"]
    assert converse[0]["body"]["messages"] == converse_messages(history, "Why did that happen?")
    assert answer.usage.input_tokens > alone.usage.input_tokens  # the history is billed input


# --- the evaluation ------------------------------------------------------------------------------


def test_the_dev_set_is_valid_and_covers_every_kind(routes: RoutesConfig) -> None:
    items = conv_eval.read_conversations(DEV_SET, routes)
    assert len(items) >= 60
    kinds = {(item.kind, item.label) for item in items}
    assert {("follow_up", "history"), ("follow_up", "math"), ("topic_switch", "history"),
            ("topic_switch", "math"), ("off_topic_turn", "other")} <= kinds
    assert conv_eval.is_conversation_file(DEV_SET)


def test_summary_figures() -> None:
    def outcome(kind: str, label: str, decision: str) -> conv_eval.ConversationOutcome:
        item = conv_eval.ConversationItem(HISTORY, "q", label, kind)
        return conv_eval.ConversationOutcome(item, decision, "kept", 0.01, 2)

    summary = conv_eval.summarise_conversations([
        outcome("follow_up", "history", "history"), outcome("follow_up", "math", OUT_OF_SCOPE),
        outcome("topic_switch", "math", "math"), outcome("topic_switch", "history", "math"),
        outcome("off_topic_turn", "other", OUT_OF_SCOPE),
    ])
    assert summary["follow_up_accuracy"] == 0.5 and summary["follow_ups_declined"] == 1
    assert summary["topic_switch_reroute_rate"] == 0.5
    assert summary["off_topic_turn_decline_rate"] == 1.0
    assert summary["floors"] == {"follow_up_accuracy": False, "follow_ups_declined": False,
                                 "topic_switch_reroute_rate": False}
    assert len(summary["errors"]) == 2 and summary["errors"][0]["previous_question"] == ROME


def test_bad_conversation_items_name_the_line(tmp_path: Path, routes: RoutesConfig) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"history": turns("q"), "question": "x", "label": "math",
                               "kind": "follow_up"}) + "\n")
    with pytest.raises(conv_eval.ConversationDataError, match=r"bad.jsonl:1: .*assistant"):
        conv_eval.read_conversations(bad, routes)
    bad.write_text(json.dumps({"history": [], "question": "x", "label": "math",
                               "kind": "chat"}) + "\n")
    with pytest.raises(conv_eval.ConversationDataError, match="kind 'chat'"):
        conv_eval.read_conversations(bad, routes)


@pytest.fixture
def evaluate_module() -> Iterator[Any]:
    import evaluate

    yield evaluate


@pytest.mark.parametrize("router", ["semantic", "hybrid"])
def test_conversation_dev_set_floors(
    router: str, evaluate_module: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's floors, offline with the stand-in, through evaluate.py (detected items)."""
    argv = ["--router", router, "--dataset", str(DEV_SET), "--format", "json"]
    assert evaluate_module.main(argv) == 0
    report = json.loads(capsys.readouterr().out)["conversations"]
    assert report["follow_up_accuracy"] >= 0.95
    assert report["follow_ups_declined"] == 0
    assert report["topic_switch_reroute_rate"] >= 0.90
    assert all(report["floors"].values())


@pytest.mark.parametrize("question,clear", [
    ("why?", False),
    ("and then what?", True),
    ("Solve 2x + 3 = 7 for x", True),
])
def test_an_llm_label_for_a_bare_follow_up_is_not_a_clear_topic_change(
    routes: RoutesConfig, question: str, clear: bool
) -> None:
    from llm_router.decision.conversation import is_clear, parse_conversation

    settings = parse_conversation(routes.raw)
    assert settings.clear_min_words == 3
    llm_label = Classification("math", "titan", 0.0, (), {"decided_by": "llm"})
    assert is_clear(llm_label, routes.category_names, settings, question) is clear
