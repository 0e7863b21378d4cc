"""The CDK templates of a routes file, synthesized once per content and kept under .build/local/.

A synth without bundling takes 10-20 s (jsii and the CDK's Node.js process), too long for every
start of the local run; the templates only change with the routes file, the preset or the code
that builds the stacks, so they are cached under a hash of exactly those.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from layers import REPO_ROOT

CACHE_DIR = REPO_ROOT / ".build" / "local" / "templates"
# What the templates are made of, besides the routes file: the stacks, the CDK app's context and
# the core the stacks import to read the configuration.
_SOURCES = ("stacks", "layers", "lambdas/llm_router", "cdk.json", "app.py")


class SynthUnavailable(Exception):
    """The CDK cannot synthesize here (no Node.js, or the synth failed); says why."""


def content_key(routes_path: Path, preset: str | None) -> str:
    digest = hashlib.sha256(f"preset {preset}\0".encode())
    digest.update(routes_path.read_bytes())
    for source in _SOURCES:
        path = REPO_ROOT / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or "build" in file.parts:
                continue
            digest.update(str(file.relative_to(REPO_ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:32]


def synthesized_templates(routes_path: Path, preset: str | None = None) -> dict[str, Any]:
    """Stack name -> template for ``routes_path`` (and ``preset``), from the cache or a synth."""
    cached = CACHE_DIR / f"{content_key(routes_path, preset)}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=CACHE_DIR, suffix=".tmp", delete=False) as out:
        partial = Path(out.name)
    command = [sys.executable, "-m", "stacks.synthesis", "--out", str(partial)]
    if preset:
        command += ["--preset", preset]
    env = {
        **os.environ,
        "ROUTES_FILE": str(routes_path),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "lambdas")]),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        # The synth reads no account; fake credentials keep the CDK from looking for real ones.
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        partial.unlink(missing_ok=True)
        raise SynthUnavailable(f"the CDK synth did not run: {exc}") from exc
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SynthUnavailable(f"the CDK synth failed: {tail}")
    partial.replace(cached)
    return json.loads(cached.read_text())
