"""The router function's code asset, built without the CDK: ``llm_router/**``, ``routes.json`` and
the bytecode of the runtime's Python.

In Lambda the files become ``/var/task/llm_router`` and ``/var/task/routes.json``, where the
handler and ``load_routes`` look. The sources are copied without the checkout's bytecode caches
and hidden files; then, when an interpreter of the runtime's version is found
(:mod:`layers.bytecode`), every module gets an unchecked-hash ``.pyc`` beside it, since
``/var/task`` is read-only and would otherwise be compiled at every cold start.

Built once per content key under ``.build/function/`` (git-ignored), like the layers, so the size
is known before the CDK stages the asset and a repeated synth copies nothing; the CDK hard-links
the finished directory (``stacks/bundling.py``). ``scripts/benchmarks/cold_start.py`` measures the
handler from an asset built by the same function.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from layers import REPO_ROOT
from layers.bytecode import Compiler, compile_tree, find_python

CODE_PACKAGE_DIR = REPO_ROOT / "lambdas" / "llm_router"
DEFAULT_CACHE_ROOT = REPO_ROOT / ".build" / "function"
LAMBDA_TASK_ROOT = "/var/task"
_RECORD = "asset.json"  # written last: the cached directory is complete


@dataclass(frozen=True)
class BuiltAsset:
    path: Path  # the directory whose contents become /var/task
    key: str  # content key: sources, their paths and the bytecode's Python
    unzipped_bytes: int
    bytecode: str | None  # the Python version the .pyc files are for; None when there are none


def function_files(
    routes_file: Path, package_dir: Path = CODE_PACKAGE_DIR
) -> list[tuple[Path, str]]:
    """(source, path in the asset) of the function: ``llm_router/**`` and ``routes.json``,
    without bytecode caches and hidden files."""
    files = sorted(
        p
        for p in package_dir.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix not in (".pyc", ".pyo")
        and not any(part.startswith(".") for part in p.relative_to(package_dir).parts)
    )
    pairs = [(p, f"{package_dir.name}/{p.relative_to(package_dir).as_posix()}") for p in files]
    return [*pairs, (routes_file, "routes.json")]


def files_key(files: Sequence[tuple[Path, str]], bytecode: Compiler | None = None) -> str:
    """Content hash of (asset path, bytes) pairs and the bytecode's magic number: changes with
    any file, rename, or the Python the ``.pyc`` files are made for."""
    digest = hashlib.sha256()
    for source, name in files:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    if bytecode is not None:
        digest.update(f"\0bytecode {bytecode.magic}".encode())
    return digest.hexdigest()


def copy_files(files: Sequence[tuple[Path, str]], out_dir: Path) -> None:
    for source, name in files:
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def build_function_asset(
    routes_file: Path,
    python_version: str,
    cache_root: Path = DEFAULT_CACHE_ROOT,
    compiler: Compiler | None | Callable[[str], Compiler | None] = find_python,
    package_dir: Path = CODE_PACKAGE_DIR,
    runtime_root: str = LAMBDA_TASK_ROOT,
) -> BuiltAsset:
    """The asset for a ``python_version`` runtime, built or taken from the cache.

    ``compiler``: the interpreter that writes the bytecode, or how to find one for the version
    (default: :func:`layers.bytecode.find_python`); None ships sources only.
    """
    found = compiler(python_version) if callable(compiler) else compiler
    files = function_files(routes_file, package_dir)
    key = files_key(files, found)
    final = cache_root / key
    record = final / _RECORD
    if not record.is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=final.parent))
        try:
            asset = scratch / "asset"
            copy_files(files, asset)
            if found is not None:
                compile_tree(found, asset, runtime_root)
            info = {
                "key": key,
                "bytecode": found.version if found else None,
                "unzipped_bytes": tree_bytes(asset),
            }
            (scratch / _RECORD).write_text(json.dumps(info), encoding="utf-8")
            if not record.is_file():  # a concurrent identical build may have won
                shutil.rmtree(final, ignore_errors=True)
                scratch.rename(final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    info = json.loads(record.read_text(encoding="utf-8"))
    return BuiltAsset(final / "asset", key, int(info["unzipped_bytes"]), info["bytecode"])
