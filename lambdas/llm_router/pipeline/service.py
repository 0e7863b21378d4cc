"""The routing core: classify a question, answer it with its category's targets, shape the response.

Every edge — the Lambda handler, the local API server, the evaluation script — calls
:class:`RouterService`, so the decision and the response are the same wherever the router runs.

The core keeps answering when models fail. A classifier that fails degrades the decision instead
of failing the request (the hybrid falls back to whichever half still works; the others use the
default category, as the original sample does) and the response says so in ``routing.degraded``.
An answer target that fails hands the question to the next target of its plan. Only when nothing
can answer does the request fail: 503 with Retry-After, or 504 when the budget ran out first.

``ask`` and ``ask_stream`` are one pipeline with two answer stages: both begin an exchange the
same way (budget reservation, decision, plan, cache lookup: :meth:`RouterService.begin`), map
failures to the same errors (:meth:`RouterService._answer_errors`), release the reservation on
failure and end the same way (response shape, settlement, cache: :meth:`RouterService.finish`);
only the answer call differs, Converse or ConverseStream.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import closing, contextmanager
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack

from ..config import OUT_OF_SCOPE, RoutesConfig
from ..config.targets import AnswerTarget, TargetPlan
from ..decision import coverage
from ..decision.classification import Classification, Classifier, ModelUsage
from ..decision.conversation import (
    Turn,
    history_messages,
    is_clear,
    parse_conversation,
    route_followup,
)
from ..decision.cost_cap import capped_plan, pool_within_cap
from ..decision.normalize import routing_text
from ..decision.routing_policy import RoutingPolicy, parse_routing
from ..errors import CIRCUIT_OPEN, RoutingError
from ..models.answering import AllTargetsFailed, Answer, ConverseAnswerer
from ..models.bedrock import BedrockFailure
from ..models.breaker import BreakerBoard
from ..models.request_context import DeadlineExceeded, RequestContext, current
from ..models.resilient_client import MIN_ATTEMPT_SECONDS
from ..models.streaming import StreamInterrupted
from ..observability.tracing import subsegment
from ..records import record
from .response import shape_response, summarize, total_cost, usage_with_cost
from .side_calls import Write, beside, together, write_together

if TYPE_CHECKING:  # the cache's modules load only when a cache is configured (the factory)
    from .cache.response_cache import CacheRequest, CacheResult, ResponseCache

DECIDED_BY = {"semantic": "semantic", "llm-assisted": "llm"}  # by strategy, when not set
ACCESS_DENIED = "AccessDeniedException"
# Why a request was capped (routing.cost_cap.reason), and what that says of the question's text.
UNAVAILABLE = "classification unavailable"  # not read: checked again when a later turn needs it
CAPPED_CONVERSATION = "the conversation holds a capped turn"  # not read: likewise
OFF_TOPIC = "part of the input is off-topic"  # read: part of it is off-topic
UNCHECKABLE = "the input could not be checked in full"  # more segments than the check allows


class AskOptions(TypedDict, total=False):
    """What a request may say beside its question, for :meth:`RouterService.ask`,
    :meth:`~RouterService.ask_stream` and :meth:`~RouterService.begin`; all optional."""

    category: str | None  # named by the caller (``api.caller_category`` says what it may do)
    tier: str | None  # None: the request context's, else the configuration's default
    history: Sequence[Turn]  # the conversation's earlier turns, oldest first
    # None: the client sent the history (untrusted: all of it is checked); else the server kept
    # it, with each turn's coverage flag (see :meth:`RouterService.cost_safe`).
    history_flags: Sequence[bool | None] | None


class ConversationKeeper(Protocol):
    """What the core needs of the server-kept conversations
    (llm_router.governance.conversation_store)."""

    def load(self, conversation_id: str, owner: str) -> Any: ...

    def append(
        self, previous: Any, owner: str, question: str, answer: str, capped: bool | None
    ) -> str | None: ...


# Given the response, the write that keeps its conversation turn (None: nothing to keep); made
# with the request's other end writes (llm_router.pipeline.side_calls).
KeepTurn = Callable[[dict[str, Any]], Callable[[], None] | None]


class UnknownCategory(ValueError):
    """The caller named a category that is not configured (static routing)."""


class BudgetGuard(Protocol):
    """What the core needs of the daily budget guard (llm_router.governance.budget)."""

    def reserve(self, tier: str, worst_case: float) -> Any: ...

    def room_expected(self, tier: str) -> bool: ...

    def record(self, tier: str, cost_usd: float) -> None: ...

    def settle(self, reservation: Any, cost_usd: float | None) -> None: ...


def all_access_denied(failures: Sequence[BedrockFailure]) -> bool:
    """Every target refused us for lack of access: a permanent condition, not a busy one."""
    return bool(failures) and all(f.code == ACCESS_DENIED for f in failures)


@record
class Exchange:
    """One request between its decision and its answer (what ``finish`` needs to shape it)."""

    question: str
    tier: str
    started: float
    context: RequestContext
    reservation: Any  # the budget's reservation, None without a budget
    history: Sequence[Turn] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # added to the response's routing
    classification: Classification | None = None
    plan: TargetPlan | None = None  # None: declined, no model answers
    attempt_order: tuple[str, ...] = ()
    cache_request: CacheRequest | None = None
    cached: CacheResult | None = None  # a cache hit: answered without a model

    @property
    def declined(self) -> bool:
        return self.plan is None


@record(frozen=True)
class KeptConversation:
    """A server-kept conversation a request continues (``previous`` None: it starts one)."""

    store: ConversationKeeper
    owner: str
    conversation_id: str | None
    previous: Any

    def history(self) -> AskOptions:
        """The request's options for its history: the stored turns and their coverage flags."""
        previous = self.previous
        return {
            "history": previous.turns if previous else (),
            "history_flags": previous.flags if previous else (),
        }


@record(frozen=True)
class StreamEvent:
    """One server-sent event of ``ask_stream``: routing, delta or done."""

    name: str
    data: dict[str, Any]


class RouterService:
    def __init__(
        self,
        config: RoutesConfig,
        classifier: Classifier,
        answerer: ConverseAnswerer,
        breakers: BreakerBoard | None = None,
        budget: BudgetGuard | None = None,
        rng: random.Random | None = None,
        cache: ResponseCache | None = None,
        conversations: ConversationKeeper | None = None,
    ) -> None:
        self.config = config
        self.classifier = classifier
        self.answerer = answerer
        self.breakers = breakers
        self.budget = budget
        self.cache = cache
        self.conversations = conversations
        self._rng = rng or random.Random()
        self._policy: RoutingPolicy = parse_routing(config)
        self._max_routing_chars = self._policy.max_input_chars
        self._conversation = parse_conversation(config.raw)

    @property
    def strategy(self) -> str:
        return self.classifier.strategy

    # -- the decision ------------------------------------------------------------------------

    def static_classification(self, category: str) -> Classification:
        """The caller named the category: validate it and skip classification (no cost)."""
        self._check_category(category)
        return Classification(category, None, 0.0, (), {"decided_by": "caller"})

    def _check_category(self, category: str) -> None:
        if category not in self.config.categories:
            raise UnknownCategory(
                f"unknown category {category!r}; valid categories: "
                f"{', '.join(self.config.category_names)}"
            )

    def resolve_out_of_scope(
        self, classification: Classification, tier: str | None = None
    ) -> Classification:
        """Apply out_of_scope.action: keep the decline, or answer with the default or cheapest."""
        action = self.config.out_of_scope.action
        if classification.category != OUT_OF_SCOPE or action == "decline":
            return classification
        target = (
            self.config.default_category
            if action == "default"
            else self.config.cheapest_category(tier)
        )
        return replace(
            classification,
            category=target,
            details={**classification.details, "out_of_scope": True},
            fallback_reason=(
                f"the question matched no category; out_of_scope.action is {action!r}, so it "
                f"went to the category {target!r}"
            ),
        )

    def classify(self, question: str) -> Classification:
        """The classifier's decision, or a degraded one when the classifier cannot answer.

        Every router classifies the same normalised routing text (options recognised, a passage
        behind its question, whitespace and case folded: llm_router.decision.normalize); the answer
        model
        still gets the question as asked."""
        text = routing_text(question, self._max_routing_chars)
        try:
            with subsegment("classification") as span:
                decision = self.classifier.classify(text)
                span.annotate("category", decision.category)
        except (BedrockFailure, DeadlineExceeded) as exc:
            default = self.config.default_category
            stage = getattr(exc, "stage", "classification")
            code = exc.code if isinstance(exc, BedrockFailure) else "DeadlineExceeded"
            return Classification(
                category=default,
                model_id=self.classifier.model_id,
                seconds=0.0,
                usages=(),
                details={"decided_by": "default"},
                fallback_reason=f"{stage} failed ({code}); used the default category {default!r}",
                degraded=f"{stage} failed: {code}",
            )
        if "decided_by" in decision.details:
            return decision
        decided_by = DECIDED_BY.get(self.classifier.strategy, self.classifier.strategy)
        return replace(decision, details={"decided_by": decided_by, **decision.details})

    def classify_in_context(self, question: str, history: Sequence[Turn] = ()) -> Classification:
        """A lone question's decision, or a follow-up's with its conversation (affinity)."""
        if not history:
            return self.classify(question)
        return route_followup(question, history, self.classify, self.config)

    def decide(
        self,
        question: str,
        category: str | None = None,
        tier: str | None = None,
        history: Sequence[Turn] = (),
    ) -> Classification:
        """The routing decision ``ask`` acts on (a category, or OUT_OF_SCOPE to decline)."""
        if category is None:
            return self.resolve_out_of_scope(self.classify_in_context(question, history), tier)
        self._check_category(category)
        policy = self.config.api.caller_category
        if policy == "off":
            raise RoutingError(
                "category_not_allowed",
                {"valid_categories": list(self.config.category_names)},
            )
        if policy == "trust":
            return self.static_classification(category)
        checked = self.classify_in_context(question, history)  # "check": in scope?
        if checked.category == OUT_OF_SCOPE:
            return replace(
                checked,
                details={
                    **checked.details,
                    "caller_category": category,
                    "why": "the caller named a category, but the question is out of scope",
                },
            )
        return replace(
            checked,
            category=category,
            details={**checked.details, "decided_by": "caller", "classified_as": checked.category},
        )

    # -- the cost cap (llm_router.decision.coverage and cost_cap) ----------------------------

    @staticmethod
    def unavailable(classification: Classification) -> bool:
        """Whether no classifier read the text: the decision is the configured default."""
        return classification.degraded is not None and classification.used_fallback

    def cost_safe(
        self,
        question: str,
        history: Sequence[Turn],
        classification: Classification,
        plan: TargetPlan,
        tier: str | None = None,
        history_flags: Sequence[bool | None] | None = None,
    ) -> tuple[Classification, TargetPlan]:
        """The plan capped at the degraded target when the decision cannot be trusted with it.

        Capped when classification was unavailable (always: nothing above the degraded target,
        fallbacks included), or when a segment of the question or of the history is declined
        alone (:mod:`llm_router.decision.coverage`); that check runs only when the plan's pool
        (the targets that answer when nothing fails) has a target dearer than the degraded
        target, since below it there is nothing to cap (its fallbacks, reached only on
        failover, are left as configured). The returned classification carries the check's
        classifier calls (their usage and time) and ``details["cost_cap"]``; a caller-trusted
        category (``trust``) is not checked.

        ``history_flags`` (server-kept history, one per turn): True, a turn that was capped when
        asked (the conversation stays capped while the model reads it); False, checked and in
        scope; None, not checked yet (a user turn is checked now; assistant turns are the
        router's own). Without flags every turn, the client-written assistant ones included, is
        checked.
        """
        cap_model = self._policy.degraded_model(self.config, tier)
        details = classification.details
        if details.get("decided_by") == "caller" and "classified_as" not in details:
            return classification, plan  # the operator trusts the caller's category
        if self.unavailable(classification):
            note = {"capped": True, "reason": UNAVAILABLE, "target": cap_model}
            return self._noted(classification, note, ()), capped_plan(self.config, plan, cap_model)
        if pool_within_cap(self.config, plan, cap_model):
            return classification, plan  # nothing dearer answers unless the pool fails
        if history_flags is not None and any(flag is True for flag in history_flags):
            note = {"capped": True, "reason": CAPPED_CONVERSATION, "target": cap_model}
            return self._noted(classification, note, ()), capped_plan(self.config, plan, cap_model)
        unchecked = history if history_flags is None else [
            turn for turn, flag in zip(history, history_flags, strict=True)
            if flag is None and turn.role == "user"
        ]
        items = coverage.segments(
            question,
            unchecked,
            self._max_routing_chars,
            self._policy.segment_min_words,
        )
        # Without history the decision is the whole question's own, so its text is not asked
        # twice; in a conversation the decision may be the conversation's, so it is.
        whole = () if history else {routing_text(question, self._max_routing_chars)}
        checked = coverage.check(
            items, self.classify, self._max_routing_chars, self._policy.max_segments, whole,
            self._clear_decline, together,
        )
        note: dict[str, Any] = {"capped": False, **checked.details()}
        if checked.partly_off_topic or checked.failed:
            note |= {
                "capped": True,
                "reason": OFF_TOPIC if checked.partly_off_topic else UNCHECKABLE,
                "target": cap_model,
            }
            plan = capped_plan(self.config, plan, cap_model)
        return self._noted(classification, note, checked.calls), plan

    def _clear_decline(self, decision: Classification, text: str) -> bool | None:
        return is_clear(decision, self.config.category_names, self._conversation, text)

    @staticmethod
    def _noted(
        classification: Classification,
        note: dict[str, Any],
        calls: Sequence[Classification],
    ) -> Classification:
        return replace(
            classification,
            seconds=classification.seconds + sum(call.seconds for call in calls),
            usages=classification.usages + tuple(u for call in calls for u in call.usages),
            details={**classification.details, "cost_cap": note},
        )

    # -- server-kept conversations (llm_router.governance.conversation_store) ---------------

    def open_conversation(self, conversation_id: str | None, owner: str) -> KeptConversation:
        """The server-kept conversation a request continues (``conversation_id`` None: starts);
        an unknown, expired or another owner's id is ``conversation_not_found``."""
        store = self.conversations
        if store is None:
            raise RoutingError("conversation_not_found", {"reason": "conversations are off"})
        previous = self._load_conversation(store, conversation_id, owner)
        return KeptConversation(store, owner, conversation_id, previous)

    def ask_in_conversation(
        self, question: str, kept: KeptConversation, **options: Unpack[AskOptions]
    ) -> dict[str, Any]:
        """``ask`` with the history the server keeps; the body carries ``conversation_id``.

        An answered question is stored with its answer (and its coverage flag); a declined one
        is not, so the answer model never reads it later. ``conversation_id`` in the body is the
        conversation to continue, or None when nothing was stored (a declined first question, a
        failed write).
        """
        keep_turn, stored = self._turn_keeper(kept, question)
        body = self._complete(self.begin(question, **options, **kept.history()), keep_turn)
        body["conversation_id"] = stored[0]
        return body

    def ask_stream_in_conversation(
        self, question: str, kept: KeptConversation, **options: Unpack[AskOptions]
    ) -> Iterator[StreamEvent]:
        """``ask_stream`` with the history the server keeps, as :meth:`ask_in_conversation`:
        the exchange is stored once the answer is complete (with the request's other end
        writes) and ``done`` carries ``conversation_id``. A stream that fails, or whose client
        went away, stores nothing."""
        keep_turn, stored = self._turn_keeper(kept, question)
        events = self._stream(question, keep_turn, **options, **kept.history())
        with closing(events):  # a stream closed early closes its answer at once
            for event in events:
                if event.name == "done":
                    event.data["conversation_id"] = stored[0]
                yield event

    def _turn_keeper(
        self, kept: KeptConversation, question: str
    ) -> tuple[KeepTurn, list[str | None]]:
        """The write that keeps the exchange in ``kept``, made with the request's other end
        writes (none when declined), and where the conversation to continue is once it ran."""
        stored: list[str | None] = [kept.conversation_id]

        def keep_turn(body: dict[str, Any]) -> Callable[[], None] | None:
            if body["routing"]["declined"]:
                return None
            answer, routing = body["answer"], body["routing"]

            def append() -> None:
                stored[0] = self._remember(kept, question, answer, routing)

            return append

        return keep_turn, stored

    def _remember(
        self, kept: KeptConversation, question: str, answer: str, routing: Mapping[str, Any]
    ) -> str | None:
        """The conversation to continue: the exchange appended to it, or as it was when the
        question was declined or its streamed answer's client went away."""
        if routing["declined"] or current().abandoned:
            return kept.conversation_id
        flag = self.question_flag(routing.get("cost_cap"))
        return kept.store.append(kept.previous, kept.owner, question, answer, flag)

    @staticmethod
    def question_flag(note: Any) -> bool | None:
        """What the cost cap learnt of the question's own text, for its stored turn: True, part
        of it is off-topic or it could not be checked; False, checked and in scope; None, not
        read (no check ran, or the cap came from elsewhere), so it is checked when needed."""
        if not isinstance(note, Mapping):
            return None
        reason = note.get("reason")
        if reason in (UNAVAILABLE, CAPPED_CONVERSATION):
            return None
        if reason == OFF_TOPIC:  # the question's own segments, or an older turn's
            return "question" in note.get("off_topic", ())
        return bool(note.get("capped"))

    @staticmethod
    def _load_conversation(
        store: ConversationKeeper, conversation_id: str | None, owner: str
    ) -> Any:
        if conversation_id is None:
            return None
        try:
            return store.load(conversation_id, owner)
        except LookupError as exc:
            raise RoutingError("conversation_not_found") from exc
        except RuntimeError as exc:
            raise RoutingError("conversation_unavailable", retry_after_seconds=1) from exc

    # -- answering ---------------------------------------------------------------------------

    def cheapest_plan(self, plan: TargetPlan) -> TargetPlan:
        """The plan's cheapest target first (for the budget's soft limit), the rest behind it."""
        def price(model_id: str) -> float:
            known = self.config.price_of(model_id)
            return known.input_per_1k + known.output_per_1k if known else math.inf

        ordered = sorted(plan.model_ids(), key=price)
        return TargetPlan((AnswerTarget(ordered[0]),), tuple(ordered[1:]))

    def begin(self, question: str, **options: Unpack[AskOptions]) -> Exchange:
        """Reserve the budget, decide, choose the answer targets (none when declined, capped by
        :meth:`cost_safe`) and look the answer up in the cache; the reservation is released if
        any of it fails."""
        context = current()
        category = options.get("category")
        history = options.get("history", ())
        tier = options.get("tier") or context.tier or self.config.default_tier
        started = time.perf_counter()
        reserving = self._reservation_beside_decision(tier, question, history)
        exchange = Exchange(
            question, tier, started, context,
            None if reserving else self._reserve_budget(tier, question, history), history,
        )
        with self._released_on_failure(exchange):
            try:
                classification = exchange.classification = self.decide(
                    question, category, tier, history
                )
            finally:
                if reserving is not None:
                    exchange.reservation = self._reserved(reserving, exchange)
            budget_level = str(getattr(exchange.reservation, "level", "off"))
            if budget_level != "off":
                exchange.extra["budget"] = budget_level
            if classification.category == OUT_OF_SCOPE:
                return exchange
            plan = self.config.plan_for(classification.category, tier)
            if budget_level == "soft":
                plan = self.cheapest_plan(plan)
            classification, plan = self.cost_safe(
                question, history, classification, plan, tier, options.get("history_flags")
            )
            exchange.classification = classification
            exchange.plan = plan
            exchange.attempt_order = tuple(plan.attempt_order(self._rng))
            cached = exchange.cache_request = self._cache_request(
                question, classification, plan, tier, history
            )
            found = self.cache.lookup(cached) if self.cache and cached else None
            if found is not None:
                exchange.extra.update(found.routing())
                if found.entry is not None:  # a hit: no answer model is called
                    exchange.cached = found
        return exchange

    def finish(
        self, exchange: Exchange, answer: Answer | None, keep_turn: KeepTurn | None = None
    ) -> dict[str, Any]:
        """The response of an exchange (``answer`` None: declined), its cost settled against
        the reservation, a new answer kept in the cache (unless a stream's client left) and
        ``keep_turn``'s write (the conversation's), the writes at once."""
        assert exchange.classification is not None
        text = answer.text if answer else self.config.out_of_scope.decline_message
        body = shape_response(
            self.classifier, exchange.classification, answer, text,
            time.perf_counter() - exchange.started, self.config, exchange.context, exchange.extra,
        )
        writes = self._settlement(exchange.reservation, body["usage"]["cost_usd"]["total"])
        cache, request = self.cache, exchange.cache_request
        if (answer is not None and cache is not None and request is not None
                and not exchange.context.abandoned):  # a stream's client read all of it
            writes += cache.keeping(
                request, answer.text, answer.invoked_model_id, answer.requested_model_id,
                body["usage"]["cost_usd"]["answer"],
            )
        write_together(writes + self._turn_write(keep_turn, body))
        return body

    def finish_cached(
        self, exchange: Exchange, found: CacheResult, keep_turn: KeepTurn | None = None
    ) -> dict[str, Any]:
        """The response of a cache hit or a stale answer: the classification's cost only."""
        assert exchange.classification is not None
        body = self._cached_body(
            exchange.classification, found, exchange.started, exchange.context, exchange.extra
        )
        writes = self._settlement(exchange.reservation, body["usage"]["cost_usd"]["total"])
        write_together(writes + self._turn_write(keep_turn, body))
        return body

    @staticmethod
    def _turn_write(keep_turn: KeepTurn | None, body: dict[str, Any]) -> list[Write]:
        write = keep_turn(body) if keep_turn is not None else None
        return [("conversation", write)] if write is not None else []

    def ask(self, question: str, **options: Unpack[AskOptions]) -> dict[str, Any]:
        """Route and answer ``question`` (with the conversation's earlier turns, if any)."""
        return self._complete(self.begin(question, **options))

    def _complete(self, exchange: Exchange, keep_turn: KeepTurn | None = None) -> dict[str, Any]:
        """Answer a begun exchange (from the cache, a model, or a stale entry) and end it;
        ``keep_turn``: see :meth:`ask_in_conversation`."""
        if exchange.declined:
            return self.finish(exchange, None, keep_turn)
        if exchange.cached is not None:
            return self.finish_cached(exchange, exchange.cached, keep_turn)
        with self._released_on_failure(exchange):
            try:
                answer = self._answer(exchange)
            except RoutingError as exc:
                stale = self._stale(exchange, exc)
                if stale is None:
                    raise
                return self.finish_cached(exchange, stale, keep_turn)
        return self.finish(exchange, answer, keep_turn)

    def ask_stream(self, question: str, **options: Unpack[AskOptions]) -> Iterator[StreamEvent]:
        """``ask`` as events: ``routing`` once decided, ``delta`` per piece of text, ``done``
        with the response less its answer text. A failure before ``routing`` raises as in
        ``ask``; after it, a :class:`RoutingError` ends the events (the edge sends ``error``).
        A cached (or, when every target is unavailable before any text, a stale) answer is one
        ``delta``."""
        return self._stream(question, None, **options)

    def _stream(
        self, question: str, keep_turn: KeepTurn | None, **options: Unpack[AskOptions]
    ) -> Iterator[StreamEvent]:
        """``ask_stream``, with ``keep_turn``'s write made with the request's end writes."""
        exchange = self.begin(question, **options)
        with self._released_on_failure(exchange):
            yield StreamEvent("routing", self.routing_summary(exchange))
        found, answer = exchange.cached, None
        if not exchange.declined and found is None:
            with self._released_on_failure(exchange):  # settled below, never twice
                try:
                    answer = yield from self._answer_stream(exchange)
                except RoutingError as exc:
                    found = self._stale(exchange, exc)  # models_unavailable: no text was sent
                    if found is None:
                        raise
        body = (
            self.finish_cached(exchange, found, keep_turn) if found is not None
            else self.finish(exchange, answer, keep_turn)
        )
        if found is not None:
            yield StreamEvent("delta", {"text": body["answer"]})
        body.pop("answer", None)
        yield StreamEvent("done", body)

    def routing_summary(self, exchange: Exchange) -> dict[str, Any]:
        """What the ``routing`` event tells at once: the decision and the first answer target."""
        classification = exchange.classification
        assert classification is not None
        summary: dict[str, Any] = {
            "request_id": exchange.context.request_id,
            "question_classification": classification.category,
            "strategy": self.classifier.strategy,
            "declined": exchange.declined,
            "degraded": classification.degraded,
            "answer_target": exchange.attempt_order[0] if exchange.attempt_order else None,
            "tier": exchange.tier,
            **summarize(classification.details, self.config.response.routing_details),
            **exchange.extra,
        }
        if exchange.declined:
            summary["decline_message"] = self.config.out_of_scope.decline_message
        return summary

    @contextmanager
    def _released_on_failure(self, exchange: Exchange) -> Iterator[None]:
        """A request that fails (or a stream closed early) keeps only its classification's
        cost of the reservation."""
        try:
            yield
        except BaseException:
            self._release_budget(exchange.reservation, exchange.classification)
            raise

    def _stale(self, exchange: Exchange, exc: RoutingError) -> CacheResult | None:
        """A stale cached answer for a request every target failed, if the cache has one."""
        if not (self.cache and exchange.cache_request) or exc.code != "models_unavailable":
            return None
        stale = self.cache.stale(exchange.cache_request)
        if stale is not None:
            exchange.extra.update(stale.routing())
        return stale

    # -- the response cache (llm_router.pipeline.cache) --------------------------------------

    def _cache_request(
        self, question: str, classification: Classification, plan: TargetPlan, tier: str,
        history: Sequence[Turn],
    ) -> CacheRequest | None:
        if self.cache is None:
            return None
        context = current()
        return self.cache.prepare(
            question, classification.category, plan, tier, history,
            vector=classification.embedding,
            cache_control_header=context.cache_control,
            api_key_id=context.api_key_id,
        )

    def _cached_body(
        self, classification: Classification, found: CacheResult, started: float,
        context: RequestContext, extra: dict[str, Any],
    ) -> dict[str, Any]:
        """The response of a cache hit (or a stale answer): the classification's cost only."""
        entry = found.entry
        assert entry is not None
        answer = Answer(entry.answer, entry.target, entry.model_id, 0.0,
                        ModelUsage(entry.model_id, 0, 0), "cached")
        body = shape_response(
            self.classifier, classification, answer, entry.answer,
            time.perf_counter() - started, self.config, context, extra,
        )
        costs = body["usage"]["cost_usd"]
        body["usage"]["answer"] = None
        costs["answer"] = 0.0
        costs["total"] = total_cost(costs["classification"])
        return body

    def _answer(self, exchange: Exchange) -> Answer:
        with self._answer_errors(), subsegment("answer") as span:
            answer = self.answerer.answer_with_failover(
                exchange.question, exchange.attempt_order, history_messages(exchange.history)
            )
            span.annotate("answer_target", answer.requested_model_id)
            return answer

    def _answer_stream(self, exchange: Exchange) -> Generator[StreamEvent, None, Answer]:
        with self._answer_errors():
            stream = self.answerer.stream_with_failover(
                exchange.question, exchange.attempt_order, history_messages(exchange.history)
            )
            try:
                while True:
                    try:
                        text = next(stream)
                    except StopIteration as end:
                        return end.value
                    yield StreamEvent("delta", {"text": text})
            finally:
                stream.close()  # at once, also when the caller stops reading

    @contextmanager
    def _answer_errors(self) -> Iterator[None]:
        """The answer stage's failures as the caller's errors (the same for both answers)."""
        try:
            yield
        except AllTargetsFailed as exc:
            if all_access_denied(exc.failures):  # permanent until granted: no Retry-After
                raise RoutingError(
                    "models_access_denied", {"stage": "answer", "attempts": self._attempts()}
                ) from exc
            if current().deadline.remaining() < 2 * MIN_ATTEMPT_SECONDS:  # time ran out on them
                raise RoutingError(
                    "deadline_exceeded", {"stage": "answer", "attempts": self._attempts()}
                ) from exc
            raise RoutingError(
                "models_unavailable",
                {"stage": "answer", "attempts": self._attempts()},
                retry_after_seconds=self._retry_after(exc.failures),
            ) from exc
        except StreamInterrupted as exc:
            failure = exc.failure
            if isinstance(failure, DeadlineExceeded):
                raise RoutingError(
                    "deadline_exceeded", {"stage": "answer", "attempts": self._attempts()}
                ) from exc
            raise RoutingError(
                "answer_interrupted",
                {
                    "stage": "answer",
                    "model_id": failure.model_id,
                    "bedrock_error": failure.code,
                    "attempts": self._attempts(),
                },
            ) from exc
        except DeadlineExceeded as exc:
            raise RoutingError(
                "deadline_exceeded", {"stage": "answer", "attempts": self._attempts()}
            ) from exc
        except BedrockFailure as failure:
            raise RoutingError(
                "model_error",
                {
                    "stage": failure.stage,
                    "model_id": failure.model_id,
                    "bedrock_error": failure.code,
                    "attempts": self._attempts(),
                },
            ) from failure

    @staticmethod
    def _attempts() -> list[dict[str, Any]]:
        return [attempt.as_dict() for attempt in current().attempts]

    def _retry_after(self, failures: Sequence[BedrockFailure]) -> int:
        """When to try again: when the first open breaker admits a call, else a back-off."""
        if failures and all(f.code == CIRCUIT_OPEN for f in failures):
            return max(1, math.ceil(min(f.retry_after_seconds for f in failures)))
        return max(1, math.ceil(self.config.resilience.backoff_max_seconds))

    # -- budget ------------------------------------------------------------------------------

    def _reserve_budget(self, tier: str, question: str, history: Sequence[Turn]) -> Any:
        """Reserve the request's worst case (llm_router.governance.budget); 429 when it does
        not fit. The error tells the caller when to retry, never the spend or the limit."""
        if self.budget is None:
            return None
        from ..governance.budget import worst_case_usd

        texts = [question, *(turn.content for turn in history)]
        reservation = self.budget.reserve(tier, worst_case_usd(self.config, tier, texts))
        if reservation.level == "hard":
            retry_after = max(1, math.ceil(reservation.retry_after_seconds))
            raise RoutingError("over_budget", retry_after_seconds=retry_after)
        return reservation

    def _reservation_beside_decision(
        self, tier: str, question: str, history: Sequence[Turn]
    ) -> Future[Any] | None:
        """The reservation started beside the decision, when the instance's last reading of the
        budget leaves room (llm_router.governance.budget says why and what it bounds); None:
        reserve first."""
        budget = self.budget
        if budget is None or not budget.room_expected(tier):
            return None
        return beside(lambda: self._reserve_budget(tier, question, history))

    def _reserved(self, reserving: Future[Any], exchange: Exchange) -> Any:
        """The reservation made beside the decision. Refused: the decision's cost is spent, so
        it is recorded before the 429."""
        try:
            return reserving.result()
        except RoutingError:
            cost = self._classification_cost(exchange.classification)
            if self.budget is not None and cost:
                self.budget.record(exchange.tier, cost)
            raise

    def _classification_cost(self, classification: Classification | None) -> float | None:
        """What a classification cost (None: a price is unknown)."""
        usages = classification.usages if classification is not None else ()
        return total_cost([usage_with_cost(u, self.config)["cost_usd"] for u in usages])

    def _settlement(self, reservation: Any, cost_usd: float | None) -> list[Write]:
        """The settlement's write (none without a budget or a reservation), to make once."""
        budget = self.budget
        if budget is None or reservation is None:
            return []
        return [("budget settlement", lambda: budget.settle(reservation, cost_usd))]

    def _release_budget(self, reservation: Any, classification: Classification | None) -> None:
        """A failed request keeps only what it is known to have cost: its classification."""
        if self.budget is None or reservation is None:
            return
        self.budget.settle(reservation, self._classification_cost(classification))
