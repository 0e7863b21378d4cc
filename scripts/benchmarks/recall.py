"""Recall of the scale benchmark's index against exact (flat) search, and whether the routing
decision on the index's neighbours equals the one on the exact neighbours."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from llm_router.decision.classifiers.semantic import SCORE_DEPTH, decide
from llm_router.decision.semantic_index import LoadedIndex, load_index

from .index_cache import EMBEDDING_SOURCE, RECALL_K, PreparedIndex
from .overhead import percentiles_ms
from .synthetic import row_of

TIE_TOLERANCE = 1e-5  # a neighbour this close to the exact k-th similarity counts as a hit


def recall_at(
    found: Sequence[tuple[int, float]], exact_ids: np.ndarray, exact_scores: np.ndarray, k: int
) -> float:
    """Share of the exact top-k the index returned in its top-k; a returned neighbour whose
    similarity ties the exact k-th (within TIE_TOLERANCE) counts as a hit."""
    k = min(k, len(exact_ids))
    truth = {int(i) for i in exact_ids[:k]}
    floor = float(exact_scores[k - 1]) - TIE_TOLERANCE
    hits = sum(1 for i, score in found[:k] if i in truth or score >= floor)
    return min(hits, k) / k


def measure_recall(prepared: PreparedIndex) -> dict[str, Any]:
    """Recall@k of ``LoadedIndex.search`` against exact search, and route-decision agreement."""
    config = prepared.config
    loaded: LoadedIndex = load_index(prepared.directory, config, EMBEDDING_SOURCE)
    rows = loaded.rows
    ks = sorted({config.semantic_k, RECALL_K})
    depth = max(config.semantic_k, SCORE_DEPTH)
    exact_depth = min(depth, len(rows))
    recalls: dict[int, list[float]] = {k: [] for k in ks}
    search_seconds: list[float] = []
    agree = 0
    for q, vector in enumerate(prepared.queries):
        started = time.perf_counter()
        neighbours = loaded.search(vector, depth)
        search_seconds.append(time.perf_counter() - started)
        found = [(row_of(row.prompt), score) for row, score in neighbours]
        exact_ids = prepared.truth_ids[q, :exact_depth]
        exact_scores = prepared.truth_scores[q, :exact_depth]
        for k in ks:
            recalls[k].append(recall_at(found, exact_ids, exact_scores, k))
        exact = [(rows[int(i)], float(s)) for i, s in zip(exact_ids, exact_scores, strict=True)]
        k = config.semantic_k
        agree += decide(neighbours, k, config)["category"] == decide(exact, k, config)["category"]
    return {
        "recall": {str(k): float(np.mean(v)) for k, v in recalls.items()},
        "route_agreement": agree / len(prepared.queries),
        "search_ms": percentiles_ms(search_seconds),
        "queries": len(prepared.queries),
    }
