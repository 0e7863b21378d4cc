"""Measure how a router routes follow-up questions: conversation items of ``scripts/evaluate.py``.

    python scripts/evaluate.py --router semantic --conversations eval/conversations_dev.jsonl
    python scripts/evaluate.py --router hybrid --dataset eval/conversations_dev.jsonl  # detected

Items are JSON lines ``{"history": [...turns], "question", "label", "kind"}``: the history is
what a client sends with ``POST /ask`` (validated as the function validates it), the label the
category the question should go to (``other``: it should be declined) and the kind one of
``follow_up`` (the question continues the conversation's topic: "why?"), ``topic_switch`` (a clear
question on the other category) or ``off_topic_turn`` (an off-topic question mid-conversation).

Reported, with the issue's floors: follow-up routing accuracy (>= 95%), in-domain follow-ups
declined (none), topic switches re-routed to their new category (>= 90%); and off-topic turns
declined, the affinity decisions, the classifier calls per question and their latency.

Each item is decided as the Lambda decides it: ``RouterService.decide`` with the history when the
core accepts one, otherwise :func:`llm_router.decision.conversation.route_followup` over the
service's own
``classify`` (the rule the core wires in), then the out-of-scope action.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llm_router.config import OUT_OF_SCOPE, RoutesConfig
from llm_router.decision.classification import Classification
from llm_router.decision.conversation import ConversationError, Turn, parse_history, route_followup
from llm_router.pipeline.service import RouterService

from evaluation.metrics import OTHER

FOLLOW_UP, TOPIC_SWITCH, OFF_TOPIC_TURN = "follow_up", "topic_switch", "off_topic_turn"
KINDS = (FOLLOW_UP, TOPIC_SWITCH, OFF_TOPIC_TURN)
FLOORS = {
    "follow_up_accuracy": 0.95,  # at least
    "follow_ups_declined": 0,  # at most
    "topic_switch_reroute_rate": 0.90,  # at least
}
Decider = Callable[[str, tuple[Turn, ...]], Classification]


class ConversationDataError(ValueError):
    """The conversation file cannot be read; the message names the line."""


@dataclass(frozen=True)
class ConversationItem:
    history: tuple[Turn, ...]
    question: str
    label: str  # a category, or OTHER
    kind: str


@dataclass(frozen=True)
class ConversationOutcome:
    item: ConversationItem
    decision: str  # a category, or OUT_OF_SCOPE
    affinity: str | None
    seconds: float
    calls: int  # classifier model calls the decision made

    @property
    def predicted(self) -> str:
        return OTHER if self.decision == OUT_OF_SCOPE else self.decision


def is_conversation_file(path: Path) -> bool:
    """True when the first item of a JSONL file carries a ``history``."""
    try:
        with path.open(encoding="utf-8") as lines:
            first = next((line for line in lines if line.strip()), "")
        return isinstance(json.loads(first), dict) and "history" in json.loads(first)
    except (OSError, ValueError, UnicodeDecodeError):
        return False  # the ordinary reader reports what is wrong with it


def read_conversations(path: Path, config: RoutesConfig) -> list[ConversationItem]:
    valid = {*config.category_names, OTHER}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConversationDataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
            history = parse_history(row["history"], config)
            question, label, kind = row["question"], row["label"], row["kind"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConversationDataError(
                f'{where}: expected {{"history", "question", "label", "kind"}}: {exc}'
            ) from exc
        except ConversationError as exc:
            raise ConversationDataError(f"{where}: {exc}") from exc
        if label not in valid:
            raise ConversationDataError(f"{where}: label {label!r} is none of {sorted(valid)}")
        if kind not in KINDS:
            raise ConversationDataError(f"{where}: kind {kind!r} is none of {', '.join(KINDS)}")
        items.append(ConversationItem(history, question, label, kind))
    if not items:
        raise ConversationDataError(f"{path} has no conversations")
    return items


def service_decider(service: RouterService) -> Decider:
    """How the service decides a follow-up: its own ``decide(..., history=)`` once the core has
    one, until then the conversation rule over its ``classify`` and its out-of-scope action."""
    if "history" in inspect.signature(service.decide).parameters:
        return lambda question, history: service.decide(question, history=history)

    def decide(question: str, history: tuple[Turn, ...]) -> Classification:
        decision = route_followup(question, history, service.classify, service.config)
        return service.resolve_out_of_scope(decision)

    return decide


def evaluate_conversations(
    decide: Decider, items: Sequence[ConversationItem]
) -> list[ConversationOutcome]:
    outcomes = []
    for item in items:
        decision = decide(item.question, item.history)
        conversation = decision.details.get("conversation") or {}
        outcomes.append(
            ConversationOutcome(
                item,
                decision.category,
                conversation.get("affinity"),
                decision.seconds,
                len(decision.usages),
            )
        )
    return outcomes


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def summarise_conversations(outcomes: Sequence[ConversationOutcome]) -> dict[str, Any]:
    """The figures of the report, JSON-ready, with each floor and whether it is met."""
    by_kind = {kind: [o for o in outcomes if o.item.kind == kind] for kind in KINDS}
    follow_ups = by_kind[FOLLOW_UP]
    in_domain_follow_ups = [o for o in follow_ups if o.item.label != OTHER]
    switches = by_kind[TOPIC_SWITCH]
    off_topic = by_kind[OFF_TOPIC_TURN]
    seconds = np.array([o.seconds for o in outcomes]) if outcomes else np.zeros(1)
    summary: dict[str, Any] = {
        "n": len(outcomes),
        "n_by_kind": {kind: len(rows) for kind, rows in by_kind.items()},
        "follow_up_accuracy": _share(
            sum(o.predicted == o.item.label for o in follow_ups), len(follow_ups)
        ),
        "follow_ups_declined": sum(o.predicted == OTHER for o in in_domain_follow_ups),
        "topic_switch_reroute_rate": _share(
            sum(o.predicted == o.item.label for o in switches), len(switches)
        ),
        "off_topic_turn_decline_rate": _share(
            sum(o.predicted == OTHER for o in off_topic), len(off_topic)
        ),
        "accuracy": _share(sum(o.predicted == o.item.label for o in outcomes), len(outcomes)),
        "affinity": dict(Counter(o.affinity or "none" for o in outcomes)),
        "classifier_calls_per_question": round(
            sum(o.calls for o in outcomes) / len(outcomes), 3
        ) if outcomes else None,
        "classification_latency_ms": {
            "p50": round(float(np.percentile(seconds, 50)) * 1000, 2),
            "p95": round(float(np.percentile(seconds, 95)) * 1000, 2),
        },
        "errors": [
            {
                "kind": o.item.kind,
                "label": o.item.label,
                "predicted": o.predicted,
                "affinity": o.affinity,
                "question": o.item.question,
                "previous_question": next(
                    (t.content for t in reversed(o.item.history) if t.role == "user"), None
                ),
            }
            for o in outcomes
            if o.predicted != o.item.label
        ],
    }
    summary["floors"] = floors_met(summary)
    return summary


def floors_met(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Each floor of the issue: met (True), missed (False), or no items of its kind (None)."""
    accuracy, switches = summary["follow_up_accuracy"], summary["topic_switch_reroute_rate"]
    return {
        "follow_up_accuracy": None if accuracy is None
        else accuracy >= FLOORS["follow_up_accuracy"],
        "follow_ups_declined": summary["follow_ups_declined"] <= FLOORS["follow_ups_declined"],
        "topic_switch_reroute_rate": None if switches is None
        else switches >= FLOORS["topic_switch_reroute_rate"],
    }


def render_conversations(strategy: str, summary: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.1f}%"

    def mark(name: str) -> str:
        met = summary["floors"][name]
        return "" if met is None else ("  (floor met)" if met else "  (BELOW THE FLOOR)")

    counts = summary["n_by_kind"]
    lines = [
        f"Router: {strategy}   conversations: {summary['n']} ({counts[FOLLOW_UP]} follow-ups, "
        f"{counts[TOPIC_SWITCH]} topic switches, {counts[OFF_TOPIC_TURN]} off-topic turns)",
        f"  follow-up routing accuracy:        {pct(summary['follow_up_accuracy'])}"
        + mark("follow_up_accuracy"),
        f"  in-domain follow-ups declined:     {summary['follow_ups_declined']}"
        + mark("follow_ups_declined"),
        f"  topic switches re-routed:          {pct(summary['topic_switch_reroute_rate'])}"
        + mark("topic_switch_reroute_rate"),
        f"  off-topic turns declined:          {pct(summary['off_topic_turn_decline_rate'])}",
        f"  affinity decisions: {json.dumps(summary['affinity'], sort_keys=True)}",
        f"  classifier calls per question: {summary['classifier_calls_per_question']}; "
        f"latency p50 {summary['classification_latency_ms']['p50']:.1f} ms, "
        f"p95 {summary['classification_latency_ms']['p95']:.1f} ms",
    ]
    if summary["errors"]:
        lines += ["", f"  errors ({len(summary['errors'])}):"]
        lines += [
            f"    [{e['kind']}: {e['label']} -> {e['predicted']}, {e['affinity']}] "
            f"{e['question']}  (after: {e['previous_question']})"
            for e in summary["errors"]
        ]
    return "\n".join(lines)


def report(
    service: RouterService, path: Path, config: RoutesConfig, output_format: str
) -> str:
    """The whole evaluation of a conversation file as text or JSON (what evaluate.py prints)."""
    items = read_conversations(path, config)
    summary = summarise_conversations(evaluate_conversations(service_decider(service), items))
    if output_format == "json":
        return json.dumps({"router": service.strategy, "conversations": summary}, indent=2)
    return render_conversations(service.strategy, summary)
