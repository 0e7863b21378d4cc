"""Your own categories: start a routes file, check it, and find prompts in the wrong place.

    python scripts/routes.py new billing refunds shipping --out my-routes.json
    python scripts/routes.py check --routes my-routes.json [--embeddings stand-in|bedrock|auto]
    python scripts/routes.py check --routes my-routes.json --drop-inside   # rewrite the file

``new`` writes a skeleton for the named categories: the operational sections of a template
(``--template``, default the routes file in force) and placeholders for what only you can write
(descriptions, reference prompts, the answer system prompt, the decline message); see
``routes_kit.skeleton``. ``check`` reports, one line each with the key it is about:

- errors the router itself would raise (every section, every preset), placeholders left in, too
  few reference prompts, a prompt under two labels, an unknown ``schema_version``;
- with embeddings (the semantic index the router would use, built or reused in
  ``.build/semantic-index/``; ``--embeddings none`` skips this): category prompts closer to
  another category or to the off-topic prompts, and off-topic prompts inside a category
  (warnings: such a prompt trains the router to decline your own domain, unless it is a near
  miss you mean to decline). ``--drop-inside`` removes those off-topic prompts from the file.

The exit code is 0 when there is no error (1 with ``--strict`` on any warning too), 1 otherwise,
2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import cli
import numpy as np
from build_index import IndexBuildError, default_index_dir, ensure_index, resolve_source
from llm_router.config import OUT_OF_SCOPE, ConfigError, RoutesConfig, find_routes_file
from llm_router.decision.semantic_index import load_index
from routes_file import add_routes_argument, use_routes_file, write_routes_json
from routes_kit import (
    ERROR,
    WARNING,
    Problem,
    conflict_problems,
    off_topic_inside,
    skeleton,
    structural_problems,
)
from routes_kit.checks import MIN_PROMPTS


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_raw(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return raw


def embedded_prompts(
    config: RoutesConfig, source: str, region: str | None
) -> tuple[np.ndarray, list[str], list[str]]:
    """The file's own reference prompts' vectors as the semantic index holds them, with labels
    and texts. The index's first rows are the file's, in ``reference_prompts()`` order; rows the
    topic bank added after them are left out: the check judges what the user wrote."""
    directory = default_index_dir(config, source)
    ensure_index(config, directory, source, region, _say)
    loaded = load_index(directory, config, resolve_source(source))
    own = config.reference_prompts()
    rows = list(loaded.rows[: len(own)])
    if [(r.category, r.prompt) for r in rows] != own:
        raise IndexBuildError(f"the index in {directory} does not start with the file's prompts")
    vectors = loaded.index.reconstruct_n(0, len(own))
    return np.asarray(vectors), [r.category for r in rows], [r.prompt for r in rows]


def cmd_new(args: argparse.Namespace) -> int:
    template_path = args.template or find_routes_file()
    if args.out.exists() and not args.force:
        raise ConfigError(f"{args.out} exists: choose another --out or pass --force")
    raw = skeleton(read_raw(Path(template_path)), args.categories)
    write_routes_json(args.out, raw)
    print(
        f"wrote {args.out}: categories {', '.join(args.categories)} from template "
        f"{template_path}. Next: replace every TODO, write {MIN_PROMPTS * 2}-30 reference "
        f"prompts per category, then: python scripts/routes.py check --routes {args.out}"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = use_routes_file(args.routes) or find_routes_file()
    raw = read_raw(path)
    config, problems = structural_problems(raw)
    blocking = any(p.level == ERROR and "reference_prompts" in p.where for p in problems)
    if config is not None and args.embeddings != "none":
        if blocking:
            _say("conflicts not checked: a category or the off-topic set has too few prompts")
        else:
            vectors, labels, prompts = embedded_prompts(config, args.embeddings, args.region)
            problems.extend(conflict_problems(config, vectors, labels, prompts))
            if args.drop_inside:
                inside = {p for p, *_ in off_topic_inside(config, vectors, labels, prompts)}
                kept = [p for p in config.out_of_scope.reference_prompts if p not in inside]
                raw["out_of_scope"]["reference_prompts"] = kept
                write_routes_json(path, raw)
                _say(f"removed {len(inside)} off-topic prompts inside a category from {path}; "
                     f"{len(kept)} remain")
                problems = [p for p in problems if not p.where.startswith(f"{OUT_OF_SCOPE} ")]
    report(problems, path, args.format)
    failing = (ERROR, WARNING) if args.strict else (ERROR,)
    return 1 if any(p.level in failing for p in problems) else 0


def report(problems: Sequence[Problem], path: Path, form: str) -> None:
    errors = sum(p.level == ERROR for p in problems)
    warnings = len(problems) - errors
    if form == "json":
        print(json.dumps({"routes": str(path), "errors": errors, "warnings": warnings,
                          "problems": [asdict(p) for p in problems]}, indent=2))
        return
    for problem in problems:
        print(problem.line())
    print(f"{path}: {errors} errors, {warnings} warnings")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routes.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="write a skeleton routes file for your categories")
    new.add_argument("categories", nargs="+", metavar="CATEGORY",
                     help="category names: lower-case letters, digits, '-' and '_'")
    new.add_argument("--out", type=Path, required=True, metavar="FILE",
                     help="where to write the new routes file")
    new.add_argument("--template", type=Path, metavar="FILE",
                     help="routes file whose models, prices and limits to keep "
                          "(default: $ROUTES_FILE, else the repository's routes.json)")
    new.add_argument("--force", action="store_true", help="overwrite --out")
    check = sub.add_parser("check", help="validate a routes file and report conflicts")
    add_routes_argument(check)
    check.add_argument("--embeddings", choices=("auto", "bedrock", "stand-in", "none"),
                       default="stand-in",
                       help="how to embed the prompts for the conflict check (stand-in)")
    check.add_argument("--region", help="AWS region for --embeddings bedrock")
    check.add_argument("--drop-inside", action="store_true",
                       help="remove off-topic prompts that sit inside a category from the file")
    check.add_argument("--strict", action="store_true", help="warnings fail too")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="one line a problem, or one JSON object (text)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_new(args) if args.command == "new" else cmd_check(args)
    except (ConfigError, IndexBuildError) as exc:
        print(f"routes.py: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    cli.run(main)
