"""Semantic classification: k-nearest-neighbour vote over labelled reference prompts.

The question is embedded with the configured embedding model and compared (cosine similarity) with
the reference prompts in the FAISS index. Each of the k nearest neighbours votes for its category;
ties go to the category with the larger summed similarity. k=1 reproduces the original sample.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from ..classification import Classification, ModelUsage
from ..config import RoutesConfig
from ..embeddings import TitanEmbedder
from ..semantic_index import LoadedIndex, ReferenceRow


def vote(neighbours: list[tuple[ReferenceRow, float]]) -> tuple[str, dict[str, dict[str, float]]]:
    """The winning category and, per category, its votes and summed/best similarity."""
    tally: dict[str, dict[str, float]] = defaultdict(
        lambda: {"votes": 0, "similarity_sum": 0.0, "best_similarity": -1.0}
    )
    for row, score in neighbours:
        entry = tally[row.category]
        entry["votes"] += 1
        entry["similarity_sum"] += score
        entry["best_similarity"] = max(entry["best_similarity"], score)
    winner = max(tally, key=lambda c: (tally[c]["votes"], tally[c]["similarity_sum"]))
    return winner, {c: {k: round(v, 6) for k, v in t.items()} for c, t in tally.items()}


class SemanticClassifier:
    strategy = "semantic"
    model_field = "embedding_LLM"

    def __init__(self, embedder: TitanEmbedder, index: LoadedIndex, config: RoutesConfig) -> None:
        self._embedder = embedder
        self._index = index
        self._config = config

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    def classify(self, question: str) -> Classification:
        started = time.perf_counter()
        embedding = self._embedder.embed(question)
        neighbours = self._index.search(embedding.vector, self._config.semantic_k)
        category, tally = vote(neighbours)
        seconds = time.perf_counter() - started
        details: dict[str, Any] = {
            "k": self._config.semantic_k,
            "neighbours": [
                {
                    "category": row.category,
                    "similarity": round(score, 6),
                    "reference_prompt": row.prompt,
                }
                for row, score in neighbours
            ],
            "votes": tally,
        }
        usage = ModelUsage(self.model_id, embedding.input_tokens, 0)
        return Classification(category, self.model_id, seconds, usage, details)
