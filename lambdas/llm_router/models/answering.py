"""Answer generation through the Bedrock Converse API, failing over along a category's targets.

Converse takes the same request for every Bedrock chat model, so an answer target can be any model
id, a cross-region inference profile or an Intelligent Prompt Routing router ARN; for a prompt
router Bedrock reports the model it invoked in ``trace.promptRouter.invokedModelId``, which is what
the response names as the answerer.

:meth:`ConverseAnswerer.answer_with_failover` walks a plan's attempt order: a target that fails
with an error worth failing over for (throttling, 5xx, timeouts, an open breaker, no access) hands
the question to the next; an error every target would repeat (our request is invalid) stops at once.
:meth:`ConverseAnswerer.stream_with_failover` walks it the same way (one loop, :meth:`_failover`)
with ``ConverseStream``, up to the first delta (:mod:`llm_router.models.streaming`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from ..config import AnsweringConfig
from ..records import record
from .bedrock import BedrockFailure, as_failure
from .streaming import OpenedStream
from .usage import ModelUsage

T = TypeVar("T")


@record(frozen=True)
class Answer:
    text: str
    requested_model_id: str
    invoked_model_id: str
    seconds: float
    usage: ModelUsage
    stop_reason: str
    fallback_used: bool = False  # a target after the first of the attempt order answered


class AllTargetsFailed(Exception):  # noqa: N818  (reported as such)
    """Every answer target failed or was skipped; carries each failure for the response."""

    def __init__(self, failures: Sequence[BedrockFailure]) -> None:
        super().__init__(", ".join(f"{f.model_id}: {f.code}" for f in failures))
        self.failures = tuple(failures)


class ConverseAnswerer:
    def __init__(self, client: Any, config: AnsweringConfig) -> None:
        self._client = client
        self._config = config

    def answer(
        self, question: str, model_id: str, history: Sequence[dict[str, Any]] = ()
    ) -> Answer:
        """One target. ``history`` holds earlier Converse messages, oldest first."""
        started = time.perf_counter()
        try:
            response = self._client.converse(**self.request(question, model_id, history))
        except Exception as exc:
            raise as_failure(exc, model_id, "answer") from exc
        seconds = time.perf_counter() - started
        text = "".join(
            block.get("text", "") for block in response["output"]["message"]["content"]
        )
        invoked = (
            response.get("trace", {}).get("promptRouter", {}).get("invokedModelId") or model_id
        )
        tokens = response.get("usage", {})
        usage = ModelUsage(
            invoked, int(tokens.get("inputTokens", 0)), int(tokens.get("outputTokens", 0))
        )
        return Answer(text, model_id, invoked, seconds, usage, response.get("stopReason", ""))

    def request(
        self, question: str, model_id: str, history: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        """The Converse (and ConverseStream) request for ``question`` after ``history``."""
        return {
            "modelId": model_id,
            "system": [{"text": self._config.system_prompt}],
            "messages": [*history, {"role": "user", "content": [{"text": question}]}],
            "inferenceConfig": {
                "maxTokens": self._config.max_tokens,
                "temperature": self._config.temperature,
            },
        }

    def open_stream(
        self, question: str, model_id: str, history: Sequence[dict[str, Any]] = ()
    ) -> OpenedStream:
        """One target's ConverseStream, read up to its first delta."""
        try:
            return self._client.converse_stream(**self.request(question, model_id, history))
        except Exception as exc:
            raise as_failure(exc, model_id, "answer") from exc

    def stream_with_failover(
        self,
        question: str,
        attempt_order: Sequence[str],
        history: Sequence[dict[str, Any]] = (),
    ) -> Generator[str, None, Answer]:
        """Yield the answer's text as the first target that starts answering writes it; return
        the :class:`Answer` (its ``text`` is the whole answer). Failures before the first delta
        fail over as :meth:`answer_with_failover` does; after it they raise
        :class:`~llm_router.models.streaming.StreamInterrupted`."""
        started = time.perf_counter()  # the answer's time covers every target tried
        opened, position = self._failover(
            attempt_order, lambda model_id: self.open_stream(question, model_id, history)
        )
        parts: list[str] = []
        reader = opened.text()
        try:
            while True:
                try:
                    text = next(reader)
                except StopIteration as end:
                    result = end.value
                    break
                parts.append(text)
                yield text
        except BaseException:  # interrupted, or the consumer closed us: release the connection
            opened.close()
            raise
        return Answer(
            "".join(parts), opened.model_id, result.invoked_model_id,
            time.perf_counter() - started, result.usage, result.stop_reason,
            fallback_used=bool(position),
        )

    def answer_with_failover(
        self,
        question: str,
        attempt_order: Sequence[str],
        history: Sequence[dict[str, Any]] = (),
    ) -> Answer:
        """The first target of ``attempt_order`` that answers.

        Raises the failure itself when it is not worth failing over for,
        :class:`~llm_router.models.request_context.DeadlineExceeded` when the budget cannot fit the
        next target, and :class:`AllTargetsFailed` otherwise. Its ``seconds`` cover every target
        tried, so a slow failure before a fast fallback shows in the answer's time.
        """
        started = time.perf_counter()  # the answer's time covers every target tried
        answer, position = self._failover(
            attempt_order, lambda model_id: self.answer(question, model_id, history)
        )
        return replace(
            answer, seconds=time.perf_counter() - started, fallback_used=bool(position)
        )

    @staticmethod
    def _failover(attempt_order: Sequence[str], call: Callable[[str], T]) -> tuple[T, int]:
        """The first target's result that ``call`` gets without failing, and its position."""
        failures: list[BedrockFailure] = []
        for position, model_id in enumerate(attempt_order):
            try:
                return call(model_id), position
            except BedrockFailure as failure:
                if not failure.failover:
                    raise
                failures.append(failure)
        raise AllTargetsFailed(failures)
