"""Reference prompts that sit in the wrong place, judged on the router's own embeddings.

Each prompt is compared with every other (leave-one-out) and scored per label as the mean
similarity of its ``k`` nearest prompts of that label, the k-NN view of the semantic index
(``semantic.k``). A category prompt nearer another category, or nearer the off-topic prompts,
teaches the router the wrong boundary. An off-topic prompt is *inside* a category when it is
nearer that category than the off-topic prompts *and* as near to it as the category's own
prompts usually are (at least the ``INSIDE_PERCENTILE``-th percentile of their scores): nearest
alone is not enough, because off-topic prompts are diverse by design and a recipe question can
sit marginally nearer math (0.30) than to the other off-topic prompts (0.27) without being math.
Such a prompt is most likely a question of that category (the shipped off-topic prompts include
coding, law and medicine questions, for instance), and keeping it trains the router to decline
its own domain, unless it is a deliberate near miss (the tutor keeps physics questions as
off-topic prompts next to math, to be declined). Only the user can tell the two apart, so both
kinds are warnings, with the two scores; ``routes.py check --drop-inside`` drops the off-topic
ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from llm_router.config import OUT_OF_SCOPE, RoutesConfig

from .checks import WARNING, Problem

INSIDE_PERCENTILE = 10


def label_scores(vectors: np.ndarray, labels: Sequence[str], k: int) -> list[dict[str, float]]:
    """Per row, per label: mean cosine of the row's k nearest other rows of that label (a label
    with no other row is left out of that row's scores)."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sims = v @ v.T
    np.fill_diagonal(sims, np.nan)  # leave one out; np.sort puts NaN last
    label_array = np.asarray(labels)
    out: list[dict[str, float]] = [{} for _ in labels]
    for name in dict.fromkeys(labels):
        block = -np.sort(-sims[:, label_array == name], axis=1)[:, :k]
        counts = np.sum(~np.isnan(block), axis=1)
        sums = np.nansum(block, axis=1)
        for i in np.flatnonzero(counts):
            out[i][name] = float(sums[i] / counts[i])
    return out


def _nearest(scores: dict[str, float]) -> str:
    return max(scores, key=scores.__getitem__)


def _floors(labels: Sequence[str], scores: Sequence[dict[str, float]]) -> dict[str, float]:
    """Per category: the INSIDE_PERCENTILE-th percentile of its own prompts' scores to it."""
    own: dict[str, list[float]] = {}
    for label, row in zip(labels, scores, strict=True):
        if label != OUT_OF_SCOPE and label in row:
            own.setdefault(label, []).append(row[label])
    return {label: float(np.percentile(values, INSIDE_PERCENTILE)) for label, values in own.items()}


def _inside(label: str, row: dict[str, float], floors: dict[str, float]) -> str | None:
    """The category an off-topic row sits inside, or None."""
    if label != OUT_OF_SCOPE or not row:
        return None
    best = _nearest(row)
    if best == OUT_OF_SCOPE or row[best] < floors.get(best, np.inf):
        return None
    return best


def off_topic_inside(
    config: RoutesConfig, vectors: np.ndarray, labels: Sequence[str], prompts: Sequence[str]
) -> list[tuple[str, str, float, float]]:
    """(prompt, category, its score there, its off-topic score) for off-topic prompts inside a
    category."""
    return _inside_rows(labels, prompts, label_scores(vectors, labels, config.semantic_k))


def _inside_rows(
    labels: Sequence[str], prompts: Sequence[str], all_scores: Sequence[dict[str, float]]
) -> list[tuple[str, str, float, float]]:
    floors = _floors(labels, all_scores)
    found = []
    for prompt, label, scores in zip(prompts, labels, all_scores, strict=True):
        best = _inside(label, scores, floors)
        if best is not None:
            found.append((prompt, best, scores[best], scores.get(OUT_OF_SCOPE, float("nan"))))
    return found


def conflict_problems(
    config: RoutesConfig, vectors: np.ndarray, labels: Sequence[str], prompts: Sequence[str]
) -> list[Problem]:
    """Category prompts nearer another label and off-topic prompts inside a category (warnings:
    see the module docstring)."""
    all_scores = label_scores(vectors, labels, config.semantic_k)
    problems = [
        Problem(
            WARNING, f"{OUT_OF_SCOPE} prompt {prompt!r}",
            f"inside category {category} ({near:.2f}, vs {off:.2f} to the other off-topic "
            f"prompts): unless it is a near miss you want declined, remove it, or it teaches the "
            f"router to decline {category} questions (routes.py check --drop-inside removes all)",
        )
        for prompt, category, near, off in _inside_rows(labels, prompts, all_scores)
    ]
    for prompt, label, scores in zip(prompts, labels, all_scores, strict=True):
        if not scores or label == OUT_OF_SCOPE or _nearest(scores) == label:
            continue
        best = _nearest(scores)
        other = "the off-topic prompts" if best == OUT_OF_SCOPE else f"category {best}"
        problems.append(Problem(
            WARNING, f"{label} prompt {prompt!r}",
            f"closer to {other} ({scores[best]:.2f}) than to its own ({scores[label]:.2f}): "
            "reword it, move it, or describe the boundary in the category descriptions",
        ))
    return problems
