"""Monthly cost of the multi-LLM router: the blog's cost tables, and what-ifs on any input.

    python scripts/cost_calculator.py                          # the blog's scenario
    python scripts/cost_calculator.py --math-per-day 100000 --architecture arm64
    python scripts/cost_calculator.py --price amazon.titan-text-express-v1=0.0002/0.0006 \\
        --count-classifier-output --hybrid-escalation-rate 0.2 --format json
    python scripts/cost_calculator.py --scenario my-traffic.json   # a partial file is enough
    python scripts/cost_calculator.py --routes examples/x/routes.json --traffic billing=20000

Without ``--routes`` the figures are the blog's (its two categories, history and math: $618.75
answering, $7,425 saved, $90 and $9 routing, $98.9 Lambda and API Gateway). ``--routes FILE``
prices that routes file instead: its categories, their answer targets, its classifier and
embedding models and its price table, with the blog's daily total split evenly across the
categories unless ``--traffic CATEGORY=N`` sets a category's share (``costs.for_routes``).

It reproduces the cost section of the AWS blog post "Multi-LLM routing strategies for generative
AI applications on AWS": answer generation per category, routing per strategy (classifier LLM,
embeddings, and hybrid when an escalation rate is given), Lambda + API Gateway, the total per
strategy and the saving against answering every question with the premium model.

Why hand-written: no library computes a Bedrock bill. AWS publishes prices as web pages and the
Price List API (which needs credentials and returns thousands of SKUs per service), and the AWS
Pricing Calculator is a web form. The arithmetic itself is a few multiplications, so the ``costs``
package beside this script does it with ``decimal`` (exact cents, no float drift) over data:
model prices from the ``prices`` table of ``routes.json`` (the one the function and ``evaluate.py``
read), traffic and infrastructure prices from ``scripts/cost_scenarios/blog-2024.json``, each
with its source.

This file is only the command line: every flag becomes a key of a partial scenario laid over the
loaded one, so a flag and a ``--scenario`` file change the same inputs the same way. Bad input
prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cli
from costs import (
    ARCHITECTURES,
    FREE_TIER_SCOPES,
    CostError,
    apply_overrides,
    compute,
    deep_merge,
    entries,
    load_scenario,
    render_json,
    render_text,
    to_decimal,
    validate_scenario,
)
from costs.cache_saving import cache_to_dict, compute_cache, render_cache_text
from llm_router.config import ConfigError, load_routes
from routes_file import use_routes_file

EXIT_USAGE = 2

# The flags that set one scalar of the scenario: (flag, path in the scenario, metavar, help), a
# number parsed exactly; and (flag, path, add_argument's other keywords), a value as given. One
# table declares each flag and says where it goes, so the parser and the overrides cannot drift.
NUMBER_FLAGS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("--days-per-month", ("days_per_month",), "DAYS",
     "month length (30; 730/24 as the AWS calculator)"),
    ("--input-tokens", ("tokens", "input_per_question"), "N", "input tokens per question (150)"),
    ("--output-tokens", ("tokens", "output_per_answer"), "N", "output tokens per answer (300)"),
    ("--classifier-output-tokens", ("routing", "classifier_output_tokens"), "N",
     "classifier output tokens (1)"),
    ("--classifier-prompt-tokens", ("routing", "classifier_prompt_overhead_tokens"), "N",
     "tokens the classifier prompt adds to each question (0, as the blog)"),
    ("--hybrid-escalation-rate", ("routing", "hybrid_escalation_rate"), "R",
     "share 0..1 of questions the hybrid router escalates to the classifier (off)"),
    ("--memory-mb", ("lambda", "memory_mb"), "MB", "Lambda memory (1024)"),
    ("--ephemeral-mb", ("lambda", "ephemeral_mb"), "MB",
     "Lambda ephemeral storage, 512 free (512)"),
)
VALUE_FLAGS: tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...] = (
    ("--count-classifier-output", ("routing", "classifier_output_tokens_counted"),
     {"action": argparse.BooleanOptionalAction, "default": None,
      "help": "count the classifier's output tokens in the routing cost (off, as the blog)"}),
    ("--classifier-model", ("routing", "classifier_model"),
     {"metavar": "MODEL_ID", "help": "price classification with this model"}),
    ("--embedding-model", ("routing", "embedding_model"),
     {"metavar": "MODEL_ID", "help": "price embeddings with this model"}),
    ("--architecture", ("lambda", "architecture"),
     {"choices": ARCHITECTURES, "help": "Lambda architecture (x86_64)"}),
    ("--free-tier", ("free_tier", "enabled"),
     {"action": argparse.BooleanOptionalAction, "default": None,
      "help": "apply the monthly free tier (on)"}),
    ("--free-tier-scope", ("free_tier", "scope"),
     {"choices": FREE_TIER_SCOPES,
      "help": "free tier once per account (as billed) or per function (as the AWS calculator)"}),
)


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def _pair(text: str, flag: str, shape: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise CostError(f"{flag} takes {shape}, not {text!r}")
    return key.strip(), value.strip()


def _category(name: str, scenario: Mapping[str, Any], flag: str) -> str:
    known = sorted(entries(scenario["categories"]))
    if name not in known:
        raise CostError(
            f"unknown category {name!r} in {flag} (known: {', '.join(known)}); "
            "add categories in a --scenario file"
        )
    return name


def overrides_from_args(args: argparse.Namespace, scenario: Mapping[str, Any]) -> dict[str, Any]:
    """The command-line flags as a partial scenario to lay over ``scenario``."""
    o: dict[str, Any] = {}

    def put(path: Sequence[str], value: Any) -> None:
        node = o
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    traffic = [(item, "--traffic") for item in args.traffic or []]
    if args.history_per_day is not None:
        traffic.insert(0, (f"history={args.history_per_day}", "--history-per-day"))
    if args.math_per_day is not None:
        traffic.insert(0, (f"math={args.math_per_day}", "--math-per-day"))
    for item, flag in traffic:
        name, value = _pair(item, flag, "CATEGORY=QUESTIONS_PER_DAY")
        _category(name, scenario, flag)
        put(["categories", name, "questions_per_day"], to_decimal(value, f"{flag} {name}"))
    for item in args.duration or []:
        name, value = _pair(item, "--duration", "CATEGORY=SECONDS")
        _category(name, scenario, "--duration")
        seconds = to_decimal(value, f"--duration {name}")
        put(["categories", name, "lambda_duration_seconds"], seconds)
    for item in args.answerer or []:
        name, model_id = _pair(item, "--answerer", "CATEGORY=MODEL_ID")
        _category(name, scenario, "--answerer")
        put(["categories", name, "answerer"], model_id)

    known_models = set(entries(scenario["models"]))
    new_models = []
    for item in args.price or []:
        model_id, value = _pair(item, "--price", "MODEL_ID=IN/OUT (USD per 1,000 tokens)")
        price_in, sep, price_out = value.partition("/")
        put(["models", model_id, "input_per_1k"], to_decimal(price_in, f"--price {model_id} IN"))
        if sep:
            put(["models", model_id, "output_per_1k"], to_decimal(price_out, f"--price {model_id}"))
        if model_id not in known_models:
            if not sep:
                raise CostError(f"--price for a new model {model_id!r} needs IN/OUT")
            new_models.append(model_id)

    for flag, path, *_ in NUMBER_FLAGS:
        value = getattr(args, _dest(flag))
        if value is not None:
            put(path, to_decimal(value, flag))
    for flag, path, _ in VALUE_FLAGS:
        value = getattr(args, _dest(flag))
        if value is not None:
            put(path, value)
    for item in args.cache_hit_rate or []:
        name, sep, value = item.rpartition("=")
        if sep:
            _category(name, scenario, "--cache-hit-rate")
        put(["cache", "hit_rate", name or "*"], to_decimal(value, "--cache-hit-rate"))
    if args.premium_category is not None:
        put(["premium_category"], _category(args.premium_category, scenario, "--premium-category"))
    if o:
        o["name"] = f"{scenario.get('name', 'custom')} (what-if)"

    merged = deep_merge(scenario, o)
    used = {c.get("answerer") for c in entries(merged["categories"]).values()}
    used |= {merged["routing"].get("classifier_model"), merged["routing"].get("embedding_model")}
    for model_id in new_models:
        if model_id not in used:
            known = ", ".join(sorted(known_models))
            raise CostError(
                f"unknown model {model_id!r} in --price (known: {known}); a new model must also "
                "be used, e.g. --answerer CATEGORY=MODEL_ID"
            )
    return o


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cost_calculator.py",
        description=(
            "Monthly cost of the multi-LLM router: the AWS blog's cost tables from "
            "scripts/cost_scenarios/blog-2024.json, and what-ifs on any input."
        ),
        epilog=(
            "Hybrid routing appears only with --hybrid-escalation-rate (the blog gives no rate). "
            "Prices are USD per 1,000 tokens. Exit code 2 on bad input."
        ),
    )
    add = parser.add_argument
    add(
        "--scenario",
        action="append",
        metavar="FILE.json",
        help="a (partial) scenario deep-merged over the default; repeatable, applied in order",
    )
    add(
        "--routes",
        type=Path,
        metavar="FILE",
        help="price this routes file's categories, targets and models (default: the blog's)",
    )
    add("--format", choices=("text", "json"), default="text", help="output format (text)")
    add("--traffic", action="append", metavar="CATEGORY=N", help="questions a day; repeatable")
    add("--history-per-day", metavar="N", help="same as --traffic history=N")
    add("--math-per-day", metavar="N", help="same as --traffic math=N")
    add(
        "--cache-hit-rate",
        action="append",
        metavar="[CATEGORY=]R",
        help="share 0..1 of a cached category's questions the response cache answers (every "
        "cached category, or one; repeatable): adds its saving against its DynamoDB cost (off)",
    )
    add(
        "--price",
        action="append",
        metavar="MODEL_ID=IN/OUT",
        help="USD per 1,000 input/output tokens; repeatable; a new model also needs a use",
    )
    add("--answerer", action="append", metavar="CATEGORY=MODEL_ID", help="repeatable")
    add(
        "--premium-category",
        metavar="CATEGORY",
        help="the saving is against every question going to this category's answerer (math)",
    )
    add(
        "--duration",
        action="append",
        metavar="CATEGORY=SECONDS",
        help="Lambda duration per question; repeatable",
    )
    for flag, _, metavar, text in NUMBER_FLAGS:
        add(flag, metavar=metavar, help=text)
    for flag, _, options in VALUE_FLAGS:
        add(flag, **options)
    return parser


def run(argv: Sequence[str] | None = None) -> str:
    """The report the command line prints; raises ``CostError`` on bad input."""
    args = build_parser().parse_args(argv)
    routes = None
    if args.routes is not None:
        try:
            use_routes_file(args.routes)
            routes = load_routes()
        except ConfigError as exc:
            raise CostError(str(exc)) from None
    scenario = load_scenario(args.scenario or (), routes=routes)
    validate_scenario(scenario)
    scenario = apply_overrides(scenario, overrides_from_args(args, scenario))
    report = compute(scenario)
    cache = compute_cache(scenario, routes or load_routes())
    if args.format == "json":
        if cache is None:
            return render_json(report)
        return json.dumps({**json.loads(render_json(report)), "cache": cache_to_dict(cache)},
                          indent=2) + "\n"
    text = render_text(report)
    return text if cache is None else text + "\n" + render_cache_text(cache)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        output = run(argv)
    except CostError as exc:
        print(f"cost_calculator.py: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(output)
    return 0


if __name__ == "__main__":
    cli.run(main)
