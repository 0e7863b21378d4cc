"""Building (or reusing) the scale benchmark's index for one reference-set size.

``build_index`` writes the index in the real format from the synthetic embeddings; the exact
neighbours of every query are folded in on the way. Built directories are cached under
``.build/benchmark/`` (git-ignored), keyed by everything that shapes them, so a rerun only
measures.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import inspect
import json
import shutil
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llm_router.config import OUT_OF_SCOPE, RoutesConfig, parse_routes
from llm_router.decision import semantic_index
from llm_router.decision.classifiers.semantic import SCORE_DEPTH
from llm_router.decision.semantic_index import (
    INDEX_FILE,
    LABELS_FILE,
    MANIFEST_FILE,
    Manifest,
    build_index,
)

from layers import REPO_ROOT

from .synthetic import (
    CENTROIDS,
    CLUSTER_NOISE,
    QUERY_NOISE,
    SyntheticEmbedder,
    make_queries,
    routes_variant,
    synthetic_layout,
    synthetic_set,
)

DEFAULT_CACHE_DIR = REPO_ROOT / ".build" / "benchmark"
# Recorded in the manifest; a router pointed at real Bedrock refuses such an index.
EMBEDDING_SOURCE = "synthetic-benchmark"
RECALL_K = 10  # recall is reported at the configured semantic k and at this k
ROUTES_FILE = "routes.json"  # the synthetic routes document, written beside the index
MARKER_FILE = "benchmark.json"  # written last: the cached directory is complete
DATA_VERSION = 1  # bump when the synthetic data or the cache layout changes

Progress = Callable[[str], None]


@contextlib.contextmanager
def timed_make_faiss_index() -> Iterator[list[float]]:
    """Times the ``make_faiss_index`` call inside ``build_index`` (the index type's build cost)."""
    original = semantic_index.make_faiss_index
    seconds: list[float] = [0.0]

    def timed(vectors: np.ndarray) -> tuple[Any, str]:
        started = time.perf_counter()
        try:
            return original(vectors)
        finally:
            seconds[0] += time.perf_counter() - started

    semantic_index.make_faiss_index = timed  # type: ignore[assignment]
    try:
        yield seconds
    finally:
        semantic_index.make_faiss_index = original  # type: ignore[assignment]


@dataclass
class PreparedIndex:
    vectors: int
    dimensions: int
    directory: Path
    config: RoutesConfig
    manifest: Manifest
    queries: np.ndarray
    truth_ids: np.ndarray
    truth_scores: np.ndarray
    timings: dict[str, float]  # index_build, build_index, generate, truth (seconds)
    cached: bool

    def file_bytes(self) -> dict[str, int]:
        return {
            name: (self.directory / name).stat().st_size
            for name in (INDEX_FILE, LABELS_FILE, MANIFEST_FILE)
        }


def index_recipe() -> str:
    """``make_faiss_index``'s code without its docstring (editing the figures keeps the cache)."""
    source = textwrap.dedent(inspect.getsource(semantic_index.make_faiss_index))
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    if ast.get_docstring(function) is not None:
        function.body = function.body[1:]
    return ast.unparse(function)


def cache_key(n: int, dims: int, queries: int, seed: int, base: RoutesConfig) -> str:
    """Everything that shapes the cached index, the queries or the exact neighbours."""
    import faiss

    parts = {
        "data_version": DATA_VERSION,
        "vectors": n,
        "dimensions": dims,
        "queries": queries,
        "seed": seed,
        "centroids": CENTROIDS,
        "cluster_noise": CLUSTER_NOISE,
        "query_noise": QUERY_NOISE,
        "depth": truth_depth(base),
        "labels": [*base.category_names, OUT_OF_SCOPE],
        "embedding_model_id": base.embedding.model_id,
        "faiss": faiss.__version__,
        # the index choice: the function's code and the module constants it reads
        "make_faiss_index": index_recipe(),
        "thresholds": {
            k: v for k, v in vars(semantic_index).items() if k.isupper() and isinstance(v, int)
        },
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    return f"n{n}-d{dims}-q{queries}-s{seed}-{digest}"


def write_routes(directory: Path, raw: dict[str, Any]) -> None:
    """The routes document beside the index, for the cold-start probe's ``load_routes``."""
    (directory / ROUTES_FILE).write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")


def truth_depth(config: RoutesConfig) -> int:
    """How many exact neighbours to keep: what the classifier reads and what recall needs."""
    return max(config.semantic_k, SCORE_DEPTH, RECALL_K)


def prepare_index(
    n: int,
    dims: int,
    queries: int,
    seed: int,
    base: RoutesConfig,
    cache_dir: Path,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> PreparedIndex:
    """The index directory for ``n`` synthetic vectors, built with ``build_index`` or reused."""
    say = progress or (lambda _msg: None)
    directory = cache_dir / cache_key(n, dims, queries, seed, base)
    marker = directory / MARKER_FILE
    label_names = [*base.category_names, OUT_OF_SCOPE]
    # The routes document is rebuilt from the current routes.json on every run (its thresholds
    # and k may have changed); only the reference prompts, and so the index, are cached.
    _, _, labels = synthetic_layout(n, dims, label_names, seed)
    raw = routes_variant(base, labels, dims)
    config = parse_routes(raw, preset=base.preset)
    del labels
    if (
        use_cache
        and marker.is_file()
        and semantic_index.is_fresh(directory, config, EMBEDDING_SOURCE)
    ):
        say(f"{n:,} vectors: reusing the index cached in {directory}")
        write_routes(directory, raw)
        return PreparedIndex(
            vectors=n,
            dimensions=dims,
            directory=directory,
            config=config,
            manifest=Manifest.read(directory),
            queries=np.load(directory / "queries.npy"),
            truth_ids=np.load(directory / "truth_ids.npy"),
            truth_scores=np.load(directory / "truth_scores.npy"),
            timings=json.loads(marker.read_text(encoding="utf-8")),
            cached=True,
        )
    for stale in cache_dir.glob(f"{directory.name.rsplit('-', 1)[0]}-*"):
        if stale != directory and (stale / MARKER_FILE).is_file():  # built by an older recipe
            shutil.rmtree(stale)
    say(f"{n:,} vectors: generating {dims}-dimensional clustered vectors")
    data = synthetic_set(n, dims, label_names, seed)
    generate_seconds = data.generate_seconds
    query_vectors = make_queries(data, queries, seed)
    embedder = SyntheticEmbedder(data, config.embedding.model_id, query_vectors, truth_depth(base))
    say(f"{n:,} vectors: build_index ({n:,} rows)")
    directory.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    started = time.perf_counter()
    with timed_make_faiss_index() as index_timing:
        manifest = build_index(config, embedder, directory, EMBEDDING_SOURCE)
    build_index_seconds = time.perf_counter() - started - embedder.truth_seconds
    del data
    write_routes(directory, raw)
    np.save(directory / "queries.npy", query_vectors)
    np.save(directory / "truth_ids.npy", embedder.truth_ids)
    np.save(directory / "truth_scores.npy", embedder.truth_scores)
    meta = {
        "index_build": index_timing[0],
        "build_index": build_index_seconds,
        "generate": generate_seconds,
        "truth": embedder.truth_seconds,
    }
    marker.write_text(json.dumps(meta), encoding="utf-8")
    say(f"{n:,} vectors: {manifest.index_type} built in {index_timing[0]:.1f} s")
    return PreparedIndex(
        vectors=n,
        dimensions=dims,
        directory=directory,
        config=config,
        manifest=manifest,
        queries=query_vectors,
        truth_ids=embedder.truth_ids,
        truth_scores=embedder.truth_scores,
        timings=meta,
        cached=False,
    )


# --------------------------------------------------------------------------------------------
