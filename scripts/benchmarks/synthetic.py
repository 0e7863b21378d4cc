"""Synthetic reference sets for the scale benchmark: clustered unit vectors, their queries, the
routes document labelling them, and an embedder that serves them to ``build_index`` in row order.

Clustered rather than uniform because real embeddings are; the noise levels below set the
within-cluster and query-to-source cosines the README's simplifications quote.
"""

from __future__ import annotations

import copy
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from llm_router.config import OUT_OF_SCOPE, RoutesConfig

# Synthetic embeddings: unit centroids plus Gaussian noise of this norm (relative to the centroid)
# give a within-cluster cosine of about 1 / (1 + noise^2) = 0.5; a query is a reference vector plus
# noise of QUERY_NOISE, a cosine of about 0.89 to its source (a close paraphrase).
CENTROIDS = 300
CLUSTER_NOISE = 1.0
QUERY_NOISE = 0.5
CHUNK_ROWS = 65_536
PROMPT_PATTERN = re.compile(r"#(\d+)$")


def synthetic_prompt(label: str, row: int) -> str:
    return f"synthetic {label} reference prompt #{row}"


def row_of(prompt: str) -> int:
    match = PROMPT_PATTERN.search(prompt)
    if not match:
        raise ValueError(f"not a synthetic reference prompt: {prompt!r}")
    return int(match.group(1))


@dataclass
class SyntheticSet:
    """Clustered unit vectors, in label order (the row order of the index), as chunks."""

    labels: list[str]  # per row
    chunks: list[np.ndarray | None]  # CHUNK_ROWS rows each; None once handed to the index
    generate_seconds: float

    def row(self, i: int) -> np.ndarray:
        chunk = self.chunks[i // CHUNK_ROWS]
        if chunk is None:
            raise RuntimeError(f"row {i} was requested after its chunk was released")
        return chunk[i % CHUNK_ROWS]


def synthetic_layout(
    n: int, dims: int, label_names: Sequence[str], seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The CENTROIDS random unit centroids, each row's centroid and each row's label.

    Each centroid carries one label; rows are ordered by label (categories, then out of scope) to
    match ``RoutesConfig.reference_prompts``. Cheap: no row vectors are drawn.
    """
    import faiss

    rng = np.random.default_rng([seed, n, dims])
    centroids = rng.standard_normal((CENTROIDS, dims), dtype=np.float32)
    faiss.normalize_L2(centroids)
    assignment = rng.integers(0, CENTROIDS, n)
    label_of_centroid = np.arange(CENTROIDS) % len(label_names)
    assignment = assignment[np.argsort(label_of_centroid[assignment], kind="stable")]
    labels = [label_names[i] for i in label_of_centroid[assignment]]
    return centroids, assignment, labels


def synthetic_set(n: int, dims: int, label_names: Sequence[str], seed: int) -> SyntheticSet:
    """``n`` L2-normalised vectors: each row its centroid plus Gaussian noise, then normalised.

    Chunks are generated in parallel from per-chunk seeds, so the vectors do not depend on the
    number of threads.
    """
    import faiss

    started = time.perf_counter()
    centroids, assignment, labels = synthetic_layout(n, dims, label_names, seed)
    starts = list(range(0, n, CHUNK_ROWS))
    seeds = np.random.SeedSequence([seed, n, dims, 1]).spawn(len(starts))
    scale = float(CLUSTER_NOISE / np.sqrt(dims))

    def make(job: tuple[int, np.random.SeedSequence]) -> np.ndarray:
        start, chunk_seed = job
        rows = assignment[start : start + CHUNK_ROWS]
        chunk = np.random.default_rng(chunk_seed).standard_normal(
            (len(rows), dims), dtype=np.float32
        )
        chunk *= scale
        chunk += centroids[rows]
        faiss.normalize_L2(chunk)
        return chunk

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        chunks: list[np.ndarray | None] = list(pool.map(make, zip(starts, seeds, strict=True)))
    return SyntheticSet(labels, chunks, time.perf_counter() - started)


def make_queries(data: SyntheticSet, count: int, seed: int) -> np.ndarray:
    """Noisy copies of random reference vectors, rounded as Titan's JSON carries them."""
    import faiss

    n = len(data.labels)
    dims = data.row(0).shape[0]
    rng = np.random.default_rng([seed, n, dims, 2])
    sources = rng.integers(0, n, count)
    queries = np.stack([data.row(int(i)) for i in sources]).astype(np.float32)
    queries += rng.standard_normal(queries.shape, dtype=np.float32) * float(
        QUERY_NOISE / np.sqrt(dims)
    )
    faiss.normalize_L2(queries)
    return np.round(queries, 8).astype(np.float32)


def routes_variant(base: RoutesConfig, labels: Sequence[str], dims: int) -> dict[str, Any]:
    """The routes document with synthetic reference prompts (one per row) and ``dims``."""
    raw = copy.deepcopy(dict(base.raw))
    prompts: dict[str, list[str]] = {name: [] for name in (*base.category_names, OUT_OF_SCOPE)}
    for row, label in enumerate(labels):
        prompts[label].append(synthetic_prompt(label, row))
    for name in base.category_names:
        raw["categories"][name]["reference_prompts"] = prompts[name]
    raw.setdefault("out_of_scope", {})["reference_prompts"] = prompts[OUT_OF_SCOPE]
    raw["out_of_scope"]["topic_bank"] = False  # the synthetic rows are the whole index
    raw["embedding"] = {**raw["embedding"], "dimensions": dims}
    raw["active_preset"] = base.preset
    return raw


class SyntheticEmbedder:
    """Serves the synthetic vectors to ``build_index`` in row order, releasing each chunk once
    copied and folding it into the exact top-k of every query on the way (so a million vectors
    are never held twice)."""

    def __init__(
        self, data: SyntheticSet, model_id: str, queries: np.ndarray, depth: int
    ) -> None:
        self._data = data
        self._model_id = model_id
        self._queries = queries
        self._depth = depth
        self._next = 0
        self.truth_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.truth_ids = np.zeros((len(queries), 0), dtype=np.int64)
        self.truth_seconds = 0.0

    @property
    def model_id(self) -> str:
        return self._model_id

    def embed(self, text: str) -> Any:
        from llm_router.decision.embeddings import Embedding

        i = self._next
        if row_of(text) != i:
            raise RuntimeError(f"build_index asked for {text!r} out of order (expected row {i})")
        self._next += 1
        vector = self._data.row(i)
        if i % CHUNK_ROWS == CHUNK_ROWS - 1 or i == len(self._data.labels) - 1:
            self._fold(i // CHUNK_ROWS)
        return Embedding(vector=vector, input_tokens=0)

    def _fold(self, chunk_no: int) -> None:
        """Merge the chunk into the exact top-``depth`` neighbours of every query, then drop it."""
        import faiss

        started = time.perf_counter()
        chunk = self._data.chunks[chunk_no]
        assert chunk is not None
        k = min(self._depth, len(chunk))
        scores, ids = faiss.knn(self._queries, chunk, k, metric=faiss.METRIC_INNER_PRODUCT)
        all_scores = np.concatenate([self.truth_scores, scores], axis=1)
        all_ids = np.concatenate([self.truth_ids, ids + chunk_no * CHUNK_ROWS], axis=1)
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, : self._depth]
        self.truth_scores = np.take_along_axis(all_scores, order, axis=1)
        self.truth_ids = np.take_along_axis(all_ids, order, axis=1)
        # The last row handed out keeps the chunk alive only until build_index has copied it.
        self._data.chunks[chunk_no] = None
        self.truth_seconds += time.perf_counter() - started
