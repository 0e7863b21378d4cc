"""Scale benchmark of the semantic router: routing overhead, cold start and recall by index size.

    python scripts/benchmark.py [--sizes 10,1000,100000] [--queries 500]
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
* **Cold start**, split into imports (numpy, faiss, ``llm_router.edge.handler``), boto3 client
  creation
  (``llm_router.models.bedrock.runtime_client``), loading the routes file and ``load_index``, each
  timed
  in a fresh Python process, plus the index's size on disk.
* **Recall** of the index against exact (flat) search: recall@k for the configured semantic k and
  for 10, over the same queries through ``LoadedIndex.search``, and how often the routing decision
  (``decide``) on the index's neighbours equals the one on the exact neighbours.

Built indexes are cached under ``.build/benchmark/`` (git-ignored), keyed by everything that shapes
them, so a rerun only measures; ``--no-cache`` rebuilds.

This file is the command line; the ``benchmarks`` package beside it does the work, one concern a
module: ``synthetic`` (the vectors), ``index_cache`` (build or reuse), ``scale_cold``,
``overhead`` and ``recall`` (the figures), ``scale`` (the run), ``scale_report`` (the text), and
``cold_start`` / ``cold_probe`` for ``--cold``; ``fresh_process`` runs every fresh-process probe.

Hand-written rather than pytest-benchmark: pytest-benchmark times micro-benchmarks inside a test
run, whereas this builds indexes up to a million vectors, measures cold starts in subprocesses and
prints figures (with the machine and every simplification) for the README.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cli
from benchmarks.index_cache import DEFAULT_CACHE_DIR
from benchmarks.scale import DEFAULT_QUERIES, DEFAULT_SIZES, run
from benchmarks.scale_report import format_text


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
        help="reference-set sizes, comma-separated (default: 10,1000,100000; a million "
        "is opt-in: training its learned head takes ~5 s per 1,000 rows here)",
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
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (0)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
        help=f"where built indexes are kept between runs (default {DEFAULT_CACHE_DIR})",
    )
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
    cli.run(main)
