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
(``semantic.decline_probability``, ``hybrid.min_probability``) are always fitted on the reference
prompts' held-out predictions, cost-aware (``evaluation/head_fit.py``), never on a dataset.

``--hybrid-table`` (with ``--dataset``) runs the semantic and llm-assisted routers on every
question and reports, per hybrid escalation threshold, the escalation rate, the final accuracy,
false refusals, leaks, the fit objective and the monthly cost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401  (puts lambdas/ and scripts/ on sys.path)
import costs
import numpy as np
from backends import AWS, STANDIN, StartupError, open_backend, prepare_index
from evaluation import conversations
from evaluation.conversations import is_conversation_file
from evaluation.fit import dataset_samples, fit, leave_one_out_samples, write_thresholds
from evaluation.head_fit import HeadFitError, fit_head, hybrid_rows, write_head_thresholds
from evaluation.metrics import OTHER, Outcome, summarise
from evaluation.report import per_source, plot, policy_costs
from llm_router.bedrock import BedrockFailure
from llm_router.classifiers.semantic import SemanticClassifier
from llm_router.config import OUT_OF_SCOPE, ConfigError, RoutesConfig, load_routes
from llm_router.factory import build_service
from llm_router.normalize import routing_text
from llm_router.routing_policy import parse_routing
from llm_router.service import RouterService
from llm_router.strategies import STRATEGIES


class EvaluationError(RuntimeError):
    """The evaluation cannot run; the message says why."""


def read_dataset(path: Path, config: RoutesConfig) -> list[dict[str, str]]:
    valid = {*config.category_names, OTHER}
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, label = row["question"], row["label"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvaluationError(
                f'{path}:{number}: expected {{"question": ..., "label": ...}}: {exc}'
            ) from exc
        if label not in valid:
            raise EvaluationError(
                f"{path}:{number}: label {label!r} is none of {', '.join(sorted(valid))}"
            )
        rows.append({"question": question, "label": label, "source": str(row.get("source", ""))})
    if not rows:
        raise EvaluationError(f"{path} has no questions")
    return rows


def evaluate(service: RouterService, rows: Sequence[dict[str, str]]) -> list[Outcome]:
    """Each row through ``service.decide`` on its routing text (``normalize.routing_text``).

    The core will normalise in ``RouterService.decide`` itself; ``routing_text`` is idempotent,
    so normalising here as well changes nothing once it does.
    """
    max_chars = parse_routing(service.config).max_input_chars
    outcomes = []
    for row in rows:
        decision = service.decide(routing_text(row["question"], max_chars))
        decided_by = decision.details.get("decided_by")
        outcomes.append(
            Outcome(
                question=row["question"],
                label=row["label"],
                decision=decision.category,
                seconds=decision.seconds,
                escalated=(decided_by == "llm") if service.strategy == "hybrid" else None,
                source=row.get("source", ""),
                details=decision.details,
            )
        )
    return outcomes


def precompute_embeddings(backend: Any, config: RoutesConfig, rows: Sequence[dict]) -> None:
    """The stand-in computes every question's embedding up front, on every core, into its cache
    (on disk too, so a second evaluation computes none); the routers then ask for them one at a
    time through the wire protocol as the Lambda does. With Bedrock there is nothing to do."""
    if backend.standin is None:
        return
    max_chars = parse_routing(config).max_input_chars
    backend.standin.precompute_embeddings(
        [routing_text(row["question"], max_chars) for row in rows], config.embedding.normalize
    )


def monthly_cost(
    summary: dict[str, Any], outcomes: Sequence[Outcome], strategy: str
) -> dict[str, Any]:
    """The cost calculator's scenario, with the answers split as this router decided them.

    Daily traffic stays the scenario's total and every question pays for routing (the hybrid pays
    the classifier LLM on its measured escalation share); each category's answerer gets the share
    of questions the router sent to it, and declined questions get no answer. The baseline sends
    every question to the premium answerer, as the calculator's own baseline does.
    """
    scenario = costs.load_scenario()
    if summary["escalation_rate"] is not None:
        scenario["routing"]["hybrid_escalation_rate"] = summary["escalation_rate"]
    full = costs.compute(scenario)
    categories = costs.entries(scenario["categories"])
    per_day = sum(Decimal(str(c["questions_per_day"])) for c in categories.values())
    decided = costs.deep_merge(
        scenario,
        {
            "categories": {
                name: {
                    "questions_per_day": per_day
                    * sum(o.decision == name for o in outcomes)
                    / len(outcomes)
                }
                for name in categories
            }
        },
    )
    answers = costs.compute(decided).answers_cost
    routing_line = full.routing_for(strategy)
    routing = routing_line.monthly_cost if routing_line else Decimal(0)
    premium = full.baseline.answers
    return {
        "questions_per_month": int(full.questions),
        "answering": float(round(answers, 2)),
        "routing": float(round(routing, 2)),
        "total": float(round(answers + routing, 2)),
        "all_premium_answering": float(round(premium, 2)),
        "saving": float(round(premium - answers - routing, 2)),
    }


def render_text(
    strategy: str,
    summary: dict[str, Any],
    cost: dict[str, Any] | None,
    sources: dict[str, dict[str, Any]] | None = None,
) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.1f}%"

    lines = [
        f"Router: {strategy}   questions: {summary['n']} "
        f"({summary['n_in_domain']} in-domain, {summary['n_off_topic']} off-topic)",
        f"  accuracy (in-domain routed to their category): {pct(summary['accuracy'])}",
        f"  off-topic recall (off-topic declined):           {pct(summary['out_of_scope_recall'])}",
        f"  false-refusal rate (in-domain declined):         {pct(summary['false_refusal_rate'])}",
        f"  escalation rate (decided by the LLM):            {pct(summary['escalation_rate'])}",
        f"  classification latency: p50 {summary['classification_latency_ms']['p50']:.1f} ms, "
        f"p95 {summary['classification_latency_ms']['p95']:.1f} ms",
        "",
        "  class       precision  recall  support",
    ]
    for name, figures in summary["per_class"].items():
        lines.append(
            f"  {name:<11} {pct(figures['precision']):>9}  {pct(figures['recall']):>6}  "
            f"{figures['support']:>7}"
        )
    classes = list(summary["confusion"])
    lines += [
        "",
        "  confusion (rows: label, columns: decision)",
        "  " + " " * 11 + "".join(f"{c:>10}" for c in classes),
    ]
    for label in classes:
        row = summary["confusion"][label]
        lines.append(f"  {label:<11}" + "".join(f"{row[c]:>10}" for c in classes))
    if cost:
        lines += [
            "",
            f"  monthly cost at this mix ({cost['questions_per_month']:,} questions, the cost "
            "calculator's scenario):",
            f"    answering ${cost['answering']:,.2f} + routing ${cost['routing']:,.2f} = "
            f"${cost['total']:,.2f}",
            f"    every question to the premium model: ${cost['all_premium_answering']:,.2f}; "
            f"saving ${cost['saving']:,.2f}",
        ]
    if cost and "out_of_scope_policies" in cost:
        policies = cost["out_of_scope_policies"]
        lines.append(
            "    answering by out-of-scope action: "
            + ", ".join(
                f"{action} " + ("unknown" if usd is None else f"${usd:,.2f}")
                for action, usd in policies.items()
            )
        )
    if sources and len(sources) > 1:
        classes = [*summary["confusion"]]
        lines += ["", "  per source    label      n  " + "".join(f"{c:>9}" for c in classes)
                  + "  right"]
        for name, row in sources.items():
            lines.append(
                f"  {name.removeprefix('mmlu/'):<28} {row['label']:<8} {row['n']:>3}  "
                + "".join(f"{row['routed'].get(c, 0):>9}" for c in classes)
                + f"  {pct(row['correct']):>6}"
            )
    if summary["errors"]:
        lines += ["", f"  errors ({len(summary['errors'])}):"]
        lines += [
            f"    [{e['label']} -> {e['predicted']}] {e['question']}" for e in summary["errors"]
        ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--router", choices=list(STRATEGIES), default="semantic")
    parser.add_argument("--dataset", type=Path, help="JSONL of {question, label}")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--bedrock", choices=(STANDIN, AWS), default=STANDIN)
    parser.add_argument("--region", help="AWS region for --bedrock aws")
    parser.add_argument("--preset", help="routes.json preset (default: active_preset)")
    parser.add_argument("--routes", type=Path, help="routes file (default: the project's)")
    parser.add_argument("--fit", action="store_true", help="fit thresholds, write them")
    parser.add_argument(
        "--fit-dataset",
        type=Path,
        help="labelled questions to fit on (default: reference prompts, leave-one-out)",
    )
    parser.add_argument("--plot", type=Path, help="write a PNG: confusion matrix, per subject")
    parser.add_argument("--max-false-refusal", type=float, default=0.005)
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
    args = parser.parse_args(argv)
    if not args.fit and args.dataset is None and args.conversations is None:
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
    if args.fit_dataset:  # the head is fitted on the reference prompts only, whatever the dataset
        say("asking the classifier LLM about the reference prompts (head fit)")
        llm_decisions = [llm.decide(prompt).category for _, prompt in config.reference_prompts()]
    try:
        fitted = fit_head(head, config, parse_routing(config), llm_decisions)
    except HeadFitError as exc:
        raise EvaluationError(str(exc)) from exc
    write_head_thresholds(config.source_path, fitted)
    say(
        f"head (held-out reference prompts, {fitted.n}, "
        f"F {parse_routing(config).false_refusal_cost:g}):"
        f" semantic.decline_probability {fitted.decline_probability}, hybrid.min_probability "
        f"{fitted.hybrid_min_probability}; {json.dumps(fitted.semantic)}"
    )
    for row in fitted.hybrid_table:
        say(f"  hybrid on the reference prompts: {json.dumps(row)}")
    return load_routes(config.source_path, preset=args.preset)


def hybrid_table(
    args: argparse.Namespace, config: RoutesConfig, backend: Any, index_dir: Path,
    rows: Sequence[dict[str, str]],
) -> list[dict[str, Any]]:
    """Per escalation threshold on ``rows``: the hybrid's rates and monthly cost.

    Both halves decide every question once (the head's probabilities come with the semantic
    decision), then each threshold picks, per question, the semantic decision or the LLM's.
    """
    semantic = evaluate(
        build_service("semantic", config, backend.client, index_dir, backend.embedding_source),
        rows,
    )
    llm = evaluate(build_service("llm-assisted", config, backend.client), rows)
    classes = [*config.category_names, OUT_OF_SCOPE]
    probabilities = [o.details.get("probabilities") for o in semantic]
    if any(p is None for p in probabilities):
        raise EvaluationError("--hybrid-table needs the head (semantic.decision: head)")
    matrix = np.array([[p.get(c, 0.0) for c in classes] for p in probabilities])
    labels = np.array([OUT_OF_SCOPE if r["label"] == OTHER else r["label"] for r in rows], object)
    table = hybrid_rows(
        matrix,
        np.array([o.decision for o in semantic], dtype=object),
        np.array([o.decision for o in llm], dtype=object),
        labels,
        parse_routing(config).false_refusal_cost,
    )
    top = matrix.max(axis=1)
    for row in table:
        outcomes = [
            s if t >= row["min_probability"] else replace(m, escalated=True)
            for s, m, t in zip(semantic, llm, top, strict=True)
        ]
        outcomes = [replace(o, escalated=bool(o.escalated)) for o in outcomes]
        summary = summarise(outcomes, config.category_names)
        row["monthly_cost"] = monthly_cost(summary, outcomes, "hybrid")["total"]
        row["out_of_scope_recall"] = summary["out_of_scope_recall"]
    return table


def render_hybrid_table(table: Sequence[dict[str, Any]]) -> str:
    lines = [
        "hybrid.min_probability  escalated  accuracy  false refusals  off-topic declined  "
        "F*FR+leak  monthly cost",
    ]
    for r in table:
        lines.append(
            f"{r['min_probability']:>22}  {r['escalation_rate'] * 100:>8.1f}%  "
            f"{r['accuracy'] * 100:>7.1f}%  {r['false_refusal_rate'] * 100:>13.1f}%  "
            f"{r['out_of_scope_recall'] * 100:>17.1f}%  {r['objective']:>9.3f}  "
            f"${r['monthly_cost']:>11,.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    # Progress goes to stderr so that --format json prints one object on stdout.
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        config = load_routes(args.routes, preset=args.preset)
        with contextlib.ExitStack() as stack:
            backend = open_backend(stack, args.bedrock, args.region)
            index_dir = prepare_index(config, backend, say)
            if args.fit:
                semantic = build_service(
                    "semantic", config, backend.client, index_dir, backend.embedding_source
                ).classifier
                assert isinstance(semantic, SemanticClassifier)
                llm = build_service("llm-assisted", config, backend.client)
                config = run_fit(args, config, semantic, llm, say)
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
                table = hybrid_table(args, config, backend, index_dir, rows)
                print(json.dumps(table, indent=2) if args.format == "json"
                      else render_hybrid_table(table))
                return 0
            service = build_service(
                args.router, config, backend.client, index_dir, backend.embedding_source
            )
            outcomes = evaluate(service, rows)
    except (ConfigError, StartupError, EvaluationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BedrockFailure as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    summary = summarise(outcomes, config.category_names)
    cost = monthly_cost(summary, outcomes, args.router)
    scenario = costs.load_scenario()
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
    sys.exit(main())
