"""The scale benchmark at tiny sizes: it runs end to end and reports sane figures (not speed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import benchmark
import numpy as np
import pytest
from benchmarks import index_cache, recall, scale, scale_report
from benchmarks.overhead import WARMUP_REQUESTS
from llm_router.config import load_routes
from llm_router.decision import semantic_index

pytestmark = pytest.mark.generic  # holds for any valid routes file

SIZES = [10, 2_000, 3_000]
QUERIES = 24
# Low enough that 2,000 vectors take the HNSW path and 3,000 the IVF path.
LOW_THRESHOLD = 1_000
LOW_IVF_THRESHOLD = 2_500


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:  # only while the benchmark runs
        patch.setattr(semantic_index, "HNSW_THRESHOLD", LOW_THRESHOLD)
        patch.setattr(semantic_index, "IVF_THRESHOLD", LOW_IVF_THRESHOLD)
        return scale.run(
            SIZES,
            queries=QUERIES,
            cache_dir=tmp_path_factory.mktemp("benchmark-cache"),
            base=load_routes(),
        )


def by_size(result: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {row["vectors"]: row for row in result["rows"]}


def test_one_row_per_size(result: dict[str, Any]) -> None:
    assert [row["vectors"] for row in result["rows"]] == SIZES
    text = scale_report.format_text(result)
    for size in SIZES:
        assert sum(line.lstrip().startswith(f"{size:,} ") for line in text.splitlines()) == 2


def test_index_type_follows_the_size(result: dict[str, Any]) -> None:
    rows = by_size(result)
    assert rows[10]["index_type"] == "flat-ip" and rows[10]["exact"]
    assert rows[2_000]["index_type"].startswith("hnsw") and not rows[2_000]["exact"]
    assert rows[3_000]["index_type"].startswith("ivf") and not rows[3_000]["exact"]
    assert result["settings"]["thresholds"] == {"hnsw": LOW_THRESHOLD, "ivf": LOW_IVF_THRESHOLD}


def test_recall_is_a_fraction_and_exact_for_flat(result: dict[str, Any]) -> None:
    k = str(load_routes().semantic_k)
    for row in result["rows"]:
        assert set(row["recall"]) == {k, "10"}
        for value in row["recall"].values():
            assert 0.0 <= value <= 1.0
        assert 0.0 <= row["route_agreement"] <= 1.0
        assert row["queries"] == QUERIES
    flat = by_size(result)[10]
    assert all(value == 1.0 for value in flat["recall"].values())
    assert flat["route_agreement"] == 1.0


def test_overhead_and_cold_start_figures_are_positive(result: dict[str, Any]) -> None:
    for row in result["rows"]:
        overhead = row["overhead_ms"]
        assert 0 < overhead["p50"] <= overhead["p99"]
        assert row["handler_ms"]["p50"] >= overhead["p50"] > 0
        assert row["requests"] == QUERIES
        # every request went through the fake: one embedding, and an answer unless declined
        calls = row["bedrock_calls"]
        assert calls["invoke_model"] == QUERIES + WARMUP_REQUESTS
        assert sum(row["decisions"].values()) == QUERIES
        cold = row["cold_start_seconds"]
        for key in ("import_numpy", "import_faiss", "import_handler", "client", "index_load"):
            assert cold[key] > 0
        assert cold["vectors"] == row["vectors"]
        assert row["file_bytes"][semantic_index.INDEX_FILE] > 0
        assert row["fits_lambda_250mb_limit"]


def test_requests_run_with_the_stacks_environment(result: dict[str, Any]) -> None:
    """As shipped: the router's variables from the synthesized stack, the budget guard's table
    among them, so every request makes the guard's DynamoDB round trips; traced."""
    for row in result["rows"]:
        assert {"BUDGET_TABLE_NAME", "ROUTER_TIER_API_KEYS"} <= set(row["stack_variables"])
        assert row["traced"] is True
        assert row["aws_calls_per_request"] >= 1
        assert 0 < row["aws_round_trip_ms"]["p50"] <= row["overhead_ms"]["p99"]


def test_json_output_has_the_expected_keys(result: dict[str, Any]) -> None:
    parsed = json.loads(json.dumps(result))
    assert {"machine", "settings", "rows", "simplifications", "total_seconds"} <= set(parsed)
    assert {"cpu", "cores", "ram_bytes", "python", "numpy", "faiss"} <= set(parsed["machine"])
    assert {
        "vectors",
        "dimensions",
        "index_type",
        "recall",
        "route_agreement",
        "search_ms",
        "overhead_ms",
        "cold_start_seconds",
        "file_bytes",
        "build_seconds",
    } <= set(parsed["rows"][0])
    assert parsed["simplifications"]


def test_main_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = benchmark.main(
        ["--sizes", "10", "--queries", "6", "--format", "json", "--quiet",
         "--dimensions", "256", "--cache-dir", str(tmp_path)]
    )
    assert code == 0
    parsed = json.loads(capsys.readouterr().out)
    assert [row["vectors"] for row in parsed["rows"]] == [10]
    assert parsed["rows"][0]["dimensions"] == 256


def test_a_cached_index_is_reused(tmp_path: Path) -> None:
    base = load_routes()
    stale = tmp_path / "n50-d256-q4-s0-olderrecipe"  # built by another make_faiss_index
    stale.mkdir()
    (stale / index_cache.MARKER_FILE).write_text("{}")
    first = index_cache.prepare_index(50, 256, 4, 0, base, tmp_path)
    assert not stale.exists()
    again = index_cache.prepare_index(50, 256, 4, 0, base, tmp_path)
    assert not first.cached and again.cached
    assert again.directory == first.directory
    np.testing.assert_array_equal(again.truth_ids, first.truth_ids)


def test_make_faiss_index_picks_flat_when_small_and_approximate_when_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2_000, 32), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, kind = semantic_index.make_faiss_index(vectors[:100])
    assert kind == "flat-ip" and index.ntotal == 100
    monkeypatch.setattr(semantic_index, "HNSW_THRESHOLD", LOW_THRESHOLD)
    index, kind = semantic_index.make_faiss_index(vectors)
    assert kind.startswith("hnsw") and index.ntotal == 2_000
    monkeypatch.setattr(semantic_index, "IVF_THRESHOLD", 1_500)
    index, kind = semantic_index.make_faiss_index(vectors)
    assert kind.startswith("ivf") and index.ntotal == 2_000 and index.nprobe > 1
    # the defaults: exact search for every size the routes file is likely to hold
    monkeypatch.undo()
    assert semantic_index.HNSW_THRESHOLD <= semantic_index.IVF_THRESHOLD
    assert semantic_index.make_faiss_index(vectors)[1] == "flat-ip"


def test_recall_counts_ties_as_hits() -> None:
    ids = np.array([4, 7, 9])
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    assert recall.recall_at([(4, 0.9), (7, 0.8)], ids, scores, 2) == 1.0
    assert recall.recall_at([(4, 0.9), (5, 0.8)], ids, scores, 2) == 1.0  # a tie
    assert recall.recall_at([(4, 0.9), (5, 0.5)], ids, scores, 2) == 0.5
