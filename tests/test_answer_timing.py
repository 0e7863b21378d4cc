"""The answer's time covers every target tried: a slow failure before a fallback shows in it."""

from __future__ import annotations

from typing import Any

from llm_router.config import RoutesConfig
from llm_router.pipeline.factory import build_service

SLOW_FAILURE_SECONDS = 0.3


def test_a_slow_primary_failure_counts_in_the_answer_time(
    fresh_standin: Any, routes: RoutesConfig, bedrock_client: Any
) -> None:
    category = next(iter(routes.categories))
    primary, fallback = routes.plan_for(category, None).model_ids()[:2]
    fresh_standin.set_delay(primary, SLOW_FAILURE_SECONDS)
    fresh_standin.inject_fault(primary, "ThrottlingException")
    service = build_service("llm-assisted", routes, bedrock_client, budget=None, cache=None)
    answerer = service.answerer

    answer = answerer.answer_with_failover("What year did World War II end?", [primary, fallback])
    assert answer.fallback_used and answer.requested_model_id == fallback
    assert answer.seconds >= SLOW_FAILURE_SECONDS  # not only the fallback's fast call

    streamed = answerer.stream_with_failover("What year did World War II end?", [primary, fallback])
    while True:
        try:
            next(streamed)
        except StopIteration as end:
            assert end.value.fallback_used and end.value.seconds >= SLOW_FAILURE_SECONDS
            break
