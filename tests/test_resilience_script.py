"""scripts/resilience.py: the README's resilience table and the 1,000-request soak, offline."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import resilience
from llm_router.config import RoutesConfig


@pytest.fixture(scope="module", autouse=True)
def _quiet() -> Iterator[None]:
    """The script's quiet settings for this module only: they are process-wide (environment and
    warning filters), and a log level of CRITICAL would silence later tests' loggers."""
    saved = dict(os.environ)
    with warnings.catch_warnings():
        resilience.quiet_handlers()
        yield
    os.environ.clear()
    os.environ.update(saved)


def test_soak_with_the_primary_math_target_failing_30_percent(routes: RoutesConfig) -> None:
    report = resilience.soak(routes, requests=1000, failure_rate=0.3, concurrency=8,
                             baseline_requests=100)
    assert report["requests"] == 1000
    assert report["success_rate"] >= 0.999  # 200s answered by a configured target
    assert report["answered_by_fallback"] > 0
    assert report["fallback_ms"]["p99"] is not None


def test_resilience_table_rows(routes: RoutesConfig) -> None:
    rows = {(r["failure"], r["router"]): r for r in
            resilience.run_table(resilience.scaled(routes, 4))}
    plan = routes.plan_for("math").attempt_order()

    def row(failure: str, router: str = "semantic") -> Any:
        return rows[(failure, router)]

    assert row("none")["answered_by"] == plan[0]
    for failure in ("primary answer target throttled", "primary answer target hung",
                    "primary answer target: no model access",
                    "primary keeps failing: breaker opens"):
        assert (row(failure)["status"], row(failure)["answered_by"]) == (200, plan[1])
    assert row("primary and its inference profile throttled")["answered_by"] == plan[2]
    assert "skipped by open breaker" in row("primary keeps failing: breaker opens")["routing"]
    assert row("request rejected as invalid")["status"] == 502
    assert row("every answer target throttled")["status"] == 503
    assert "Retry-After" in row("every answer target throttled")["routing"]
    hung = row("every answer target hung")
    assert hung["status"] == 504 and hung["seconds"] < 4
    assert row("classifier LLM down", "llm-assisted")["status"] == 200
    assert "degraded" in row("embedding model down", "hybrid")["routing"]
    assert row("classifier and every answer target down", "llm-assisted")["status"] == 503
