"""Scale benchmark of the semantic router: routing overhead, cold start and recall by index size.

    python scripts/benchmark.py [--sizes 10,1000,100000,1000000] [--queries 500]
                                [--dimensions 1024] [--format text|json] [--no-cache]

For reference sets of each size it builds a semantic index in the real format (``build_index``
writes index.faiss, labels.json and manifest.json, with the index type ``make_faiss_index`` picks
for that size) from synthetic embeddings, then measures:

* **Route-decision overhead** — the time the router's own code spends per request: the wall time
  of ``RouterHandler`` (Powertools decorators, request parsing, ``RouterService``,
  ``SemanticClassifier``, ``LoadedIndex.search``, the vote, response shaping) called with an API
  Gateway proxy event, minus the time spent inside the bedrock-runtime client. The client is an
  in-process fake that answers at once and times itself, so model time is ~0 and is subtracted
  exactly. Each request's embedding is a noisy copy of a random reference vector, so the search
  walks a realistic neighbourhood.
* **Cold start**, split into imports (numpy, faiss, ``llm_router.handler``), boto3 client creation
  (``llm_router.bedrock.runtime_client``), loading the routes file and ``load_index``, each timed
  in a fresh Python process, plus the index's size on disk.
* **Recall** of the index against exact (flat) search: recall@k for the configured semantic k and
  for 10, over the same queries through ``LoadedIndex.search``, and how often the routing decision
  (``decide``) on the index's neighbours equals the one on the exact neighbours.

Built indexes are cached under ``.build/benchmark/`` (git-ignored), keyed by everything that shapes
them, so a rerun only measures; ``--no-cache`` rebuilds.

Hand-written rather than pytest-benchmark: pytest-benchmark times micro-benchmarks inside a test
run, whereas this builds indexes up to a million vectors, measures cold starts in subprocesses and
prints figures (with the machine and every simplification) for the README.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import hashlib
import inspect
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401  (puts lambdas/ on sys.path)
import numpy as np
from apigw_events import LocalLambdaContext, proxy_event
from llm_router import semantic_index
from llm_router.classifiers.semantic import SCORE_DEPTH, decide
from llm_router.config import OUT_OF_SCOPE, RoutesConfig, load_routes, parse_routes
from llm_router.semantic_index import (
    INDEX_FILE,
    LABELS_FILE,
    MANIFEST_FILE,
    LoadedIndex,
    Manifest,
    build_index,
    load_index,
)
from text_table import table

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (10, 1_000, 100_000, 1_000_000)
DEFAULT_QUERIES = 500
DEFAULT_CACHE_DIR = REPO_ROOT / ".build" / "benchmark"
STRATEGY = "semantic"
# Recorded in the manifest; a router pointed at real Bedrock refuses such an index.
EMBEDDING_SOURCE = "synthetic-benchmark"
# Synthetic embeddings: unit centroids plus Gaussian noise of this norm (relative to the centroid)
# give a within-cluster cosine of about 1 / (1 + noise^2) = 0.5; a query is a reference vector plus
# noise of QUERY_NOISE, a cosine of about 0.89 to its source (a close paraphrase).
CENTROIDS = 300
CLUSTER_NOISE = 1.0
QUERY_NOISE = 0.5
CHUNK_ROWS = 65_536
WARMUP_REQUESTS = 5
RECALL_K = 10
TIE_TOLERANCE = 1e-5  # a neighbour this close to the exact k-th similarity counts as a hit
# Lambda's limit for code plus all layers, unzipped (layers/build.py LAMBDA_UNZIPPED_LIMIT_BYTES).
LAMBDA_LAYER_LIMIT_BYTES = 250 * 1024 * 1024
ROUTES_FILE = "routes.json"  # the synthetic routes document, written beside the index
MARKER_FILE = "benchmark.json"  # written last: the cached directory is complete
DATA_VERSION = 1  # bump when the synthetic data or the cache layout changes
PROMPT_PATTERN = re.compile(r"#(\d+)$")

Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU, cores, RAM and the versions the figures depend on."""
    import faiss

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return {
        "cpu": cpu,
        "cores": usable,
        "ram_bytes": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
    }


# --------------------------------------------------------------------------------------------
# Synthetic reference sets
# --------------------------------------------------------------------------------------------


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
        from llm_router.embeddings import Embedding

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


# --------------------------------------------------------------------------------------------
# Building (or reusing) an index
# --------------------------------------------------------------------------------------------


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
# Cold start, in a fresh interpreter
# --------------------------------------------------------------------------------------------

# Run with ``python -c``: the init phase of the Lambda, step by step. faiss is imported by
# ``load_index`` in the Lambda; it is timed on its own here so the import split is visible.
COLD_START_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import faiss
t2 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import llm_router.handler
t3 = time.perf_counter()
from llm_router.bedrock import runtime_client
client = runtime_client(region="us-east-1")
t4 = time.perf_counter()
from pathlib import Path
from llm_router.config import load_routes
from llm_router.semantic_index import load_index
directory = Path(sys.argv[2])
config = load_routes(directory / "routes.json")
t5 = time.perf_counter()
index = load_index(directory, config, sys.argv[3])
t6 = time.perf_counter()
print(json.dumps({
    "import_numpy": t1 - t0, "import_faiss": t2 - t1, "import_handler": t3 - t2,
    "imports": t3 - t0, "client": t4 - t3, "routes_load": t5 - t4, "index_load": t6 - t5,
    "vectors": index.index.ntotal,
}))
"""


def measure_cold_start(directory: Path) -> dict[str, float]:
    """Imports, client creation, routes and index load, timed in a fresh Python process."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            COLD_START_PROBE,
            str(REPO_ROOT / "lambdas"),
            str(directory),
            EMBEDDING_SOURCE,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"cold-start probe failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["process"] = wall
    return figures


# --------------------------------------------------------------------------------------------
# Per-request overhead through the Lambda handler
# --------------------------------------------------------------------------------------------

FAKE_ANSWER = "A synthetic answer from the benchmark's fake Bedrock client."


class FakeBedrockRuntime:
    """An in-process bedrock-runtime client that answers at once and times itself.

    ``invoke_model`` returns a Titan Text Embeddings V2 payload (the selected query vector);
    ``converse`` a Converse response. ``model_seconds`` is the time spent inside the client during
    the current request, which the benchmark subtracts from the handler's time.
    """

    def __init__(self, queries: np.ndarray) -> None:
        # Serialised up front, so the fake does no work per call beyond wrapping bytes.
        self._payloads = [
            json.dumps(
                {"embedding": np.asarray(q, dtype=np.float64).tolist(), "inputTextTokenCount": 9}
            ).encode()
            for q in queries
        ]
        self._current = 0
        self.model_seconds = 0.0
        self.calls: dict[str, int] = {"invoke_model": 0, "converse": 0}

    def select(self, query: int) -> None:
        """The next request embeds to query ``query``; restarts the model-time clock."""
        self._current = query % len(self._payloads)
        self.model_seconds = 0.0

    def invoke_model(self, modelId: str, body: str, contentType: str, accept: str) -> Any:  # noqa: N803
        started = time.perf_counter()
        response = {
            "body": io.BytesIO(self._payloads[self._current]),
            "contentType": accept,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        self.calls["invoke_model"] += 1
        self.model_seconds += time.perf_counter() - started
        return response

    def converse(self, modelId: str, **_request: Any) -> dict[str, Any]:  # noqa: N803
        started = time.perf_counter()
        response = {
            "output": {"message": {"role": "assistant", "content": [{"text": FAKE_ANSWER}]}},
            "usage": {"inputTokens": 60, "outputTokens": 12, "totalTokens": 72},
            "stopReason": "end_turn",
            "metrics": {"latencyMs": 0},
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        self.calls["converse"] += 1
        self.model_seconds += time.perf_counter() - started
        return response


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: Powertools' log lines and metrics are still formatted
    and written (their cost counts), but do not flood the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = np.asarray(seconds, dtype=np.float64) * 1000
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "mean": float(values.mean())}


def measure_overhead(prepared: PreparedIndex, requests: int) -> dict[str, Any]:
    """Handler time minus model time per request, through the real handler and service."""
    from llm_router.factory import build_service
    from llm_router.handler import RouterHandler

    fake = FakeBedrockRuntime(prepared.queries)
    started = time.perf_counter()
    service = build_service(
        STRATEGY,
        prepared.config,
        client=fake,
        index_dir=prepared.directory,
        embedding_source=EMBEDDING_SOURCE,
    )
    load_seconds = time.perf_counter() - started
    with stdout_to_devnull():  # the "router ready" log line
        handler = RouterHandler(service_factory=lambda: service, eager=True)
    total = WARMUP_REQUESTS + requests
    events = [
        proxy_event(json.dumps({"question": f"Synthetic benchmark question number {i}?"}))
        for i in range(total)
    ]
    contexts = [LocalLambdaContext() for _ in range(total)]
    handler_seconds: list[float] = []
    overhead: list[float] = []
    model: list[float] = []
    statuses: dict[int, int] = {}
    decisions: dict[str, int] = {}
    with stdout_to_devnull():
        for i in range(total):
            fake.select(i)
            started = time.perf_counter()
            response = handler(events[i], contexts[i])
            elapsed = time.perf_counter() - started
            if i < WARMUP_REQUESTS:
                continue
            statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
            if response["statusCode"] == 200:
                category = json.loads(response["body"])["question_classification"]
                decisions[category] = decisions.get(category, 0) + 1
            handler_seconds.append(elapsed)
            model.append(fake.model_seconds)
            overhead.append(elapsed - fake.model_seconds)
    if set(statuses) != {200}:
        raise RuntimeError(f"the handler did not answer every request with 200: {statuses}")
    return {
        "requests": requests,
        "warmup_requests": WARMUP_REQUESTS,
        "overhead_ms": percentiles_ms(overhead),
        "handler_ms": percentiles_ms(handler_seconds),
        "model_ms": percentiles_ms(model),
        "decisions": decisions,
        "bedrock_calls": fake.calls,
        "in_process_index_load_seconds": load_seconds,
    }


# --------------------------------------------------------------------------------------------
# Recall against exact search
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def benchmark_size(
    n: int,
    dims: int,
    queries: int,
    seed: int,
    base: RoutesConfig,
    cache_dir: Path,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every figure for one reference-set size."""
    say = progress or (lambda _msg: None)
    prepared = prepare_index(n, dims, queries, seed, base, cache_dir, use_cache, progress)
    files = prepared.file_bytes()
    say(f"{n:,} vectors: cold start in a fresh process")
    cold = measure_cold_start(prepared.directory)
    say(f"{n:,} vectors: recall over {queries} queries")
    recall = measure_recall(prepared)
    say(f"{n:,} vectors: {queries} requests through the handler")
    overhead = measure_overhead(prepared, queries)
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
    rows = [
        benchmark_size(n, dims, queries, seed, base, cache_dir, use_cache, progress)
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


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _mb(size: int) -> str:
    mib = size / (1024 * 1024)
    return f"{mib:,.1f}" if mib >= 10 else f"{mib:.3f}"


def format_text(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    ks = [str(k) for k in s["recall_k"]]
    lines = [
        "Semantic router scale benchmark",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / 2**30:.1f} GiB RAM, "
        f"{m['os']}; Python {m['python']}, numpy {m['numpy']}, faiss {m['faiss']} "
        f"({m['faiss_threads']} threads)",
        f"settings: {s['dimensions']} dimensions, {s['queries']} queries per size, strategy "
        f"{s['strategy']}, semantic k {s['semantic_k']}, index thresholds {s['thresholds']}",
        "",
        "Per request: route-decision overhead = handler time - model time (ms); "
        "recall against exact search",
    ]
    per_request = []
    for r in result["rows"]:
        recall = [f"{r['recall'][k]:.4f}" for k in ks]
        per_request.append(
            [
                f"{r['vectors']:,}",
                str(r["dimensions"]),
                r["index_type"],
                *recall,
                f"{r['route_agreement'] * 100:.1f}%",
                f"{r['search_ms']['p50']:.3f}",
                f"{r['overhead_ms']['p50']:.3f}",
                f"{r['overhead_ms']['p99']:.3f}",
            ]
        )
    lines += table(
        [
            "vectors",
            "dims",
            "index",
            *(f"recall@{k}" for k in ks),
            "same route",
            "search p50",
            "overhead p50",
            "overhead p99",
        ],
        per_request,
        left=0,
    )
    lines += ["", "Cold start (s, fresh process) and index size"]
    cold_rows = []
    for r in result["rows"]:
        c = r["cold_start_seconds"]
        build = r["build_seconds"]["index_build"]
        cold_rows.append(
            [
                f"{r['vectors']:,}",
                r["index_type"],
                _mb(r["file_bytes"][INDEX_FILE]),
                _mb(r["index_dir_bytes"]),
                "yes" if r["fits_lambda_250mb_limit"] else "NO",
                f"{build:.2f}" + (" (cached)" if r["built_from_cache"] else ""),
                f"{c['import_numpy']:.3f}",
                f"{c['import_faiss']:.3f}",
                f"{c['import_handler']:.3f}",
                f"{c['client']:.3f}",
                f"{c['routes_load']:.3f}",
                f"{c['index_load']:.3f}",
            ]
        )
    lines += table(
        [
            "vectors",
            "index",
            "index MiB",
            "dir MiB",
            "<250 MiB",
            "build s",
            "numpy",
            "faiss",
            "handler",
            "client",
            "routes",
            "load_index",
        ],
        cold_rows,
        left=0,
    )
    lines += [
        "",
        "imports: numpy, faiss, llm_router.handler (boto3, Powertools, the router); client: "
        "runtime_client(); routes: load_routes(); load_index: manifest check, labels, index.",
        "",
        "Simplifications:",
        *(f"- {note}" for note in result["simplifications"]),
        "",
        f"total wall time: {result['total_seconds']:.1f} s",
    ]
    return "\n".join(lines)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"sizes must be integers, got {text!r}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def run_cold(args: argparse.Namespace) -> int:
    """``--cold``: the cold-start benchmark, in its own module."""
    from benchmarks.cold_start import format_cold_start, run_cold_start

    if args.runs < 1:
        raise SystemExit("benchmark.py: error: --runs must be at least 1")
    routers = [r.strip() for r in args.routers.split(",") if r.strip()] if args.routers else None
    say = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    result = run_cold_start(routers, args.runs, say)
    print(json.dumps(result, indent=2) if args.format == "json" else format_cold_start(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="reference-set sizes, comma-separated (default: 10,1000,100000,1000000)",
    )
    parser.add_argument(
        "--queries", type=int, default=DEFAULT_QUERIES, help="queries (and requests) per size"
    )
    parser.add_argument(
        "--dimensions",
        type=int,
        choices=(256, 512, 1024),
        default=None,
        help="embedding dimensions (default: routes.json's)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--no-cache", action="store_true", help="rebuild every index")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="instead: each router's cold start beside the original sample's floor "
        "(scripts/benchmarks/cold_start.py)",
    )
    parser.add_argument("--runs", type=int, default=10, help="--cold: processes per figure (10)")
    parser.add_argument(
        "--routers", default=None, help="--cold: comma-separated routers (default: all)"
    )
    args = parser.parse_args(argv)
    if args.cold:
        return run_cold(args)
    if args.queries < 1:
        parser.error("--queries must be at least 1")
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    result = run(
        args.sizes,
        dims=args.dimensions,
        queries=args.queries,
        seed=args.seed,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=None if args.quiet else progress,
    )
    print(json.dumps(result, indent=2) if args.format == "json" else format_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
