"""Semantic classification: a calibrated linear head, or a k-nearest-neighbour vote, over
labelled reference prompts.

**Head** (``semantic.decision: head``, the default when the index ships ``head.npz``): the
question's embedding goes through the logistic-regression head trained on the reference prompts
at index-build time (``linear_head``), which gives a calibrated probability per label. The question
is declined when P(off-topic) is at least ``semantic.decline_probability`` (fitted cost-aware:
``scripts/evaluation/fit.py``), unless it is *ambiguous*: its two likeliest categories each have
at least ``routing.ambiguous_min_probability``. Ambiguous questions (plainly about two
categories) are never declined; the decision carries ``details["ambiguous"] = True`` and
``details["candidates"]`` (the categories, likeliest first) and ``details["ambiguous_to"]`` (the
category ``routing.ambiguous_to`` names), so the core can answer them with that category.
The decision is *confident* for the hybrid when the likeliest label's probability is at least
``hybrid.min_probability``. The nearest neighbours are still read, for the explanation in the
response and for the hybrid's similarity and margin fields, and as evidence: with
``semantic.knn_weight`` w > 0 the probabilities the thresholds see are ``(1 - w)`` x the
head's plus ``w`` x the vote shares of the ``semantic.k`` nearest reference prompts
(``head_probabilities``: a bincount over neighbours the search returned anyway). w is fitted
with the thresholds (``scripts/evaluation/head_fit.py``); 0 is the head alone.

**k-NN vote** (``semantic.decision: knn``; the original design, kept to measure against):

The question is embedded with the configured embedding model and compared (cosine similarity) with
the reference prompts in the FAISS index, which holds every category's prompts plus off-topic
prompts labelled OUT_OF_SCOPE. Each of the k nearest neighbours votes for its label; ties go to the
label with the larger summed similarity (k=1 reproduces the original sample). The question is out
of scope when the off-topic label wins, when the winner's best similarity is below its fitted
``min_similarity``, or when it leads the best off-topic reference by less than ``min_margin``
(a lead over the other category is not required: ties between categories still get an answer). The
decision is *confident* when the winner leads the runner-up label by the
hybrid margin and clears the hybrid similarity floor; the hybrid router escalates otherwise.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ...config import OUT_OF_SCOPE, RoutesConfig
from ..classification import Classification, ModelUsage
from ..embeddings import Embedding, TitanEmbedder
from ..linear_head import LinearHead, blend, vote_shares
from ..routing_policy import RoutingPolicy, parse_routing
from ..semantic_index import LoadedIndex, ReferenceRow

Neighbours = list[tuple[ReferenceRow, float]]  # nearest first, with cosine similarity
# Neighbours read to know every label's best similarity (for margins), however small k is.
SCORE_DEPTH = 64


def vote(neighbours: Neighbours) -> tuple[str, dict[str, dict[str, float]]]:
    """The winning label and, per label, its votes and summed/best similarity."""
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


def best_by_label(neighbours: Neighbours) -> dict[str, float]:
    best: dict[str, float] = {}
    for row, score in neighbours:
        best[row.category] = max(best.get(row.category, -1.0), score)
    return best


def decide(neighbours: Neighbours, k: int, config: RoutesConfig) -> dict[str, Any]:
    """The semantic decision from the nearest neighbours (sorted best first)."""
    winner, tally = vote(neighbours[:k])
    best = best_by_label(neighbours)
    top = best[winner]
    runner_up = max((s for label, s in best.items() if label != winner), default=-1.0)
    margin = top - runner_up
    thresholds = config.thresholds
    category, reason = winner, None
    if winner == OUT_OF_SCOPE:
        reason = "the nearest reference prompts are off-topic"
    elif top < thresholds.min_similarity[winner]:
        category = OUT_OF_SCOPE
        reason = (
            f"best similarity {top:.3f} to {winner!r} is below its threshold "
            f"{thresholds.min_similarity[winner]:.3f}"
        )
    elif OUT_OF_SCOPE in best and top - best[OUT_OF_SCOPE] < thresholds.min_margin:
        category = OUT_OF_SCOPE
        reason = (
            f"{winner!r} leads the off-topic references by {top - best[OUT_OF_SCOPE]:.3f}, "
            f"less than {thresholds.min_margin:.3f}"
        )
    confident = top >= thresholds.hybrid_min_similarity and margin >= thresholds.hybrid_min_margin
    return {
        "category": category,
        "out_of_scope_reason": reason,
        "confident": confident,
        "top_similarity": round(top, 6),
        "margin": round(margin, 6),
        "label_similarity": {label: round(s, 6) for label, s in best.items()},
        "votes": tally,
    }


def head_probabilities(
    head: LinearHead, vector: Any, neighbours: Neighbours, k: int, knn_weight: float
) -> dict[str, float]:
    """The head's probabilities per label, blended with the ``k`` nearest neighbours' vote shares
    at ``knn_weight`` (0: the head's own)."""
    probabilities = head.probabilities(vector)[0]
    if knn_weight > 0.0:
        column = {c: i for i, c in enumerate(head.classes)}
        labels = [column[row.category] for row, _ in neighbours[:k] if row.category in column]
        probabilities = blend(probabilities, vote_shares(labels, len(head.classes)), knn_weight)
    return {c: float(p) for c, p in zip(head.classes, probabilities, strict=True)}


def decide_by_head(
    probabilities: dict[str, float], policy: RoutingPolicy, config: RoutesConfig
) -> dict[str, Any]:
    """The head's decision from calibrated probabilities per label (OUT_OF_SCOPE included)."""
    ranked = sorted(
        (c for c in config.category_names if c in probabilities),
        key=lambda c: -probabilities[c],
    )
    best, p_off = ranked[0], probabilities.get(OUT_OF_SCOPE, 0.0)
    ambiguous = (
        len(ranked) > 1 and probabilities[ranked[1]] >= policy.ambiguous_min_probability
    )
    category, reason = best, None
    if ambiguous:
        category = policy.ambiguous_category(config, best)
    elif p_off >= policy.decline_probability:
        category = OUT_OF_SCOPE
        reason = (
            f"P(off-topic) {p_off:.3f} is at least semantic.decline_probability "
            f"{policy.decline_probability:.3f}"
        )
    decision: dict[str, Any] = {
        "category": category,
        "out_of_scope_reason": reason,
        "confident": max(probabilities.values()) >= policy.hybrid_min_probability,
        "probabilities": {label: round(p, 6) for label, p in probabilities.items()},
        "ambiguous": ambiguous,
    }
    if ambiguous:
        decision["candidates"] = ranked[:2]
        decision["ambiguous_to"] = category
    return decision


class SemanticClassifier:
    strategy = "semantic"
    model_field = "embedding_LLM"

    def __init__(self, embedder: TitanEmbedder, index: LoadedIndex, config: RoutesConfig) -> None:
        self._embedder = embedder
        self._index = index
        self._config = config
        self.policy = parse_routing(config)

    @property
    def head(self) -> LinearHead | None:
        """The head that decides, or None when the k-NN vote does (configured or no head)."""
        return self._index.head if self.policy.decision == "head" else None

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    @property
    def reference_rows(self) -> Sequence[ReferenceRow]:
        """The index's rows, in the head's training order (the reference prompts, then any rows
        the topic bank added)."""
        return self._index.rows

    def reference_vectors(self) -> Any:
        """The index rows' vectors, in ``reference_rows``' order (for the fit, not per request)."""
        return self._index.vectors()

    def neighbours(self, question: str, extra: int = 0) -> tuple[Neighbours, Embedding]:
        """The question's nearest reference prompts (enough for every label's best score).

        ``extra`` reads that many more, for callers that drop some (leave-one-out fitting).
        """
        embedding = self._embedder.embed(question)
        depth = max(self._config.semantic_k, SCORE_DEPTH) + extra
        return self._index.search(embedding.vector, depth), embedding

    def classify(self, question: str) -> Classification:
        started = time.perf_counter()
        neighbours, embedding = self.neighbours(question)
        k = self._config.semantic_k
        decision = decide(neighbours, k, self._config)
        head = self.head
        if head is not None:
            probabilities = head_probabilities(
                head, embedding.vector, neighbours, k, self.policy.knn_weight
            )
            by_head = decide_by_head(probabilities, self.policy, self._config)
            decision = {**decision, **by_head, "decided_by_head": True}
            if self.policy.knn_weight > 0.0:
                decision["knn_weight"] = self.policy.knn_weight
        seconds = time.perf_counter() - started
        details: dict[str, Any] = {
            "k": k,
            "neighbours": [
                {
                    "category": row.category,
                    "similarity": round(score, 6),
                    "reference_prompt": row.prompt,
                }
                for row, score in neighbours[:k]
            ],
            **{key: value for key, value in decision.items() if key != "category"},
        }
        usage = ModelUsage(self.model_id, embedding.input_tokens, 0)
        return Classification(
            decision["category"], self.model_id, seconds, (usage,), details,
            embedding=embedding.vector,
        )
