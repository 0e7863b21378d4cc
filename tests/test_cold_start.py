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
    assert rows["llm-assisted"]["calls"] == [
        "invoke amazon.titan-text-express-v1",
        "converse anthropic.claude-3-5-sonnet-20240620-v1:0",
    ]
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


def test_the_table_names_every_router_and_its_verdict(result: dict[str, Any]) -> None:
    text = cold_start.format_cold_start(result)
    for row in result["rows"]:
        line = next(x for x in text.splitlines() if x.startswith(row["router"] + " "))
        assert f"{row['ratio']:.2f}x" in line
        assert line.split()[-2] in ("yes", "NO")


def test_the_cli_rejects_zero_runs() -> None:
    with pytest.raises(SystemExit):
        benchmark.main(["--cold", "--runs", "0"])
