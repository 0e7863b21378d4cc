"""The semantic router's reference index: building it, and loading it safely at cold start.

An index is a directory of four files: ``index.faiss`` (the FAISS index of the reference prompts'
embeddings, L2-normalised so inner product is cosine similarity), ``labels.json`` (category and
prompt of each row), ``head.npz`` (the calibrated logistic-regression head trained on the same
vectors, ``linear_head``) and ``manifest.json`` (what the vectors were made with). Each prompt is
embedded as its routing text (``normalize.routing_text``), the form questions are classified in.
The Lambda refuses to serve an index whose manifest does not match its configured embedding model,
dimensions, normalisation or reference prompts: a mismatched index routes silently and wrongly,
which is worse than not routing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, overload

import numpy as np

from ..config import ConfigError, RoutesConfig
from ..config.topic_bank import load_topic_bank
from ..records import record
from .linear_head import HEAD_FILE, LinearHead, train_head
from .normalize import routing_text
from .topic_adoption import match_topics

INDEX_FILE = "index.faiss"
LABELS_FILE = "labels.json"
MANIFEST_FILE = "manifest.json"
TOPIC_DECISIONS_FILE = "topic-bank.json"  # how the topic bank was matched (routes that use it)
# 2: routing-text prompts, head.npz beside the index; 3: head version 2; 4: the head trained to
# convergence (linear_head's batched row-space fit), so older heads are rebuilt; 5: head version 3;
# 6: six clusterings (linear_head.CV_REPEATS); 7: head version 4 (the folds, for the fit's
# out-of-fold nearest-neighbour votes). The manifest does not see the head's settings, so
# a change to them bumps this.
MANIFEST_VERSION = 7
# The index type by number of vectors (measurements in make_faiss_index's docstring): exact flat
# search below HNSW_THRESHOLD, HNSW up to IVF_THRESHOLD, IVF-Flat from there.
HNSW_THRESHOLD = 20_000
IVF_THRESHOLD = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # above the 64 neighbours the semantic classifier reads
IVF_NPROBE = 16
IVF_TRAINING_POINTS_PER_LIST = 64


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    def embed(self, text: str) -> Any: ...


class IndexMismatch(ConfigError):
    """The index on disk was built for a different embedding setup than the one configured."""


@record(frozen=True)
class Manifest:
    manifest_version: int
    embedding_model_id: str
    dimensions: int
    normalize: bool
    vectors: int
    reference_prompts_sha256: str
    embedding_source: str  # "bedrock" or "offline-stand-in"
    index_type: str
    faiss_version: str
    built_at: str

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        data = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@record(frozen=True)
class ReferenceRow:
    category: str
    prompt: str


class ReferenceRows(Sequence[ReferenceRow]):
    """The index's rows, made into ``ReferenceRow`` objects when first read: a search returns a
    few of them, so a cold start does not build all of them (979 records, ~2 ms) up front."""

    def __init__(self, labels: list[dict[str, str]]) -> None:
        self._labels = labels
        self._rows: list[ReferenceRow | None] = [None] * len(labels)

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> ReferenceRow: ...

    @overload
    def __getitem__(self, i: slice) -> list[ReferenceRow]: ...

    def __getitem__(self, i: int | slice) -> ReferenceRow | list[ReferenceRow]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        row = self._rows[i]
        if row is None:
            row = self._rows[i] = ReferenceRow(**self._labels[i])
        return row


@record
class LoadedIndex:
    index: Any  # faiss.Index
    rows: Sequence[ReferenceRow]
    manifest: Manifest
    head: LinearHead | None = None  # None for an index directory without head.npz

    def search(self, vector: np.ndarray, k: int) -> list[tuple[ReferenceRow, float]]:
        """The k nearest reference prompts with their cosine similarity, best first."""
        import faiss

        query = np.asarray(vector, dtype=np.float32).reshape(1, -1).copy()
        faiss.normalize_L2(query)
        scores, ids = self.index.search(query, min(k, len(self.rows)))
        return [(self.rows[i], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors(self) -> np.ndarray:
        """Every row's stored (unit) vector, in the rows' order: for the fit, never per request."""
        import faiss

        index = self.index
        if isinstance(index, faiss.IndexIVF):
            index.make_direct_map()
        return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)


def make_faiss_index(vectors: np.ndarray) -> tuple[Any, str]:
    """The FAISS index for L2-normalised ``vectors`` (inner product = cosine), chosen by size.

    Every kind keeps the full float32 vectors, so the similarities compared with the thresholds
    are exact; only which neighbours are found can differ from exact search. Figures measured
    with scripts/benchmark.py (synthetic clustered 1,024-dimensional vectors; search = one
    ``LoadedIndex.search`` of 64 neighbours, p50) on a 2-core AMD EPYC with faiss 1.15.1; "~"
    marks figures from faiss alone on the same data (sizes and settings the script does not run):

    * below HNSW_THRESHOLD (20,000): exact flat search, which reads every vector (4 KB each) per
      query on one core: 0.16 ms at 1,000 vectors, 6.6 ms at 19,999, 21 ms at 49,999, ~35 ms at
      100,000. The threshold was 50,000; lowered so the exact scan stays under 10 ms.
    * up to IVF_THRESHOLD (200,000): HNSW (M 32, efConstruction 80) with efSearch 128, more than
      the 64 neighbours the classifier reads (efSearch was 64): 20,000 vectors build in 9 s and
      search in 1.1 ms; 100,000 in 42 s, 0.5 ms, recall@10 1.0 (~0.9993 at efSearch 64);
      199,999 in 72 s, 0.6 ms, recall@10 0.9993. At 250,000 the build took ~150 s and recall@10
      was ~0.962 / 0.992 / 0.999 at efSearch 64 / 128 / 256: build time and search effort grow
      too fast, and a million vectors would take well over ten minutes to build on 2 cores.
    * from IVF_THRESHOLD: IVF-Flat with round(sqrt(n)) lists, k-means-trained on 64 sampled
      vectors per list, searching IVF_NPROBE (16) lists: 200,000 vectors (447 lists) build in
      4.6 s and search in 1.9 ms; 1,000,000 (1,000 lists) in 35 s and 4.3-5.4 ms; recall@10 1.0
      at both. nprobe 8 also gave ~1.0 at a million (~2.4 ms), but clustered synthetic data suits
      IVF's partitions, so 16 leaves a margin for real embeddings.
    """
    import faiss

    count, dims = vectors.shape
    if count < HNSW_THRESHOLD:
        index = faiss.IndexFlatIP(dims)
        kind = "flat-ip"
    elif count < IVF_THRESHOLD:
        index = faiss.IndexHNSWFlat(dims, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        kind = f"hnsw{HNSW_M}-ip"
    else:
        lists = max(1, round(count**0.5))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dims), dims, lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        sample = min(count, IVF_TRAINING_POINTS_PER_LIST * lists)
        rows = np.sort(np.random.default_rng(0).choice(count, sample, replace=False))
        index.train(vectors[rows])
        index.nprobe = min(IVF_NPROBE, lists)
        kind = f"ivf{lists}-flat-ip"
    index.add(vectors)
    return index, kind


def build_index(
    config: RoutesConfig,
    embedder: Embedder,
    out_dir: Path,
    embedding_source: str,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Embed every reference prompt with the configured embedder and write the index directory.

    With ``out_of_scope.topic_bank`` the bank's questions are embedded too and matched to the
    categories (``topic_adoption``): adopted and off-topic topics join the rows, the decisions
    are written to ``TOPIC_DECISIONS_FILE`` beside the index.
    """
    import faiss

    rows = [ReferenceRow(c, p) for c, p in config.reference_prompts()]
    if not rows:
        raise ValueError("the routes configuration has no reference prompts to index")
    bank = load_topic_bank() if config.out_of_scope.topic_bank else {}
    bank_rows = [(topic, q) for topic, questions in bank.items() for q in questions]
    texts = [row.prompt for row in rows] + [q for _, q in bank_rows]
    vectors = np.zeros((len(texts), config.embedding.dimensions), dtype=np.float32)
    for i, text in enumerate(texts):
        vectors[i] = embedder.embed(routing_text(text)).vector
        if progress:
            progress(i + 1, len(texts))
    faiss.normalize_L2(vectors)
    out_dir.mkdir(parents=True, exist_ok=True)
    if bank_rows:
        rows, vectors = _with_topic_bank(rows, vectors, bank_rows, out_dir)
    index, kind = make_faiss_index(vectors)
    faiss.write_index(index, str(out_dir / INDEX_FILE))
    labels = [row.category for row in rows]
    head, _ = train_head(vectors, labels, classes=list(dict.fromkeys(labels)))
    head.save(out_dir)
    (out_dir / LABELS_FILE).write_text(
        json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=0), encoding="utf-8"
    )
    manifest = Manifest(
        manifest_version=MANIFEST_VERSION,
        embedding_model_id=config.embedding.model_id,
        dimensions=config.embedding.dimensions,
        normalize=config.embedding.normalize,
        vectors=len(rows),
        reference_prompts_sha256=config.reference_prompts_hash(),
        embedding_source=embedding_source,
        index_type=kind,
        faiss_version=faiss.__version__,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    (out_dir / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
    return manifest


def _with_topic_bank(
    rows: list[ReferenceRow],
    vectors: np.ndarray,
    bank_rows: Sequence[tuple[str, str]],
    out_dir: Path,
) -> tuple[list[ReferenceRow], np.ndarray]:
    """The routes file's rows plus the bank's adopted and off-topic rows (the first ``len(rows)``
    of ``vectors`` are the routes file's, the rest the bank's); the decisions written beside."""
    own, bank = vectors[: len(rows)], vectors[len(rows):]
    labels = [row.category for row in rows]
    decisions = match_topics(
        own, labels, list(dict.fromkeys(labels)), bank, [topic for topic, _ in bank_rows]
    )
    (out_dir / TOPIC_DECISIONS_FILE).write_text(
        json.dumps([asdict(d) for d in decisions], indent=1), encoding="utf-8"
    )
    label_of = {d.topic: d.label for d in decisions}
    kept = [i for i, (topic, _) in enumerate(bank_rows) if label_of[topic] is not None]
    extra = [ReferenceRow(str(label_of[bank_rows[i][0]]), bank_rows[i][1]) for i in kept]
    return rows + extra, np.vstack([own, bank[kept]])


def manifest_problems(manifest: Manifest, config: RoutesConfig, embedding_source: str) -> list[str]:
    """Every way the manifest disagrees with the configuration; empty when the index fits."""
    expected = {
        "manifest_version": MANIFEST_VERSION,
        "embedding_model_id": config.embedding.model_id,
        "dimensions": config.embedding.dimensions,
        "normalize": config.embedding.normalize,
        "reference_prompts_sha256": config.reference_prompts_hash(),
        "embedding_source": embedding_source,
    }
    return [
        f"{key}: index has {getattr(manifest, key)!r}, configuration expects {value!r}"
        for key, value in expected.items()
        if getattr(manifest, key) != value
    ]


def is_fresh(directory: Path, config: RoutesConfig, embedding_source: str) -> bool:
    """True when a complete index for exactly this configuration exists in ``directory``."""
    try:
        manifest = Manifest.read(directory)
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return False
    return (directory / INDEX_FILE).is_file() and not manifest_problems(
        manifest, config, embedding_source
    )


def load_index(directory: Path, config: RoutesConfig, embedding_source: str) -> LoadedIndex:
    """Load the index, refusing one built for another embedding setup (IndexMismatch)."""
    import faiss

    try:
        manifest = Manifest.read(directory)
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise IndexMismatch(f"no readable index manifest in {directory}: {exc}") from exc
    problems = manifest_problems(manifest, config, embedding_source)
    if problems:
        raise IndexMismatch(
            f"semantic index in {directory} does not match the routes configuration: "
            + "; ".join(problems)
        )
    rows = ReferenceRows(json.loads((directory / LABELS_FILE).read_text(encoding="utf-8")))
    index = faiss.read_index(str(directory / INDEX_FILE))
    if not (index.ntotal == len(rows) == manifest.vectors and index.d == manifest.dimensions):
        raise IndexMismatch(
            f"semantic index in {directory} is inconsistent: {index.ntotal} vectors of {index.d} "
            f"dimensions, {len(rows)} labels, manifest says "
            f"{manifest.vectors}x{manifest.dimensions}"
        )
    head = LinearHead.load(directory) if (directory / HEAD_FILE).is_file() else None
    return LoadedIndex(index=index, rows=rows, manifest=manifest, head=head)
