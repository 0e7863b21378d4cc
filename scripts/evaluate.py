"""Measure a router's decisions on labelled questions, and fit its thresholds.

    python scripts/evaluate.py --router semantic --dataset ../shared/eval/tutor_dev.jsonl
    python scripts/evaluate.py --router hybrid --dataset FILE.jsonl --format json
    python scripts/evaluate.py --fit   # thresholds from the reference prompts, into routes.json

The dataset is JSON lines of ``{"question": ..., "label": ...}``; the label is a category or
``other`` for off-topic questions. Each question goes through the router's decision exactly as the
Lambda makes it (``RouterService.decide``: the same classifier, thresholds and out-of-scope action),
without the answer call. Reported: accuracy (in-domain questions routed to their category; a
decline counts as an error), per-class precision and recall, the confusion matrix, off-topic
recall, false-refusal rate, escalation rate (hybrid), classification latency, and the monthly cost
of routing and answering at the decided mix against sending every question to the premium model
(traffic and prices from the cost calculator's scenario).

Offline by default, against the Bedrock stand-in (local MiniLM embeddings, zero-shot classifier);
``--bedrock aws`` measures the real models with your AWS credentials.

``--fit`` chooses the semantic and hybrid thresholds (see ``evaluation/fit.py``) from
``--fit-dataset`` or, by default, from the reference prompts leave-one-out, and writes them into
the routes file; with ``--dataset`` the fitted router is then evaluated. The head's thresholds
(``semantic.decline_probability``, ``hybrid.min_probability``) and the weight of the nearest
neighbours' vote in its decision (``semantic.knn_weight``) are always fitted on the reference
prompts' held-out predictions (``evaluation/head_fit.py``), never on a dataset.

``--attacks`` runs the attack corpus (``evaluation/attacks.py``: truncation, history, injection,
mixed content, degraded routing; about 300 cases from the routes file) through each router named
by ``--router`` (``all``: the three) and prints how many cases reach the premium model; with
``--dataset`` and/or ``--conversations`` it also counts false caps: in-scope questions sent to a
premium target that the cost cap moves to the degraded target.

``--hybrid-table`` (with ``--dataset``) runs the semantic and llm-assisted routers on every
question and reports, per hybrid escalation threshold, the escalation rate, the final accuracy,
false refusals, leaks, the fit objective and the monthly cost.

This file is the command line; each concern is a module of ``evaluation/``: ``dataset`` (reading
and checking the JSONL), ``decisions`` (the router's decision per question), ``metrics``,
``monthly_cost``, ``text_report``, ``report`` (per subject, out-of-scope policies, the PNG),
``hybrid_table``, ``fit`` and ``head_fit`` (thresholds), ``conversations`` (follow-ups).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cli
import costs
from backends import AWS, STANDIN, StartupError, open_backend, prepare_index
from evaluation import attacks, cache_pairs, conversations
from evaluation.conversations import is_conversation_file
from evaluation.dataset import EvaluationError, read_dataset
from evaluation.decisions import decide, precompute_embeddings
from evaluation.fit import dataset_samples, fit, leave_one_out_samples, write_thresholds
from evaluation.head_fit import HeadFitError, fit_head, reference_votes, write_head_thresholds
from evaluation.hybrid_table import hybrid_table, render_hybrid_table
from evaluation.metrics import summarise
from evaluation.monthly_cost import monthly_cost
from evaluation.report import per_source, plot, policy_costs
from evaluation.text_report import render_text
from llm_router.config import ConfigError, RoutesConfig, load_routes
from llm_router.decision.classifiers.semantic import SemanticClassifier
from llm_router.decision.routing_policy import parse_routing
from llm_router.models.bedrock import BedrockFailure
from llm_router.pipeline.factory import build_service
from llm_router.pipeline.service import RouterService
from llm_router.pipeline.strategies import STRATEGIES
from routes_file import add_routes_argument, use_routes_file

# The names tests and other scripts read from here.
__all__ = ["EvaluationError", "decide", "main", "read_dataset"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--router", choices=[*STRATEGIES, "all"], default="semantic",
        help="router to evaluate (all: every router, for --attacks)",
    )
    parser.add_argument("--dataset", type=Path, help="JSONL of {question, label}")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--bedrock", choices=(STANDIN, AWS), default=STANDIN,
        help="the offline stand-in, or Amazon Bedrock with your credentials",
    )
    parser.add_argument("--region", help="AWS region for --bedrock aws")
    parser.add_argument("--preset", help="routes.json preset (default: active_preset)")
    add_routes_argument(parser)
    parser.add_argument("--fit", action="store_true", help="fit thresholds, write them")
    parser.add_argument(
        "--fit-dataset",
        type=Path,
        help="labelled questions to fit on (default: reference prompts, leave-one-out)",
    )
    parser.add_argument("--plot", type=Path, help="write a PNG: confusion matrix, per subject")
    parser.add_argument(
        "--max-false-refusal", type=float, default=0.005,
        help="--fit: the highest false-refusal rate a fitted threshold may cost (0.005)",
    )
    parser.add_argument(
        "--hybrid-table",
        action="store_true",
        help="with --dataset: escalation rate, final accuracy and cost per hybrid threshold",
    )
    parser.add_argument(
        "--max-escalation",
        type=float,
        default=0.2,
        help="hybrid: the largest share of questions the fit may escalate",
    )
    parser.add_argument(
        "--conversations",
        type=Path,
        help="JSONL of {history, question, label, kind}: follow-up routing (a --dataset of such "
        "items is detected too)",
    )
    parser.add_argument(
        "--cache-pairs",
        type=Path,
        help="JSONL of {a, b, expect: hit|miss, kind}: the response cache's wrong hits, precision "
        "and hit rate (eval/cache_pairs.jsonl)",
    )
    parser.add_argument(
        "--fit-cache",
        action="store_true",
        help="with --cache-pairs: fit cache.semantic_min_similarity on them, write it",
    )
    parser.add_argument(
        "--attacks",
        action="store_true",
        help="run the attack corpus and report how many cases reach the premium model "
        "(--router all: every router)",
    )
    args = parser.parse_args(argv)
    if args.router == "all" and not args.attacks:
        parser.error("--router all is for --attacks")
    if args.fit_cache and args.cache_pairs is None:
        parser.error("--fit-cache needs --cache-pairs")
    if (
        not (args.fit or args.attacks) and args.dataset is None and args.conversations is None
        and args.cache_pairs is None
    ):
        parser.error("give --dataset to evaluate, --fit to fit thresholds, or both")
    return args


def run_fit(
    args: argparse.Namespace,
    config: RoutesConfig,
    semantic: SemanticClassifier,
    llm: RouterService,
    say: Any,
) -> RoutesConfig:
    if args.fit_dataset:
        samples = dataset_samples(semantic, read_dataset(args.fit_dataset, config))
        source = str(args.fit_dataset)
    else:
        samples = leave_one_out_samples(semantic, config)
        source = "reference prompts, leave-one-out"
    say(f"asking the classifier LLM ({llm.classifier.model_id}) about {len(samples)} questions")
    llm_decisions = [llm.decide(sample.question).category for sample in samples]
    result = fit(
        samples, config, source, llm_decisions, args.max_false_refusal, args.max_escalation
    )
    assert config.source_path is not None
    write_thresholds(config.source_path, result.thresholds)
    t = result.thresholds
    say(f"fitted on {result.n} questions ({source}); written to {config.source_path}:")
    say(f"  semantic.min_similarity {dict(t.min_similarity)}, semantic.min_margin {t.min_margin}")
    say(
        f"  hybrid.min_similarity {t.hybrid_min_similarity}, hybrid.min_margin "
        f"{t.hybrid_min_margin}"
    )
    say(f"  on the fit set: {json.dumps(result.semantic)}, hybrid {json.dumps(result.hybrid)}")
    config = replace(config, thresholds=t)
    head = semantic.head
    if head is None:
        return config
    # The head is fitted on its own training rows only, whatever the dataset: the reference
    # prompts, and the topic bank's rows where the routes use it (out_of_scope.topic_bank).
    known = {} if args.fit_dataset else dict(
        zip((s.question for s in samples), llm_decisions, strict=True)
    )
    rows = semantic.reference_rows
    if any(row.prompt not in known for row in rows):
        say(f"asking the classifier LLM about the {len(rows)} training rows (head fit)")
    llm_decisions = [
        known[row.prompt] if row.prompt in known else llm.decide(row.prompt).category
        for row in rows
    ]
    try:
        votes = reference_votes(head, semantic.reference_vectors(), config.semantic_k)
        fitted = fit_head(head, config, parse_routing(config), llm_decisions, votes)
    except HeadFitError as exc:
        raise EvaluationError(str(exc)) from exc
    write_head_thresholds(config.source_path, fitted)
    say(
        f"head (held-out reference prompts, {fitted.n}, "
        f"F {parse_routing(config).false_refusal_cost:g}):"
        f" semantic.decline_probability {fitted.decline_probability}, hybrid.min_probability "
        f"{fitted.hybrid_min_probability}, semantic.knn_weight {fitted.knn_weight}; "
        f"{json.dumps(fitted.semantic)}"
    )
    for row in fitted.knn_table:
        say(f"  nearest-neighbour weight on the reference prompts: {json.dumps(row)}")
    for row in fitted.hybrid_table:
        say(f"  hybrid on the reference prompts: {json.dumps(row)}")
    return load_routes(config.source_path, preset=args.preset)


def run_cache_pairs(
    args: argparse.Namespace, config: RoutesConfig, backend: Any, say: Any
) -> int:
    """The cache pairs' report (and with --fit-cache, the fitted threshold, written first)."""
    scored = cache_pairs.score_pairs(
        cache_pairs.read_pairs(args.cache_pairs), config, backend.client, backend.standin
    )
    threshold = config.cache.semantic_min_similarity
    if args.fit_cache:
        threshold = cache_pairs.fit_threshold(scored)
        assert config.source_path is not None
        cache_pairs.write_threshold(config.source_path, threshold)
        say(f"cache.semantic_min_similarity {threshold} written to {config.source_path}")
    result = cache_pairs.report(scored, threshold)
    print(json.dumps(result, indent=2) if args.format == "json" else cache_pairs.render(result))
    return 0


def run_attacks(
    args: argparse.Namespace, config: RoutesConfig, backend: Any, index_dir: Any
) -> str:
    """The attack corpus through each router; the degraded family on the stand-in only."""
    strategies = list(STRATEGIES) if args.router == "all" else [args.router]
    cases = attacks.build_corpus(config)
    standin = backend.standin
    classifier_models = (config.classifier.model_id, config.embedding.model_id)

    def fail() -> None:
        for model_id in classifier_models:
            standin.inject_fault(model_id, attacks.DEGRADED_FAULT)

    reports = []
    for strategy in strategies:
        reports.append(
            attacks.run_corpus(
                lambda s=strategy: build_service(
                    s, config, backend.client, index_dir, backend.embedding_source, budget=None
                ),
                cases,
                fail if standin is not None else None,
                standin.reset if standin is not None else None,
            )
        )
    caps = {}
    if args.dataset or args.conversations:
        items = _cap_items(args, config)
        for strategy in strategies:
            service = build_service(
                strategy, config, backend.client, index_dir, backend.embedding_source, budget=None
            )
            caps[strategy] = attacks.cap_rates(service, items)
    if args.format == "json":
        return json.dumps(
            {"attacks": [report.summary() for report in reports], "false_caps": caps}, indent=2
        )
    lines = [attacks.render(reports)]
    for strategy, rates in caps.items():
        for label, row in rates.items():
            lines.append(
                f"false caps, {strategy}: of {row['to_premium']} in-scope {label!r} questions "
                f"sent to a premium target, {row['capped']} capped ({row['capped_share']:.1%}); "
                f"{row['extra_calls_per_question']} extra classifier calls per question"
            )
    return "\n".join(lines)


def _cap_items(args: argparse.Namespace, config: RoutesConfig) -> list[tuple[str, Any, str]]:
    """(question, history, label) of --dataset and --conversations, for the false-cap count."""
    items: list[tuple[str, Any, str]] = []
    if args.dataset:
        items += [(row["question"], (), row["label"]) for row in read_dataset(args.dataset, config)]
    if args.conversations:
        items += [
            (item.question, item.history, item.label)
            for item in conversations.read_conversations(args.conversations, config)
        ]
    return items


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    # Progress goes to stderr so that --format json prints one object on stdout.
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        use_routes_file(args.routes)
        config = load_routes(preset=args.preset)
        with contextlib.ExitStack() as stack:
            backend = open_backend(stack, args.bedrock, args.region)
            if args.cache_pairs:
                return run_cache_pairs(args, config, backend, say)
            index_dir = prepare_index(config, backend, say)
            if args.fit:
                semantic = build_service(
                    "semantic", config, backend.client, index_dir, backend.embedding_source
                ).classifier
                assert isinstance(semantic, SemanticClassifier)
                llm = build_service("llm-assisted", config, backend.client)
                config = run_fit(args, config, semantic, llm, say)
            if args.attacks:
                print(run_attacks(args, config, backend, index_dir))
                return 0
            if args.conversations or (args.dataset and is_conversation_file(args.dataset)):
                service = build_service(
                    args.router, config, backend.client, index_dir, backend.embedding_source
                )
                path = args.conversations or args.dataset
                try:
                    print(conversations.report(service, path, config, args.format))
                except conversations.ConversationDataError as exc:
                    raise EvaluationError(str(exc)) from exc
                return 0
            if args.dataset is None:
                return 0
            rows = read_dataset(args.dataset, config)
            precompute_embeddings(backend, config, rows)
            if args.hybrid_table:
                table = hybrid_table(config, backend, index_dir, rows)
                print(json.dumps(table, indent=2) if args.format == "json"
                      else render_hybrid_table(table))
                return 0
            service = build_service(
                args.router, config, backend.client, index_dir, backend.embedding_source
            )
            outcomes = decide(service, rows)
    except (ConfigError, StartupError, EvaluationError) as exc:
        return cli.error(exc)
    except BedrockFailure as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    summary = summarise(outcomes, config.category_names)
    cost = monthly_cost(summary, outcomes, args.router, config)
    scenario = costs.load_scenario(routes=config)
    tokens = scenario["tokens"]
    cost["out_of_scope_policies"] = policy_costs(
        outcomes,
        config,
        cost["questions_per_month"],
        int(tokens["input_per_question"]),
        int(tokens["output_per_answer"]),
    )
    sources = per_source(outcomes)
    if args.plot:
        plot(summary, sources, f"{args.router} router, {args.dataset.name}", args.plot)
    if args.format == "json":
        print(
            json.dumps(
                {"router": args.router, **summary, "per_source": sources, "monthly_cost": cost},
                indent=2,
            )
        )
    else:
        print(render_text(args.router, summary, cost, sources))
    return 0


if __name__ == "__main__":
    cli.run(main)
