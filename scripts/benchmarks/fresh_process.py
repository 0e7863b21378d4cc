"""One measurement in a fresh Python process: run it, time it, read its figures.

Both benchmarks that time a cold start (the scale benchmark's import split and ``--cold``'s
handler and floor) start a child process, wait for it, and read the figures it prints as one JSON
line last on its stdout; this is that step, once.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any


def run_fresh(
    command: Sequence[str], env: Mapping[str, str], timeout: float, what: str
) -> dict[str, Any]:
    """Run ``command`` with exactly ``env``; its last stdout line parsed as JSON, plus
    ``process``: the whole process's wall time (interpreter start-up included), and ``output``:
    the lines it printed before (a handler's log lines).

    Raises RuntimeError, naming ``what`` and the tail of its stderr, when it exits non-zero.
    """
    started = time.perf_counter()
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-3000:]}")
    lines = result.stdout.strip().splitlines()
    figures: dict[str, Any] = json.loads(lines[-1])
    figures["process"] = wall
    figures["output"] = [line for line in lines[:-1] if line]  # what the process printed before
    return figures
