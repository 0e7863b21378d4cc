"""The response cache's safety on question pairs: paraphrases that must hit, near-duplicates that
must not; and the semantic threshold fitted on them.

    python scripts/evaluate.py --cache-pairs eval/cache_pairs.jsonl [--fit-cache] [--format json]

Each line of the file is ``{"a": ..., "b": ..., "expect": "hit"|"miss", "kind": ...}``: ``a`` is
cached, then ``b`` is asked. ``b`` is served ``a``'s answer exactly as the function decides it
(``llm_router.pipeline.cache``): the same normalised text (an exact hit), or an embedding
similarity of at least ``cache.semantic_min_similarity`` *and* the same facts (the guard). The
vectors are the semantic router's, of the same routing text, from the stand-in's MiniLM or,
with ``--bedrock aws``, Titan.

Reported: wrong hits (a ``miss`` pair served), precision (right hits over all hits), hit rate
(``hit`` pairs served), per kind; and, to show what each half of the rule does, the wrong hits of
the similarity alone and of the guard alone. ``--fit-cache`` chooses the threshold: the lowest on
a 0.005 grid that is at least ``FIT_MARGIN`` above every near-duplicate the guard lets through,
so that no pair of the set is a wrong hit, written to ``cache.semantic_min_similarity`` of the
routes file; a two-fold cross-check (fit on half the pairs, count on the other half) says how
far that holds on pairs the fit did not see.

Hand-written: a few dozen lines of counting over the router's own functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llm_router.config import RoutesConfig
from llm_router.decision.embeddings import TitanEmbedder
from llm_router.decision.normalize import routing_text
from llm_router.decision.routing_policy import parse_routing
from llm_router.pipeline.cache.guard import facts, same_facts
from llm_router.pipeline.cache.keys import cache_text

from .dataset import EvaluationError

EXPECTED = ("hit", "miss")
FIT_MARGIN = 0.03
FIT_FLOOR = 0.85  # never fit below: far under it, "similar" says little even with equal facts
GRID = 0.005


def read_pairs(path: Path) -> list[dict[str, Any]]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), str) and row.get(k) for k in ("a", "b", "kind")
        ) or row.get("expect") not in EXPECTED:
            raise EvaluationError(
                f'{path}:{number}: needs "a", "b", "kind" strings and "expect" hit or miss'
            )
        pairs.append(row)
    if not pairs:
        raise EvaluationError(f"{path} holds no pairs")
    return pairs


def score_pairs(
    pairs: Sequence[dict[str, Any]], config: RoutesConfig, client: Any, standin: Any = None
) -> list[dict[str, Any]]:
    """Each pair with its similarity, whether the guard passes it and whether it is exact."""
    max_chars = parse_routing(config).max_input_chars
    texts = sorted({routing_text(p[k], max_chars) for p in pairs for k in ("a", "b")})
    if standin is not None:
        standin.precompute_embeddings(texts, config.embedding.normalize)
    embedder = TitanEmbedder(client, config.embedding)
    vectors = {text: embedder.embed(text).vector for text in texts}
    scored = []
    for pair in pairs:
        a = vectors[routing_text(pair["a"], max_chars)]
        b = vectors[routing_text(pair["b"], max_chars)]
        norm = float(np.linalg.norm(a) * np.linalg.norm(b))
        scored.append({
            **pair,
            "similarity": float(np.dot(a, b) / norm) if norm else 0.0,
            "guard": same_facts(facts(pair["a"]), facts(pair["b"])),
            "exact": cache_text(pair["a"]) == cache_text(pair["b"]),
        })
    return scored


def served(pair: dict[str, Any], threshold: float, guard: bool = True) -> bool:
    if pair["exact"]:
        return True
    return pair["similarity"] >= threshold and (pair["guard"] or not guard)


def counts(scored: Sequence[dict[str, Any]], threshold: float, guard: bool = True) -> dict:
    hits = [p for p in scored if served(p, threshold, guard)]
    right = sum(1 for p in hits if p["expect"] == "hit")
    wanted = sum(1 for p in scored if p["expect"] == "hit")
    return {
        "pairs": len(scored),
        "served": len(hits),
        "wrong_hits": len(hits) - right,
        "precision": round(right / len(hits), 4) if hits else None,
        "hit_rate": round(right / wanted, 4) if wanted else None,
    }


def fit_threshold(scored: Sequence[dict[str, Any]]) -> float:
    """The lowest grid threshold at least FIT_MARGIN above every near-duplicate the guard
    passes (exact duplicates aside: no threshold stops those)."""
    passing = [
        p["similarity"] for p in scored if p["expect"] == "miss" and p["guard"] and not p["exact"]
    ]
    lowest = max([FIT_FLOOR, *(s + FIT_MARGIN for s in passing)])
    return min(1.0, round(math.ceil(round(lowest / GRID, 6)) * GRID, 3))


def report(scored: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    kinds = sorted({p["kind"] for p in scored})
    halves = (scored[0::2], scored[1::2])
    held_out = [counts(halves[1 - i], fit_threshold(halves[i])) for i in range(2)]
    return {
        "threshold": threshold,
        "overall": counts(scored, threshold),
        "similarity_alone": counts(scored, threshold, guard=False),
        "guard_alone": counts(scored, -1.0),
        "per_kind": {k: counts([p for p in scored if p["kind"] == k], threshold) for k in kinds},
        "two_fold": {
            "thresholds": [fit_threshold(h) for h in halves],
            "held_out_wrong_hits": sum(c["wrong_hits"] for c in held_out),
            "held_out_hit_rate": [c["hit_rate"] for c in held_out],
        },
        "wrong": [
            {k: p[k] for k in ("a", "b", "kind")} | {"similarity": round(p["similarity"], 4)}
            for p in scored if p["expect"] == "miss" and served(p, threshold)
        ],
    }


def render(result: dict[str, Any]) -> str:
    def line(name: str, c: dict[str, Any]) -> str:
        return (
            f"  {name:<18} pairs {c['pairs']:>3}  served {c['served']:>3}  wrong hits "
            f"{c['wrong_hits']:>3}  precision {c['precision']}  hit rate {c['hit_rate']}"
        )

    out = [f"cache pairs at cache.semantic_min_similarity {result['threshold']}:"]
    out.append(line("overall", result["overall"]))
    out.append(line("similarity alone", result["similarity_alone"]))
    out.append(line("guard alone", result["guard_alone"]))
    out.append("per kind:")
    out.extend(line(kind, c) for kind, c in result["per_kind"].items())
    two = result["two_fold"]
    out.append(
        f"two-fold: thresholds {two['thresholds']}, wrong hits on the held-out halves "
        f"{two['held_out_wrong_hits']}, hit rates {two['held_out_hit_rate']}"
    )
    for wrong in result["wrong"]:
        out.append(f"  WRONG HIT ({wrong['kind']}, {wrong['similarity']}): {wrong['a']!r} -> "
                   f"{wrong['b']!r}")
    return "\n".join(out)


def write_threshold(routes_file: Path, threshold: float) -> None:
    """Store the fitted threshold in the routes file, keeping everything else as it is."""
    raw = json.loads(routes_file.read_text(encoding="utf-8"))
    raw.setdefault("cache", {})["semantic_min_similarity"] = threshold
    routes_file.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
