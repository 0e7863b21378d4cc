"""The scale benchmark's text report: per-request figures, then cold start and index size."""

from __future__ import annotations

from typing import Any

from llm_router.decision.semantic_index import INDEX_FILE
from text_table import table


def _mb(size: int) -> str:
    mib = size / (1024 * 1024)
    return f"{mib:,.1f}" if mib >= 10 else f"{mib:.3f}"


def format_text(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    ks = [str(k) for k in s["recall_k"]]
    lines = [
        "Semantic router scale benchmark",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / 2**30:.1f} GiB RAM, "
        f"{m['os']}; Python {m['python']}, numpy {m['numpy']}, faiss {m['faiss']} "
        f"({m['faiss_threads']} threads)",
        f"settings: {s['dimensions']} dimensions, {s['queries']} queries per size, strategy "
        f"{s['strategy']}, semantic k {s['semantic_k']}, index thresholds {s['thresholds']}",
        "",
        "Per request: route-decision overhead = handler time - model time (ms); "
        "recall against exact search",
    ]
    per_request = []
    for r in result["rows"]:
        recall = [f"{r['recall'][k]:.4f}" for k in ks]
        per_request.append(
            [
                f"{r['vectors']:,}",
                str(r["dimensions"]),
                r["index_type"],
                *recall,
                f"{r['route_agreement'] * 100:.1f}%",
                f"{r['search_ms']['p50']:.3f}",
                f"{r['overhead_ms']['p50']:.3f}",
                f"{r['overhead_ms']['p99']:.3f}",
                f"{r['aws_calls_per_request']:g}",
                f"{r['aws_round_trip_ms']['p50']:.3f}",
                f"{r['overhead_without_aws_round_trips_ms']['p50']:.3f}",
            ]
        )
    lines += table(
        [
            "vectors",
            "dims",
            "index",
            *(f"recall@{k}" for k in ks),
            "same route",
            "search p50",
            "overhead p50",
            "overhead p99",
            "AWS calls",
            "AWS p50",
            "without AWS p50",
        ],
        per_request,
        left=0,
    )
    lines.append(
        "  AWS calls: HTTP round trips per request to AWS APIs other than Bedrock (the budget "
        "guard's DynamoDB, moto on loopback here), inside the overhead; without AWS: the "
        "overhead less them"
    )
    lines += ["", "Cold start (s, fresh process) and index size"]
    cold_rows = []
    for r in result["rows"]:
        c = r["cold_start_seconds"]
        build = r["build_seconds"]["index_build"]
        cold_rows.append(
            [
                f"{r['vectors']:,}",
                r["index_type"],
                _mb(r["file_bytes"][INDEX_FILE]),
                _mb(r["index_dir_bytes"]),
                "yes" if r["fits_lambda_250mb_limit"] else "NO",
                f"{build:.2f}" + (" (cached)" if r["built_from_cache"] else ""),
                f"{c['import_numpy']:.3f}",
                f"{c['import_faiss']:.3f}",
                f"{c['import_handler']:.3f}",
                f"{c['client']:.3f}",
                f"{c['routes_load']:.3f}",
                f"{c['index_load']:.3f}",
            ]
        )
    lines += table(
        [
            "vectors",
            "index",
            "index MiB",
            "dir MiB",
            "<250 MiB",
            "build s",
            "numpy",
            "faiss",
            "handler",
            "client",
            "routes",
            "load_index",
        ],
        cold_rows,
        left=0,
    )
    lines += [
        "",
        "imports: numpy, faiss, llm_router.edge.handler (boto3, Powertools, the router); client: "
        "runtime_client(); routes: load_routes(); load_index: manifest check, labels, index.",
        "",
        "Simplifications:",
        *(f"- {note}" for note in result["simplifications"]),
        "",
        f"total wall time: {result['total_seconds']:.1f} s",
    ]
    return "\n".join(lines)
