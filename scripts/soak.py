"""Memory soak of the local run: many concurrent clients for a while, the server's RSS sampled.

    python scripts/soak.py [--clients 50] [--duration 60] [--warmup 15] [--tolerance 0.10]

Starts ``scripts/local.py`` (the offline stand-in, limits raised so nothing is throttled) in its
own process, so the resident set size measured is the server's alone (the local API, the three
routers and the stand-in, as a local run has them). ``--clients`` threads each keep one HTTP
connection and ask questions back to back across the routers for ``--duration`` seconds; the
server's RSS is read every ``--interval`` seconds. After ``--warmup`` seconds (caches, the index,
the classifier's label embeddings, thread stacks) the RSS must stay within ``--tolerance`` of its
value at the end of the warm-up: the exit code is 0 when it does, 1 when it grows beyond that.
RSS comes from ``/proc/<pid>/status`` (Linux) — a few lines, so no new dependency for one number.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cli

from layers import REPO_ROOT

LOCAL_PY = Path(__file__).with_name("local.py")
API_KEY = "soak-key"
QUESTIONS = (
    ("semantic", "What year did World War II end?"),
    ("llm-assisted", "Solve the quadratic equation: 2x^2 - 5x + 3 = 0"),
    ("hybrid", "Who was the first president of the United States?"),
    ("semantic", "What is 15% of 240?"),
    ("llm-assisted", "What's a good recipe for pasta carbonara?"),
    ("hybrid", "Explain the causes of the French Revolution"),
)
READY = re.compile(r"ready: serving on (http://\S+)")


def rss_mib(pid: int) -> float:
    """The resident set size of a process, in MiB (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    if match is None:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return int(match.group(1)) / 1024


@dataclass
class Verdict:
    baseline_mib: float
    peak_mib: float
    last_mib: float
    growth: float  # (peak - baseline) / baseline
    flat: bool


def assess(samples: list[tuple[float, float]], warmup: float, tolerance: float) -> Verdict:
    """Whether RSS (``(seconds, MiB)`` samples) stays within ``tolerance`` after the warm-up."""
    after = [mib for t, mib in samples if t >= warmup]
    if not after:
        raise ValueError("no sample after the warm-up: run longer or warm up shorter")
    baseline = after[0]
    peak = max(after)
    growth = (peak - baseline) / baseline
    return Verdict(baseline, peak, after[-1], growth, growth <= tolerance)


@dataclass
class Load:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client_loop(host: str, port: int, offset: int, stop: threading.Event, load: Load) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    n = offset
    while not stop.is_set():
        router, question = QUESTIONS[n % len(QUESTIONS)]
        n += 1
        body = json.dumps({"question": question})
        started = time.perf_counter()
        try:
            conn.request("POST", f"/{router}/ask", body=body,
                         headers={"x-api-key": API_KEY, "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            with load.lock:
                load.errors[type(exc).__name__] += 1
            continue
        with load.lock:
            load.statuses[status] += 1
            load.latencies.append(time.perf_counter() - started)
    conn.close()


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def start_server(ready_timeout: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(LOCAL_PY), "--port", "0", "--api-key", API_KEY,
         "--rate-limit", "1000000", "--burst-limit", "1000000", "--quota", "0"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + ready_timeout
    for line in process.stdout:
        match = READY.search(line)
        if match:
            # Keep draining: the server logs a line per request and must never block on the pipe.
            threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
            return process, match.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError("scripts/local.py did not become ready")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    process, url = start_server(args.ready_timeout)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    samples: list[tuple[float, float]] = []
    load = Load()
    stop = threading.Event()
    try:
        threads = [
            threading.Thread(target=client_loop, args=(host, int(port), i, stop, load), daemon=True)
            for i in range(args.clients)
        ]
        started = time.monotonic()
        samples.append((0.0, rss_mib(process.pid)))
        for thread in threads:
            thread.start()
        while (elapsed := time.monotonic() - started) < args.duration:
            time.sleep(args.interval)
            samples.append((round(time.monotonic() - started, 2), rss_mib(process.pid)))
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    verdict = assess(samples, args.warmup, args.tolerance)
    total = sum(load.statuses.values())
    return {
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "statuses": dict(sorted(load.statuses.items())),
        "client_errors": dict(load.errors),
        "latency_p50_ms": round(percentile(load.latencies, 50) * 1000, 1),
        "latency_p99_ms": round(percentile(load.latencies, 99) * 1000, 1),
        "rss_start_mib": round(samples[0][1], 1),
        "rss_after_warmup_mib": round(verdict.baseline_mib, 1),
        "rss_peak_after_warmup_mib": round(verdict.peak_mib, 1),
        "rss_end_mib": round(verdict.last_mib, 1),
        "growth_after_warmup": round(verdict.growth, 4),
        "tolerance": args.tolerance,
        "flat": verdict.flat,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Memory soak of the local run.")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before the baseline")
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed RSS growth")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument(
        "--ready-timeout", type=float, default=300.0,
        help="seconds to wait for the local run to start",
    )
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").exists():
        print("error: soak.py reads RSS from /proc (Linux)", file=sys.stderr)
        return 2
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['clients']} clients, {result['duration_s']} s: {result['requests']} "
            f"requests ({result['requests_per_s']}/s), statuses {result['statuses']}, "
            f"client errors {result['client_errors']}, latency p50 {result['latency_p50_ms']} ms "
            f"p99 {result['latency_p99_ms']} ms"
        )
        print(
            f"RSS: {result['rss_start_mib']} MiB at start, {result['rss_after_warmup_mib']} MiB "
            f"after {args.warmup:g} s warm-up, peak {result['rss_peak_after_warmup_mib']} MiB, "
            f"end {result['rss_end_mib']} MiB: growth {result['growth_after_warmup']:.1%} "
            f"({'flat' if result['flat'] else 'NOT flat'}, tolerance {args.tolerance:.0%})"
        )
    return 0 if result["flat"] else 1


if __name__ == "__main__":
    cli.run(main)
