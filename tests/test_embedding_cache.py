"""The stand-in's embedding cache: keyed by the model and the text, never stale, shared by
processes, and off when it cannot work; MiniLM's embed and embed_many read through it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bedrock_standin import embedding_cache, minilm
from bedrock_standin.embedding_cache import EmbeddingCache, cache_key, configured_path
from conftest import TITAN_EMBED

pytestmark = pytest.mark.generic  # holds for any valid routes file

VECTOR = np.arange(4, dtype=np.float64) / 10


def test_a_vector_is_found_only_for_the_same_model_text_and_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = EmbeddingCache(path, "model-a", 4)
    cache.put("Who was Charlemagne?", VECTOR, normalize=True)
    assert np.array_equal(cache.get("Who was Charlemagne?", True), VECTOR)
    assert cache.get("Who was Charlemagne ?", True) is None  # another text
    assert cache.get("Who was Charlemagne?", False) is None  # another normalisation
    cache.close()
    other = EmbeddingCache(path, "model-b", 4)  # another model, same file
    assert other.get("Who was Charlemagne?", True) is None
    other.close()
    # Opening with model-b dropped model-a's vectors: the file keeps one model's.
    again = EmbeddingCache(path, "model-a", 4)
    assert again.get("Who was Charlemagne?", True) is None
    again.close()


def test_keys_do_not_collide_when_parts_are_joined_differently() -> None:
    assert cache_key("ab", "c", True) != cache_key("a", "bc", True)
    assert cache_key("m", "t", True) != cache_key("m", "t", False)


def test_vectors_of_another_shape_are_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    EmbeddingCache(path, "m", 4).put("q", VECTOR, True)
    assert EmbeddingCache(path, "m", 8).get("q", True) is None


def test_the_environment_chooses_the_file_or_turns_the_cache_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(embedding_cache.CACHE_ENV, raising=False)
    assert configured_path() == embedding_cache.DEFAULT_PATH
    assert ".build" in embedding_cache.DEFAULT_PATH.parts
    monkeypatch.setenv(embedding_cache.CACHE_ENV, str(tmp_path / "x.sqlite3"))
    assert configured_path() == tmp_path / "x.sqlite3"
    monkeypatch.setenv(embedding_cache.CACHE_ENV, "off")
    assert configured_path() is None


def test_a_cache_that_cannot_be_opened_is_off_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = EmbeddingCache(blocker / "cache.sqlite3", "m", 4)
    assert not cache.enabled
    cache.put("q", VECTOR, True)
    assert cache.get("q", True) is None
    assert "embedding cache" in capsys.readouterr().err


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts MiniLM really encodes (the cache's misses), in order."""
    computed: list[str] = []
    original = minilm.MiniLM.compute

    def compute(self: minilm.MiniLM, text: str, normalize: bool = True) -> np.ndarray:
        computed.append(text)
        return original(self, text, normalize)

    monkeypatch.setattr(minilm.MiniLM, "compute", compute)
    return computed


def test_minilm_reads_vectors_back_across_processes_until_the_model_changes(
    tmp_path: Path, counted: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.sqlite3"
    first = minilm.MiniLM(cache_path=path).embed("What is 7 times 8?")
    assert counted == ["What is 7 times 8?"]
    # A new model object (as in a new process) with the same model: read back, bit for bit.
    again = minilm.MiniLM(cache_path=path)
    assert again.embed("What is 7 times 8?").tobytes() == first.tobytes()
    assert counted == ["What is 7 times 8?"]
    again.embed("What is 7 times 9?")  # another text is computed
    assert counted[-1] == "What is 7 times 9?"
    # Another model (weights, tokenizer, encoder code or library versions): computed again.
    monkeypatch.setattr(minilm, "model_fingerprint", lambda *_: "a-changed-model")
    changed = minilm.MiniLM(cache_path=path)
    assert changed.fingerprint == "a-changed-model"
    changed.embed("What is 7 times 8?")
    assert counted[-1] == "What is 7 times 8?" and len(counted) == 3


def test_the_fingerprint_follows_the_weights_and_the_tokenizer() -> None:
    base = minilm.model_fingerprint(b"weights", b"tokenizer")
    assert base == minilm.model_fingerprint(b"weights", b"tokenizer")
    assert base != minilm.model_fingerprint(b"weights2", b"tokenizer")
    assert base != minilm.model_fingerprint(b"weights", b"tokenizer2")


def test_embed_many_equals_embed_and_computes_each_text_once(
    tmp_path: Path, counted: list[str]
) -> None:
    texts = ["Who built the pyramids?", "Solve x + 2 = 5.", "Who built the pyramids?",
             "Best pizza in town?"]
    model = minilm.MiniLM(cache_path=tmp_path / "cache.sqlite3")
    many = model.embed_many(texts, workers=2)
    assert sorted(counted) == sorted(set(texts))
    assert many.shape == (4, minilm.DIMENSIONS)
    uncached = minilm.MiniLM()
    for row, text in zip(many, texts, strict=True):
        assert row.tobytes() == uncached.compute(text).tobytes()
    counted.clear()
    assert np.array_equal(model.embed_many(texts[:2]), many[:2]) and counted == []


def test_the_stand_in_precomputes_into_the_cache_only_when_the_cache_is_on(
    tmp_path: Path, counted: list[str], monkeypatch: pytest.MonkeyPatch, fresh_standin: Any,
    bedrock_client: Any,
) -> None:
    """With the cache on, an evaluation's texts are computed up front and each call through the
    wire protocol finds its vector; with it off nothing is precomputed, so measured latencies
    include the model."""
    cached = minilm.MiniLM(cache_path=tmp_path / "cache.sqlite3")
    monkeypatch.setattr(fresh_standin._runtime, "minilm", cached)
    fresh_standin.precompute_embeddings(["Who was Hammurabi?"])
    assert counted == ["Who was Hammurabi?"]
    body = json.dumps({"inputText": "Who was Hammurabi?", "dimensions": 1024, "normalize": True})
    bedrock_client.invoke_model(modelId=TITAN_EMBED, body=body)
    assert counted == ["Who was Hammurabi?"]  # the call found it
    monkeypatch.setattr(fresh_standin._runtime, "minilm", minilm.MiniLM())  # cache off
    fresh_standin.precompute_embeddings(["Who was Sargon?"])
    assert counted == ["Who was Hammurabi?"]
