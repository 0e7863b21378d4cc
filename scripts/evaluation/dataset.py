"""Labelled questions from JSON lines, checked before anything runs.

Each line is ``{"question": ..., "label": ...}`` (an optional ``source``, MMLU's subject, is
kept for the per-subject report); the label is a configured category or ``other`` for off-topic.
A bad line stops the evaluation with its file and line number, so a typo in a label cannot
quietly count as an error of the router.
"""

from __future__ import annotations

import json
from pathlib import Path

from llm_router.config import RoutesConfig

from evaluation.metrics import OTHER


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
