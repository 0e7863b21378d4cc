"""The semantic router's reference index: building it, and loading it safely at cold start.

An index is a directory of three files: ``index.faiss`` (the FAISS index of the reference prompts'
embeddings, L2-normalised so inner product is cosine similarity), ``labels.json`` (category and
prompt of each row) and ``manifest.json`` (what the vectors were made with). The Lambda refuses to
serve an index whose manifest does not match its configured embedding model, dimensions,
normalisation or reference prompts: a mismatched index routes silently and wrongly, which is worse
than not routing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .config import RoutesConfig

INDEX_FILE = "index.faiss"
LABELS_FILE = "labels.json"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
# Above this many vectors an approximate (HNSW) index replaces exact flat search.
HNSW_THRESHOLD = 50_000


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    def embed(self, text: str) -> Any: ...


class IndexMismatch(RuntimeError):
    """The index on disk was built for a different embedding setup than the one configured."""


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class ReferenceRow:
    category: str
    prompt: str


@dataclass
class LoadedIndex:
    index: Any  # faiss.Index
    rows: list[ReferenceRow]
    manifest: Manifest

    def search(self, vector: np.ndarray, k: int) -> list[tuple[ReferenceRow, float]]:
        """The k nearest reference prompts with their cosine similarity, best first."""
        import faiss

        query = np.asarray(vector, dtype=np.float32).reshape(1, -1).copy()
        faiss.normalize_L2(query)
        scores, ids = self.index.search(query, min(k, len(self.rows)))
        return [(self.rows[i], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def make_faiss_index(vectors: np.ndarray) -> tuple[Any, str]:
    """Exact inner-product search when small; HNSW when large enough for exact search to hurt."""
    import faiss

    dims = vectors.shape[1]
    if len(vectors) < HNSW_THRESHOLD:
        index = faiss.IndexFlatIP(dims)
        kind = "flat-ip"
    else:
        index = faiss.IndexHNSWFlat(dims, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
        kind = "hnsw32-ip"
    index.add(vectors)
    return index, kind


def build_index(
    config: RoutesConfig,
    embedder: Embedder,
    out_dir: Path,
    embedding_source: str,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Embed every reference prompt with the configured embedder and write the index directory."""
    import faiss

    rows = [ReferenceRow(c, p) for c, p in config.reference_prompts()]
    if not rows:
        raise ValueError("the routes configuration has no reference prompts to index")
    vectors = np.zeros((len(rows), config.embedding.dimensions), dtype=np.float32)
    for i, row in enumerate(rows):
        vectors[i] = embedder.embed(row.prompt).vector
        if progress:
            progress(i + 1, len(rows))
    faiss.normalize_L2(vectors)
    index, kind = make_faiss_index(vectors)
    out_dir.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(out_dir / INDEX_FILE))
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


def manifest_problems(manifest: Manifest, config: RoutesConfig, embedding_source: str) -> list[str]:
    """Every way the manifest disagrees with the configuration; empty when the index fits."""
    expected = {
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
    rows = [
        ReferenceRow(**r)
        for r in json.loads((directory / LABELS_FILE).read_text(encoding="utf-8"))
    ]
    index = faiss.read_index(str(directory / INDEX_FILE))
    if not (index.ntotal == len(rows) == manifest.vectors and index.d == manifest.dimensions):
        raise IndexMismatch(
            f"semantic index in {directory} is inconsistent: {index.ntotal} vectors of {index.d} "
            f"dimensions, {len(rows)} labels, manifest says "
            f"{manifest.vectors}x{manifest.dimensions}"
        )
    return LoadedIndex(index=index, rows=rows, manifest=manifest)
