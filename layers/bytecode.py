"""Bytecode for the Lambda runtime's Python, made on the deployer's machine and shipped.

``/var/task`` (the function asset) and ``/opt`` (the layers) are read-only in Lambda, so without
``__pycache__`` in them every cold start compiles each module it imports from source and throws
the result away: 141 ms, 112 ms and 195 ms for the llm-assisted, semantic and hybrid functions
(``compile()`` of each imported file, measured for the README's cold-start section). The function
asset and every layer therefore ship ``__pycache__/<module>.cpython-3NN.pyc`` files:

* made by an interpreter of the runtime's own minor version, since bytecode and its magic number
  change with every minor version (a 3.11 ``.pyc`` is ignored by 3.12). :func:`find_python` looks
  for one: ``LAMBDA_PYTHON`` (a path), else ``python3.N`` on PATH, else one installed by pyenv or
  uv. Without one the assets ship source only, and the build says what that costs;
* with ``--invalidation-mode unchecked-hash``: the import system loads such a file without
  looking at the source. A timestamp ``.pyc`` would be rejected whenever the unzipped source's
  modification time differs from the one recorded (zip keeps 2-second times), and a checked-hash
  one would read and hash every source file at import, which is what this is meant to save;
* with the paths they will have in Lambda (``/var/task/...``, ``/opt/python/...``) in tracebacks.

Run through ``python -m compileall`` (the standard library's tool) in the target interpreter; this
module only finds the interpreter and names what was used, for the assets' cache keys.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LAMBDA_PYTHON_ENV = "LAMBDA_PYTHON"
_PROBE = (
    "import sys, importlib.util; "
    "print('%d.%d' % sys.version_info[:2], importlib.util.MAGIC_NUMBER.hex())"
)


class BytecodeError(RuntimeError):
    """compileall failed on a file the asset ships."""


@dataclass(frozen=True)
class Compiler:
    """An interpreter of the target version and its bytecode magic number (for cache keys)."""

    python: str
    version: str
    magic: str


def _probe(python: str) -> tuple[str, str] | None:
    try:
        result = subprocess.run(
            [python, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    fields = result.stdout.split()
    return (fields[0], fields[1]) if result.returncode == 0 and len(fields) == 2 else None


def _candidates(version: str) -> list[str]:
    found = []
    explicit = os.environ.get(LAMBDA_PYTHON_ENV)
    if explicit:
        found.append(explicit)
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found += sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin",
                                           f"python{version}")), reverse=True)
    uv_root = os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.expanduser(
        "~/.local/share/uv/python"
    )
    found += sorted(glob.glob(os.path.join(uv_root, f"cpython-{version}.*", "bin",
                                           f"python{version}")), reverse=True)
    return found


@functools.cache
def find_python(version: str) -> Compiler | None:
    """An interpreter of Python ``version`` ("3.12") that can write the runtime's bytecode."""
    for python in _candidates(version):
        probed = _probe(python)
        if probed and probed[0] == version:
            return Compiler(python, version, probed[1])
    return None


def compile_tree(compiler: Compiler, root: Path, runtime_prefix: str) -> int:
    """Write unchecked-hash ``.pyc`` files beside every ``.py`` under ``root``, recording each
    file's path as ``runtime_prefix`` + its path below ``root``; the number of sources."""
    sources = sum(1 for _ in root.rglob("*.py"))
    if not sources:
        return 0
    result = subprocess.run(
        [
            compiler.python, "-I", "-m", "compileall", "-q", "-j", "0",
            "--invalidation-mode", "unchecked-hash",
            "-s", str(root), "-p", runtime_prefix, str(root),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BytecodeError(
            f"python{compiler.version} could not compile the sources under {root}:\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    return sources


def missing_compiler_note(version: str) -> str:
    return (
        f"no Python {version} interpreter found (set {LAMBDA_PYTHON_ENV}=/path/to/python{version}"
        f" or put python{version} on PATH): the assets ship without bytecode, so each cold start"
        " compiles the modules it imports (100-200 ms)"
    )
