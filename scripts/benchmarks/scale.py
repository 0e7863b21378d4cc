"""The scale benchmark's run: every figure for each reference-set size, the machine, the
settings and the simplifications the figures rest on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_router.config import OUT_OF_SCOPE, RoutesConfig, load_routes
from llm_router.decision import semantic_index

from .index_cache import DEFAULT_CACHE_DIR, RECALL_K, PreparedIndex, Progress, prepare_index
from .machine import machine_info
from .overhead import STRATEGY, WARMUP_REQUESTS, measure_overhead
from .recall import measure_recall
from .scale_cold import measure_cold_start
from .stack_env import StackEnvironment, router_environment, synthesized_templates
from .synthetic import CENTROIDS, CLUSTER_NOISE, QUERY_NOISE

# A million is opt-in (--sizes ...,1000000): building its index trains the learned head on every
# row, which grows linearly, about 5 s per 1,000 rows on a 2-core machine (measured: 6.1 s at
# 1,000, 52.7 s at 10,000); at that rate a million is an hour and a half before any figure.
DEFAULT_SIZES = (10, 1_000, 100_000)
DEFAULT_QUERIES = 500
# Lambda's limit for code plus all layers, unzipped (layers/build.py LAMBDA_UNZIPPED_LIMIT_BYTES).
LAMBDA_LAYER_LIMIT_BYTES = 250 * 1024 * 1024


def benchmark_size(
    prepared: PreparedIndex,
    queries: int,
    progress: Progress | None = None,
    stack_env: StackEnvironment | None = None,
) -> dict[str, Any]:
    """Every figure for one reference-set size, measured on its index (from
    :func:`prepare_index`, which alone knows how an index is built or reused); the requests run
    with ``stack_env``, the router function's environment as its stack sets it."""
    say = progress or (lambda _msg: None)
    n, dims = prepared.vectors, prepared.dimensions
    files = prepared.file_bytes()
    say(f"{n:,} vectors: cold start in a fresh process")
    cold = measure_cold_start(prepared.directory)
    say(f"{n:,} vectors: recall over {queries} queries")
    recall = measure_recall(prepared)
    say(f"{n:,} vectors: {queries} requests through the handler")
    if stack_env is None:
        raise ValueError("the overhead is measured with the stack's environment")
    overhead = measure_overhead(prepared, queries, stack_env)
    return {
        "vectors": n,
        "dimensions": dims,
        "index_type": prepared.manifest.index_type,
        "exact": prepared.manifest.index_type.startswith("flat"),
        "file_bytes": files,
        "index_dir_bytes": sum(files.values()),
        "fits_lambda_250mb_limit": sum(files.values()) < LAMBDA_LAYER_LIMIT_BYTES,
        "build_seconds": prepared.timings,
        "built_from_cache": prepared.cached,
        **recall,
        **overhead,
        "cold_start_seconds": cold,
    }


def simplifications(dims: int, base: RoutesConfig) -> list[str]:
    return [
        f"Synthetic embeddings, not Titan's: {dims}-dimensional unit vectors around {CENTROIDS} "
        f"random centroids plus Gaussian noise (within-cluster cosine ~0.5), L2-normalised. "
        "Clustered because real embeddings are; uniform random vectors would be the worst case "
        "for approximate search and unlike real data. The clusters are cleaner than real "
        "embeddings' (which suits IVF's partitions) and isotropic inside (which does not suit "
        "HNSW's graph), so read recall as indicative, not as a guarantee.",
        f"Queries are noisy copies of random reference vectors (cosine ~0.89 to their source); "
        f"reference prompts are synthetic strings labelled {', '.join(base.category_names)} or "
        f"{OUT_OF_SCOPE} by cluster; the thresholds and semantic k ({base.semantic_k}) are "
        "routes.json's.",
        "Bedrock is an in-process fake that answers at once and times itself; its time is "
        "subtracted, so the overhead excludes botocore's serialisation, signing and the network.",
        "Powertools' log lines and metrics are formatted and written to /dev/null.",
        "The handler runs with the router function's environment from the synthesized stack: "
        "the daily budget guard's DynamoDB calls go to moto's server, a thread of this "
        "process (its time and CPU count in the overhead), and each request is traced "
        "(a sampled trace header), as the stack configures the function.",
        f"Overhead percentiles over the requests after {WARMUP_REQUESTS} warm-up requests, one "
        "request at a time on this machine; a Lambda at 1,024 MB gets about 0.6 of a vCPU, so "
        "expect it slower there.",
        "Cold start runs in a fresh Python process on this machine, with the index files in the "
        "OS page cache (just written or reused), not on Lambda's layer storage; the Lambda "
        "runtime's own start-up is not included.",
        "Index build time is make_faiss_index inside build_index on this machine; generating the "
        "synthetic vectors and the exact neighbours is excluded. Cached rows report the build "
        "time of the run that built them.",
        "Index size is index.faiss + labels.json + manifest.json; Lambda allows 250 MiB unzipped "
        "for code plus all layers, and the runtime layer (numpy, faiss) takes part of that.",
    ]


def run(
    sizes: Sequence[int],
    dims: int | None = None,
    queries: int = DEFAULT_QUERIES,
    seed: int = 0,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    use_cache: bool = True,
    progress: Progress | None = None,
    base: RoutesConfig | None = None,
) -> dict[str, Any]:
    """The whole benchmark: machine, settings, one row per size, and the simplifications."""
    started = time.perf_counter()
    base = base or load_routes()
    dims = dims or base.embedding.dimensions
    if progress:
        progress("synthesizing the stacks for the router function's environment")
    templates = synthesized_templates(base.preset)
    with contextlib.ExitStack() as stack:
        stack_env = router_environment(STRATEGY, templates, stack)
        rows = [
            benchmark_size(
                prepare_index(n, dims, queries, seed, base, cache_dir, use_cache, progress),
                queries,
                progress,
                stack_env,
            )
            for n in sizes
        ]
    return {
        "machine": machine_info(),
        "settings": {
            "sizes": list(sizes),
            "dimensions": dims,
            "queries": queries,
            "seed": seed,
            "semantic_k": base.semantic_k,
            "recall_k": sorted({base.semantic_k, RECALL_K}),
            "strategy": STRATEGY,
            "thresholds": {
                "hnsw": getattr(semantic_index, "HNSW_THRESHOLD", None),
                "ivf": getattr(semantic_index, "IVF_THRESHOLD", None),
            },
            "centroids": CENTROIDS,
            "cluster_noise": CLUSTER_NOISE,
            "query_noise": QUERY_NOISE,
        },
        "rows": rows,
        "simplifications": simplifications(dims, base),
        "total_seconds": time.perf_counter() - started,
    }
