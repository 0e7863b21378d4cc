"""The per-subject view, the out-of-scope policies' monthly cost and the README picture.

* ``per_source``: for each value of the dataset's ``source`` field (MMLU's subject), how many
  questions were routed to each class, and the share routed right.
* ``policy_costs``: the monthly answering cost of each out-of-scope action at the decided mix:
  ``decline`` answers nothing for a declined question, ``default`` answers it with the default
  category's target, ``cheapest`` with the cheapest target (``RoutesConfig.cheapest_category``),
  whose system prompt declines. Priced from routes.json ``prices`` (``RoutesConfig.price_of``
  strips a geo prefix such as ``us.``), at the cost calculator scenario's traffic and tokens.
* ``plot``: confusion matrix and per-subject bars in one PNG (matplotlib, dev-only).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_router.config import OUT_OF_SCOPE, RoutesConfig

from evaluation.metrics import OTHER, Outcome


def per_source(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    """{source: {label, n, routed: {class: count}, correct}} in source order."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.source or "(none)"].append(o)
    report = {}
    for source, group in sorted(groups.items()):
        routed = Counter(o.predicted for o in group)
        labels = Counter(o.label for o in group)
        report[source] = {
            "label": labels.most_common(1)[0][0],
            "n": len(group),
            "routed": dict(routed),
            "correct": round(sum(o.predicted == o.label for o in group) / len(group), 4),
        }
    return report


def policy_costs(
    outcomes: Sequence[Outcome],
    config: RoutesConfig,
    questions_per_month: int,
    input_tokens: int,
    output_tokens: int,
) -> dict[str, float | None]:
    """USD a month for answers under each out-of-scope action (None when a price is unknown)."""

    def answer_cost(category: str) -> float | None:
        price = config.price_of(config.answerer_for(category))
        return None if price is None else price.cost_usd(input_tokens, output_tokens)

    share = Counter(o.decision for o in outcomes)
    n = len(outcomes)
    results: dict[str, float | None] = {}
    for action, declined_to in (
        ("decline", None),
        ("default", config.default_category),
        ("cheapest", config.cheapest_category()),
    ):
        total = 0.0
        for decision, count in share.items():
            category = declined_to if decision == OUT_OF_SCOPE else decision
            if category is None:
                continue
            cost = answer_cost(category)
            if cost is None:
                total = None  # type: ignore[assignment]
                break
            total += cost * count / n * questions_per_month
        results[action] = None if total is None else round(total, 2)
    return results


def label_colours(categories: Sequence[str]) -> dict[str, str]:
    """One colour per category, in the configuration's order, from matplotlib's default cycle
    (``tab:``, ten colours, repeating beyond; grey is skipped: off-topic bars are grey)."""
    cycle = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
             "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
    colours = {name: cycle[i % len(cycle)] for i, name in enumerate(categories)}
    colours[OTHER] = "tab:gray"
    return colours


def plot(
    summary: dict[str, Any], sources: dict[str, dict[str, Any]], title: str, path: Path
) -> None:
    """Confusion matrix (left) and the share routed right per source (right), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(summary["confusion"])
    matrix = [[summary["confusion"][label][p] for p in classes] for label in classes]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, max(3.5, 0.28 * len(sources) + 1)), width_ratios=(1, 1.6)
    )
    left.imshow(matrix, cmap="Blues")
    left.set_xticks(range(len(classes)), classes)
    left.set_yticks(range(len(classes)), classes)
    left.set_xlabel("decision")
    left.set_ylabel("label")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            left.text(j, i, str(value), ha="center", va="center")
    left.set_title("confusion")
    names = list(sources)
    colours = label_colours([c for c in classes if c not in (OTHER, OUT_OF_SCOPE)])
    right.barh(
        range(len(names)),
        [sources[s]["correct"] * 100 for s in names],
        color=[colours.get(sources[s]["label"], "tab:gray") for s in names],
    )
    right.set_yticks(range(len(names)), [s.removeprefix("mmlu/") for s in names], fontsize=7)
    right.invert_yaxis()
    right.set_xlim(0, 100)
    right.set_xlabel("% routed right (off-topic: declined)")
    right.set_title("per subject")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
