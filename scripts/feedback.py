"""List and export the feedback callers sent to ``POST /feedback``.

    python scripts/feedback.py list   --table TABLE [--region R]
    python scripts/feedback.py export --table TABLE [--output corrections.jsonl]

``list`` prints every feedback item, newest first, then a summary; ``export`` writes the
corrections that carry their question *and a valid provenance* (the feedback function stored them
after verifying the answer's feedback token: ``provenance``, ``api_key_id`` and ``tier`` are set;
items from before tokens, or written by anyone else, are dropped and counted on stderr) as
labelled JSON lines, ``{"question", "label"}`` (label: the
corrected category, ``other`` for "should have been declined"), the format ``evaluate.py
--dataset`` and ``--fit-dataset`` read and from which reference prompts can be added to
``routes.json``; the summary goes to stderr. The summary: corrections by (routed, correct) category
pair, and the helpful rate by answer target. Both need what the client echoed from the ``/ask``
response (``question_classification``, ``answerer_LLM``); feedback without them is counted under
``unknown``.

The table is the stack's feedback table (``FEEDBACK_TABLE_NAME`` of the feedback function);
``--endpoint-url`` reaches another DynamoDB (e.g. a local one). Reading needs ``dynamodb:Scan`` on
the table: your credentials, not the function's (which may only write).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import cli
from evaluation.metrics import OTHER
from llm_router.config import OUT_OF_SCOPE
from llm_router.edge.feedback import PROVENANCE

UNKNOWN = "unknown"


class FeedbackError(RuntimeError):
    """Something the user must fix; one line on stderr."""


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of the table as plain Python values, newest first."""
    from boto3.dynamodb.types import TypeDeserializer
    from botocore.exceptions import BotoCoreError, ClientError

    deserializer = TypeDeserializer()
    items = []
    try:
        for page in client.get_paginator("scan").paginate(TableName=table):
            items += [
                {key: deserializer.deserialize(value) for key, value in raw.items()}
                for raw in page.get("Items", [])
            ]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise FeedbackError(
            f"cannot read table {table}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise FeedbackError(f"cannot read table {table}: {exc}") from None
    return sorted(items, key=lambda item: str(item.get("received_at", "")), reverse=True)


def has_provenance(item: Mapping[str, Any]) -> bool:
    """Stored by the feedback function after a feedback token verified (see its module)."""
    return (
        item.get("provenance") == PROVENANCE
        and bool(item.get("api_key_id"))
        and bool(item.get("tier"))
    )


def labelled_examples(items: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Corrections that carry their question and a valid provenance, as evaluation rows
    ``{"question", "label"}``."""
    return [
        {
            "question": str(item["question"]),
            "label": OTHER if item["correct_category"] == OUT_OF_SCOPE
            else str(item["correct_category"]),
        }
        for item in items
        if item.get("correct_category") and item.get("question") and has_provenance(item)
    ]


def without_provenance(items: Iterable[Mapping[str, Any]]) -> int:
    """How many corrections with a question export drops for want of provenance."""
    return sum(
        1 for item in items
        if item.get("correct_category") and item.get("question") and not has_provenance(item)
    )


def summarise(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by kind, corrections by category pair, helpful rate by answer target."""
    pairs = Counter(
        (str(item.get("question_classification") or UNKNOWN), str(item["correct_category"]))
        for item in items
        if item.get("correct_category")
    )
    votes: dict[str, list[bool]] = defaultdict(list)
    for item in items:
        if item.get("helpful") is not None:
            votes[str(item.get("answerer_LLM") or UNKNOWN)].append(bool(item["helpful"]))
    return {
        "n": len(items),
        "by_kind": dict(Counter(str(item.get("kind", UNKNOWN)) for item in items)),
        "corrections": [
            {"routed": routed, "correct": correct, "count": count}
            for (routed, correct), count in pairs.most_common()
        ],
        "helpful_by_answerer": {
            answerer: {"helpful_rate": round(sum(v) / len(v), 4), "n": len(v)}
            for answerer, v in sorted(votes.items())
        },
        "exportable": len(labelled_examples(items)),
        "dropped_without_provenance": without_provenance(items),
    }


def render_summary(summary: Mapping[str, Any]) -> str:
    lines = [f"{summary['n']} feedback items: {json.dumps(summary['by_kind'], sort_keys=True)}"]
    lines.append("corrections (routed -> correct):")
    lines += [f"  {c['routed']} -> {c['correct']}: {c['count']}" for c in summary["corrections"]]
    if not summary["corrections"]:
        lines.append("  none")
    lines.append("helpful rate by answer target:")
    lines += [
        f"  {answerer}: {v['helpful_rate'] * 100:.1f}% of {v['n']}"
        for answerer, v in summary["helpful_by_answerer"].items()
    ]
    if not summary["helpful_by_answerer"]:
        lines.append("  none")
    lines.append(
        f"{summary['exportable']} corrections carry their question and provenance (export writes "
        f"them); {summary['dropped_without_provenance']} without provenance dropped"
    )
    return "\n".join(lines)


def render_item(item: Mapping[str, Any]) -> str:
    verdict = {"correction": f"should be {item.get('correct_category')}",
               "helpful": "helpful", "not_helpful": "not helpful"}.get(
                   str(item.get("kind")), "comment")
    parts = [str(item.get("received_at", "?")), str(item.get("request_id")), verdict]
    if item.get("question_classification") or item.get("answerer_LLM"):
        parts.append(
            f"(routed {item.get('question_classification') or '?'} -> "
            f"{item.get('answerer_LLM') or '?'})"
        )
    if item.get("question"):
        parts.append(f"question: {item['question']!r}")
    if item.get("comment"):
        parts.append(f"comment: {item['comment']!r}")
    return "  ".join(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("list", "export"))
    parser.add_argument("--table", required=True, help="the stack's feedback table name")
    parser.add_argument("--region", help="AWS region of the table")
    parser.add_argument("--profile", help="AWS profile to use")
    parser.add_argument("--endpoint-url", help="another DynamoDB endpoint (e.g. a local one)")
    parser.add_argument("--output", type=Path, help="export: write here (default: stdout)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="list: the items and summary as text or one JSON object")
    return parser.parse_args(argv)


def client_for(args: argparse.Namespace) -> Any:
    import boto3

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    return session.client("dynamodb", endpoint_url=args.endpoint_url)


def run(args: argparse.Namespace, client: Any, out: TextIO, err: TextIO) -> None:
    items = scan(client, args.table)
    summary = summarise(items)
    if args.command == "list":
        if args.format == "json":
            out.write(json.dumps({"items": items, "summary": summary}, default=str, indent=2))
            out.write("\n")
            return
        for item in items:
            out.write(render_item(item) + "\n")
        out.write(render_summary(summary) + "\n")
        return
    lines = "".join(
        json.dumps(row, ensure_ascii=False) + "\n" for row in labelled_examples(items)
    )
    if args.output:
        args.output.write_text(lines, encoding="utf-8")
    else:
        out.write(lines)
    err.write(render_summary(summary) + "\n")


def main(argv: Sequence[str] | None = None, client: Any | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError

    try:
        run(args, client or client_for(args), sys.stdout, sys.stderr)
    except FeedbackError as exc:
        return cli.error(exc)
    except BotoCoreError as exc:  # no credentials, no region, unknown profile
        print(f"error: AWS: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main)
