"""The cold-start benchmark: the handler and the floor make the same Bedrock calls, every figure is
measured, and the table reports the ratio (one process each: this checks the method, not speed)."""

from __future__ import annotations

from typing import Any

import benchmark
import pytest
from benchmarks import cold_start


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return cold_start.run_cold_start(["llm-assisted", "semantic"], runs=1)


def test_each_router_is_measured_against_a_floor_with_the_same_calls(
    result: dict[str, Any],
) -> None:
    rows = {row["router"]: row for row in result["rows"]}
    assert set(rows) == {"llm-assisted", "semantic"}
    # The classifier, once for the question and once for each segment the cost check reads
    # alone before the premium target answers (decision.coverage), then the answer.
    classify, *checks, answer = rows["llm-assisted"]["calls"]
    assert classify == "invoke amazon.titan-text-express-v1"
    assert set(checks) <= {classify}
    assert answer == "converse anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert rows["semantic"]["calls"] == [
        "invoke amazon.titan-embed-text-v2:0",
        "converse anthropic.claude-3-haiku-20240307-v1:0",
    ]
    for row in rows.values():
        for side in ("handler", "floor"):
            figures = row[side]
            assert 0 < figures["init"] < figures["process"]
            assert 0 < figures["first_request"] < figures["process"]
            assert figures["total"] == pytest.approx(figures["init"] + figures["first_request"])
        assert row["ratio"] == pytest.approx(row["handler"]["total"] / row["floor"]["total"])
        # both import only modules whose bytecode is there, as the deployed asset and layers ship
        assert row["compiled"] == {"handler": 0, "floor": 0}


def test_the_handler_runs_with_its_stacks_environment(result: dict[str, Any]) -> None:
    """As shipped: the variables the synthesized template gives the router, the budget guard's
    table among them (routes.json ships a daily budget), and the guard writes to it."""
    for row in result["rows"]:
        assert {"BUDGET_TABLE_NAME", "ROUTER_TIER_API_KEYS", "ROUTER_STRATEGY"} <= set(
            row["stack_variables"]
        )
        assert row["traced"] is True
        budget = [n for t, n in row["table_items"].items() if t.startswith("RouterBudgetTable")]
        assert budget and budget[0] >= 1  # the spend the guard recorded


def test_the_table_names_every_router_and_its_verdict(result: dict[str, Any]) -> None:
    text = cold_start.format_cold_start(result)
    for row in result["rows"]:
        line = next(x for x in text.splitlines() if x.startswith(row["router"] + " "))
        assert f"{row['ratio']:.2f}x" in line
        assert line.split()[-2] in ("yes", "NO")


def test_the_cli_rejects_zero_runs() -> None:
    with pytest.raises(SystemExit):
        benchmark.main(["--cold", "--runs", "0"])


def test_the_request_log_lines_are_measured(result: dict[str, Any]) -> None:
    """The audit line and the EMF blob of the first request, as CloudWatch Logs would ingest
    them: what scripts/cost_scenarios prices the deployment's logs with."""
    for row in result["rows"]:
        assert 500 < row["request_log_bytes"] < 20_000
    assert cold_start.request_log_bytes(
        ['{"message": "audit", "x": 1}', '{"_aws": {}}', "not json", '{"message": "ready"}']
    ) == len('{"message": "audit", "x": 1}') + 1 + len('{"_aws": {}}') + 1
