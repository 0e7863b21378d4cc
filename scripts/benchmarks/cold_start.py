"""Cold start of each router's real Lambda handler beside a floor measured in the same run.

``python scripts/benchmark.py --cold [--runs 10] [--routers semantic,llm-assisted]``

For each router of ``STRATEGIES`` it starts the Bedrock stand-in once (in this process, real HTTP
on loopback), builds the semantic index through it when missing, and then alternates fresh
processes (``cold_probe.py``):

* **handler**: import ``llm_router.edge.handler`` as the Lambda runtime does (the router is built at
  import) and serve the first request through the stand-in;
* **floor**: the original sample's shape: import boto3 (plus numpy and faiss for the routers that
  embed), create the client, load the index, and make the *same* Bedrock calls, replayed from the
  stand-in's call log of a warm-up handler run, so both pay for the same model work.

The handler runs with the environment its stack gives the function, read from the synthesized
template (``benchmarks.stack_env``): the daily budget guard's table (in moto's DynamoDB on
loopback) and tracing as configured. The floor has neither, as the original sample had neither.

Both run as they would ship: the handler imports ``llm_router`` from a function asset built by
``layers.function_asset`` (the deployment's own builder) with bytecode of this interpreter, as the
deployed asset carries the runtime's (unchecked-hash ``.pyc``, ``layers/bytecode.py``); boto3,
Powertools, numpy and faiss come with their installed bytecode, as the Lambda runtime and the
layers provide them. Neither process may write bytecode (``PYTHONDONTWRITEBYTECODE``, as
``/var/task`` and ``/opt`` are read-only), and each reports how many of the modules it imported it
had to compile from source: the table shows that count, which should be 0 for both.

The streaming function (``POST /ask/stream``, its own function with the same code and layers) is
measured beside them (**stream**: its runtime module's init, then one stream read to ``done``; the
first ``delta``'s time is reported too), so its cold start reads against ``/ask``'s.

Each figure is the median of ``--runs`` processes (at least 10 for a report), taken from the
probe's first line to the first response, so the interpreter's own start-up (the same for both) is
left out. The ratio handler / floor is what the issue's target (at most 1.05x) is about. Runs
alternate handler and floor so that a machine getting busier or quieter shifts both alike.

Hand-written rather than hyperfine or pyperf: the floor's calls are recorded from the handler in
the same run, the stand-in must live across the runs, and the figures split init from the first
request, which a whole-process timer cannot do.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_router.config import RoutesConfig, load_routes
from llm_router.pipeline.factory import SEMANTIC_INDEX_DIR_ENV
from llm_router.pipeline.strategies import STRATEGIES
from text_table import table

from layers import REPO_ROOT

from .fresh_process import run_fresh
from .stack_env import StackEnvironment, placed, router_environment, synthesized_templates

PROBE = Path(__file__).resolve().parent / "cold_probe.py"
INDEX_DIR = REPO_ROOT / ".build" / "benchmark" / "cold-start-index"
TARGET_RATIO = 1.05
DEFAULT_RUNS = 10
FIGURES = ("init", "first_request", "total", "process", "cpu")
ASSET_CACHE = REPO_ROOT / ".build" / "benchmark" / "cold-start-asset"
SDK_DIR = REPO_ROOT / ".build" / "benchmark" / "cold-start-sdk"
REGION = "us-east-1"
# The blog's questions: one the semantic routers answer without escalating, one for the classifier.
QUESTIONS = {
    "llm-assisted": "Solve the quadratic equation: 2x^2 - 5x + 3 = 0",
    "semantic": "What year did World War II end?",
    "hybrid": "What year did World War II end?",
}
DEFAULT_QUESTION = "What year did World War II end?"
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def probe_env(endpoint_url: str, extra: dict[str, str]) -> dict[str, str]:
    """A Lambda-like environment with stand-in credentials and nothing of the caller's; no
    bytecode is written (Lambda's code and layer directories are read-only)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "stand-in",
            "AWS_SECRET_ACCESS_KEY": "stand-in",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "BEDROCK_ENDPOINT_URL": endpoint_url,
            "PYTHONDONTWRITEBYTECODE": "1",
            **extra,
        }
    )
    return env


def function_asset(config: RoutesConfig) -> Path:
    """The router's code asset as the deployment builds it, with this interpreter's bytecode
    (the deployed one carries the Lambda runtime's)."""
    from importlib.util import MAGIC_NUMBER

    from layers.bytecode import Compiler
    from layers.function_asset import build_function_asset

    if config.source_path is None:
        raise ValueError("the routes configuration must come from a file")
    version = "{}.{}".format(*sys.version_info[:2])
    host = Compiler(sys.executable, version, MAGIC_NUMBER.hex())
    return build_function_asset(config.source_path, version, ASSET_CACHE, compiler=host).path


def runtime_layer_sdk() -> Path:
    """botocore as the runtime layer ships it (its data cut to the functions' operations,
    :mod:`layers.aws_sdk`), from this interpreter's installed package and bytecode."""
    from layers.aws_sdk import sdk_copy

    return sdk_copy(SDK_DIR)


def run_probe(mode: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, float]:
    """One fresh process; its figures, with the whole process's wall time."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    try:
        command = [sys.executable, str(PROBE), mode, handle.name]
        figures = run_fresh(command, env, timeout=300, what=f"{mode} probe")
    finally:
        os.unlink(handle.name)
    if figures.get("status") != 200:
        raise RuntimeError(f"{mode} probe's first request answered {figures.get('status')}")
    figures["request_log_bytes"] = request_log_bytes(figures.pop("output"))
    return figures


def request_log_bytes(lines: Sequence[str]) -> int:
    """Bytes of the request's own log lines: the audit line and the EMF blob (what CloudWatch
    Logs ingests per request besides Lambda's START/END/REPORT lines); init lines excluded."""
    total = 0
    for line in lines:
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and ("_aws" in parsed or parsed.get("message") == "audit"):
            total += len(line.encode()) + 1  # the newline
    return total


def _median(runs: Sequence[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def measure_router(
    strategy: str,
    standin: Any,
    index_dir: Path,
    config: RoutesConfig,
    runs: int,
    stack_env: StackEnvironment,
    asset: Path | None = None,
    before_handler: Callable[[], None] = lambda: None,
    sdk: Path | None = None,
) -> dict[str, Any]:
    """Medians of ``runs`` handler and floor cold starts, and their ratio.

    ``before_handler`` runs before every handler (and stream) process: it empties the response
    cache (:func:`cache_emptier`), so each first request is a miss that makes the answer call the
    floor replays, as a cold instance's first, new, question would.

    The handler runs with the variables the stack gives the router function (``stack_env``: its
    budget table included, in moto's DynamoDB), placed locally: the index the layer would mount,
    the asset as the task root, and a sampled trace header when the function is traced.
    """
    asset = asset or function_asset(config)
    uses_index = STRATEGIES[strategy].needs_index
    question = QUESTIONS.get(strategy, DEFAULT_QUESTION)
    env = probe_env(
        standin.url,
        {
            **placed(stack_env, {SEMANTIC_INDEX_DIR_ENV: str(index_dir)}),
            "AWS_LAMBDA_FUNCTION_NAME": f"{strategy}-router",
            # What the Lambda runtime sets too: without LAMBDA_TASK_ROOT the X-Ray SDK believes it
            # runs outside Lambda and creates two botocore sessions and clients for centralised
            # sampling at import (aws-xray-sdk-python#273, #311), a cost no function pays.
            "LAMBDA_TASK_ROOT": str(asset),
            # Tracing as the stack configures it: a sampled request's header, so the stage
            # subsegments are recorded and sent.
            **({"_X_AMZN_TRACE_ID": TRACE_HEADER} if stack_env.traced else {}),
        },
    )
    from llm_router.edge import STREAM_ENTRY_POINT

    sdk = sdk or runtime_layer_sdk()
    handler_spec = {"lambdas_dir": str(asset), "layer_dirs": [str(sdk)], "question": question}
    stream_env = {
        **env, "_HANDLER": STREAM_ENTRY_POINT, "AWS_LAMBDA_FUNCTION_NAME": f"{strategy}-stream"
    }
    standin.reset()
    before_handler()
    run_probe("handler", handler_spec, env)  # warm-up: the stand-in's one-off work, page cache
    calls = [
        {"api": c["api"], "model_id": c["model_id"], "body": c["body"]}
        for c in standin.calls()
        if c.get("status") == 200
    ]
    floor_spec = {
        "endpoint_url": standin.url,
        "region": REGION,
        "calls": calls,
        "index_dir": str(index_dir) if uses_index else None,
        "k": config.semantic_k,
    }
    floor_env = probe_env(standin.url, {})
    run_probe("floor", floor_spec, floor_env)
    before_handler()
    run_probe("stream", handler_spec, stream_env)  # its warm-up
    handler_runs, floor_runs, stream_runs = [], [], []
    for _ in range(runs):
        before_handler()
        handler_runs.append(run_probe("handler", handler_spec, env))
        floor_runs.append(run_probe("floor", floor_spec, floor_env))
        before_handler()
        stream_runs.append(run_probe("stream", handler_spec, stream_env))
    hits = sum(r.get("cache") == "hit" for r in handler_runs)
    if hits:
        raise RuntimeError(f"{hits} of {runs} handler processes answered from the cache")
    handler = {k: _median(handler_runs, k) for k in FIGURES}
    floor = {k: _median(floor_runs, k) for k in FIGURES}
    streamed = {k: _median(stream_runs, k) for k in (*FIGURES, "first_delta")}
    return {
        "router": strategy,
        "runs": runs,
        "calls": [f"{c['api']} {c['model_id']}" for c in calls],
        "handler": handler,
        "floor": floor,
        "ratio": handler["total"] / floor["total"],
        "cpu_ratio": handler["cpu"] / floor["cpu"],
        "stream": streamed,
        "stream_ratio": streamed["total"] / handler["total"],
        "stream_cpu_ratio": streamed["cpu"] / handler["cpu"],
        "handler_runs": [r["total"] for r in handler_runs],
        "floor_runs": [r["total"] for r in floor_runs],
        # modules compiled from source at start (no usable .pyc), the most of any run
        "compiled": {
            "handler": max(r["compiled"] for r in handler_runs),
            "floor": max(r["compiled"] for r in floor_runs),
        },
        "request_log_bytes": max(r["request_log_bytes"] for r in handler_runs),
        "stack_variables": sorted(stack_env.variables),
        "traced": stack_env.traced,
    }


def ensure_cold_index(config: RoutesConfig, standin_url: str, say: Callable[[str], None]) -> Path:
    """The semantic index of the stand-in's embeddings, built once under .build/benchmark/."""
    from build_index import STANDIN_SOURCE, ensure_index

    previous = os.environ.get("BEDROCK_ENDPOINT_URL")
    os.environ["BEDROCK_ENDPOINT_URL"] = standin_url
    try:
        ensure_index(config, INDEX_DIR, STANDIN_SOURCE, REGION, say)
    finally:
        if previous is None:
            os.environ.pop("BEDROCK_ENDPOINT_URL", None)
        else:
            os.environ["BEDROCK_ENDPOINT_URL"] = previous
    return INDEX_DIR


def run_cold_start(
    routers: Sequence[str] | None = None,
    runs: int = DEFAULT_RUNS,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The cold-start table's figures for ``routers`` (default: every router), each handler with
    the environment its stack gives it (:mod:`benchmarks.stack_env`)."""
    from bedrock_standin import StandInServer

    say = say or (lambda _message: None)
    config = load_routes()
    routers = list(routers or STRATEGIES)
    rows = []
    asset = function_asset(config)
    sdk = runtime_layer_sdk()
    say("synthesizing the stacks for the functions' environment")
    templates = synthesized_templates(config.preset)
    with StandInServer() as standin, contextlib.ExitStack() as stack:
        from backends import local_dynamodb

        local_dynamodb(stack, own_process=True)  # DynamoDB apart from the Bedrock stand-in
        index_dir = ensure_cold_index(config, standin.url, lambda _m: None)
        for strategy in routers:
            stack_env = router_environment(strategy, templates, stack)
            say(f"cold start: {strategy}, {runs} handler and {runs} floor processes")
            row = measure_router(
                strategy, standin, index_dir, config, runs, stack_env, asset,
                cache_emptier(stack, stack_env), sdk,
            )
            row["table_items"] = table_items(stack, stack_env)
            rows.append(row)
    return {"runs": runs, "target_ratio": TARGET_RATIO, "rows": rows}


def cache_emptier(
    stack: contextlib.ExitStack, stack_env: StackEnvironment
) -> Callable[[], None]:
    """A function that deletes every item of the response cache's table (none: a no-op).

    Every measured process asks the same question, and the table outlives the processes: without
    this, each handler after the warm-up would answer from the cache and skip the answer call
    that the floor makes."""
    from backends import local_dynamodb
    from llm_router.config.cache import CACHE_TABLE_ENV

    table = stack_env.variables.get(CACHE_TABLE_ENV)
    started = local_dynamodb(stack)
    if not table or started is None:
        return lambda: None
    client, _ = started
    schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
    keys = [k["AttributeName"] for k in schema]

    def empty() -> None:
        for page in client.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                client.delete_item(TableName=table, Key={k: item[k] for k in keys})

    return empty


def table_items(stack: contextlib.ExitStack, stack_env: StackEnvironment) -> dict[str, int]:
    """Items in each table the function's variables name: proof that it wrote where it ships."""
    from backends import local_dynamodb

    started = local_dynamodb(stack)
    if started is None or not stack_env.tables:
        return {}
    client, _ = started
    return {t: client.scan(TableName=t, Select="COUNT")["Count"] for t in stack_env.tables}


def format_cold_start(result: dict[str, Any]) -> str:
    headers = [
        "router",
        "handler init",
        "first request",
        "handler total",
        "floor init",
        "first request",
        "floor total",
        "ratio",
        f"<= {TARGET_RATIO}x",
        "CPU ratio",
    ]
    rows = []
    for row in result["rows"]:
        h, f = row["handler"], row["floor"]
        rows.append(
            [
                row["router"],
                f"{h['init']:.3f}",
                f"{h['first_request']:.3f}",
                f"{h['total']:.3f}",
                f"{f['init']:.3f}",
                f"{f['first_request']:.3f}",
                f"{f['total']:.3f}",
                f"{row['ratio']:.2f}x",
                "yes" if row["ratio"] <= TARGET_RATIO else "NO",
                f"{row['cpu_ratio']:.2f}x",
            ]
        )
    lines = [
        f"Cold start (s, median of {result['runs']} fresh processes each; from the first line of "
        "the process to the first response, interpreter start-up excluded)"
    ]
    lines += table(headers, rows, left=1)
    lines.append(
        "  CPU ratio: the processes' CPU seconds (interpreter start-up included), less sensitive "
        "to other load on the machine than wall time"
    )
    compiled = {
        side: max(r["compiled"][side] for r in result["rows"]) for side in ("handler", "floor")
    }
    lines.append(
        f"  modules compiled from source at start (no usable .pyc): handler {compiled['handler']}, "
        f"floor {compiled['floor']}"
    )
    if all("stream" in row for row in result["rows"]):
        lines.append("")
        lines.append(
            "Streaming function (POST /ask/stream) beside /ask's handler (s, medians of the same "
            "runs; first delta counted from the end of init)"
        )
        stream_rows = [
            [
                row["router"],
                f"{row['stream']['init']:.3f}",
                f"{row['stream']['first_delta']:.3f}",
                f"{row['stream']['total']:.3f}",
                f"{row['handler']['total']:.3f}",
                f"{row['stream_ratio']:.2f}x",
                f"{row['stream_cpu_ratio']:.2f}x",
            ]
            for row in result["rows"]
        ]
        lines += table(
            ["router", "stream init", "first delta", "stream total", "/ask total",
             "stream / ask", "CPU ratio"],
            stream_rows, left=1,
        )
    for row in result["rows"]:
        lines.append(f"  {row['router']}: floor replays {', '.join(row['calls'])}")
    for row in result["rows"]:
        items = ", ".join(f"{t} {n} items" for t, n in row.get("table_items", {}).items())
        lines.append(
            f"  {row['router']}: handler with its stack's variables "
            f"({', '.join(row['stack_variables'])}), "
            f"{'traced' if row['traced'] else 'untraced'}; "
            f"{row['request_log_bytes']:,} bytes of audit line and EMF metrics a request"
            + (f"; DynamoDB stand-in (moto): {items}" if items else "")
        )
    return "\n".join(lines) + "\n"
