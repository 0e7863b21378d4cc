"""One router's evaluation as text: the rates, per class, the confusion matrix, the monthly cost,
the per-source table and the errors, for a person reading a terminal (``--format json`` gives
machines the same figures)."""

from __future__ import annotations

from typing import Any


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
