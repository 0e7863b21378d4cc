"""The stand-in's MiniLM vectors on disk, keyed by the model and the text.

Why: every offline evaluation, index build and test session embeds the same texts again (979
reference prompts, 420 MMLU questions), and MiniLM in numpy spends about 0.1 s on each on this
2-core machine: most of an evaluation's time. A vector is a pure function of the model and the
text, so it is computed once and read back afterwards.

* **Key**: SHA-256 of the model's fingerprint (``minilm.model_fingerprint``: the weights, the
  tokenizer, the encoder's source and the numpy and tokenizers versions), the normalisation flag
  and the text. A changed model or a changed text is a different key, so nothing stale is ever
  read; entries of other fingerprints are deleted when the cache is opened, so the file does not
  grow with every change.
* **Store**: one SQLite file (stdlib, safe for several processes: a test run and an evaluation
  can share it), ``.build/embedding-cache/`` by default (git-ignored), or the path in
  ``BEDROCK_STANDIN_EMBEDDING_CACHE``; ``off`` there turns the cache off. The vectors are the
  float64 bytes MiniLM computed, so a hit returns exactly what a computation would.
* **Failure**: a cache that cannot be opened or written is switched off with one warning; the
  stand-in then computes every vector, as it did before the cache existed.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

CACHE_ENV = "BEDROCK_STANDIN_EMBEDDING_CACHE"
OFF = "off"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / ".build" / "embedding-cache" / "minilm.sqlite3"
_BUSY_TIMEOUT_S = 10.0  # another process writing: wait (writes take milliseconds), then skip
_CHUNK = 500  # keys per SELECT (SQLite's bound-parameter limit is far above)


def configured_path() -> Path | None:
    """Where the shared model's cache lives: the environment's path, the default, or None (off)."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() == OFF:
        return None
    return Path(value) if value else DEFAULT_PATH


def cache_key(model: str, text: str, normalize: bool) -> bytes:
    """The key of one vector: model fingerprint, normalisation and text, unambiguously joined."""
    digest = hashlib.sha256()
    for part in (model, "normalized" if normalize else "raw", text):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.digest()


class EmbeddingCache:
    """Vectors of one model (``model``: its fingerprint) in a SQLite file; thread-safe."""

    def __init__(self, path: Path, model: str, dimensions: int) -> None:
        self.path = path
        self.model = model
        self.dimensions = dimensions
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
            db.execute("PRAGMA synchronous=NORMAL")  # a cache: a lost last write costs nothing
            with db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS vectors "
                    "(key BLOB PRIMARY KEY, model TEXT NOT NULL, vector BLOB NOT NULL)"
                )
            # Write only when there is something stale: a write waits for other processes'.
            stale = "SELECT 1 FROM vectors WHERE model != ? LIMIT 1"
            if db.execute(stale, (model,)).fetchone():
                with db:
                    db.execute("DELETE FROM vectors WHERE model != ?", (model,))
            self._db = db
        except (OSError, sqlite3.Error) as exc:
            self._disable(exc)

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def get_many(self, texts: Sequence[str], normalize: bool) -> dict[str, np.ndarray]:
        """The cached vectors among ``texts`` (read-only arrays), by text."""
        keys = {cache_key(self.model, t, normalize): t for t in texts}
        found: dict[str, np.ndarray] = {}
        with self._lock:
            if self._db is None:
                return found
            try:
                wanted = list(keys)
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk
                    ).fetchall()
                    for key, blob in rows:
                        vector = np.frombuffer(blob, dtype=np.float64)
                        if vector.shape == (self.dimensions,):
                            found[keys[bytes(key)]] = vector
            except sqlite3.Error as exc:
                self._disable(exc)
        return found

    def get(self, text: str, normalize: bool) -> np.ndarray | None:
        return self.get_many([text], normalize).get(text)

    def put_many(self, items: Iterable[tuple[str, np.ndarray]], normalize: bool) -> None:
        rows = [
            (cache_key(self.model, text, normalize), self.model,
             np.ascontiguousarray(vector, dtype=np.float64).tobytes())
            for text, vector in items
        ]
        with self._lock:
            if self._db is None or not rows:
                return
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO vectors (key, model, vector) VALUES (?, ?, ?)", rows
                    )
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):  # busy past the timeout: skip this write only
                    self._disable(exc)
            except sqlite3.Error as exc:
                self._disable(exc)

    def put(self, text: str, vector: np.ndarray, normalize: bool) -> None:
        self.put_many([(text, vector)], normalize)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _disable(self, exc: Exception) -> None:
        print(
            f"bedrock stand-in: embedding cache {self.path} is off ({exc}); computing every vector",
            file=sys.stderr,
        )
        if self._db is not None:
            self._db.close()
        self._db = None
