"""The router function's code asset, built without the CDK: ``llm_router/**``, ``routes.json`` and
the bytecode of the runtime's Python.

In Lambda the files become ``/var/task/llm_router`` and ``/var/task/routes.json``, where the
handler and ``load_routes`` look. The sources are copied without the checkout's bytecode caches
and hidden files; then, when an interpreter of the runtime's version is found
(:mod:`layers.bytecode`), every module gets an unchecked-hash ``.pyc`` beside it, since
``/var/task`` is read-only and would otherwise be compiled at every cold start.

``routes.compiled.json`` (:func:`compile_routes`) is what the function reads instead of
routes.json: validated here, without the reference prompts it never reads (the LLM classifier's
few examples stay), with their hash precomputed (the semantic index's manifest is checked against
it at every cold start). 8 KB instead of 75 KB: reading and hashing took 1.3-2 ms, now 0.3 ms
(measured here, in a warm process; a cold one pays more for the first parse).

Built once per content key under ``.build/function/`` (git-ignored), like the layers, so the size
is known before the CDK stages the asset and a repeated synth copies nothing; the CDK hard-links
the finished directory (``stacks/bundling.py``). ``scripts/benchmarks/cold_start.py`` measures the
handler from an asset built by the same function.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layers import REPO_ROOT, ensure_import_paths
from layers.bytecode import Compiler, compile_tree, find_python

CODE_PACKAGE_DIR = REPO_ROOT / "lambdas" / "llm_router"
DEFAULT_CACHE_ROOT = REPO_ROOT / ".build" / "function"
LAMBDA_TASK_ROOT = "/var/task"
_RECORD = "asset.json"  # written last: the cached directory is complete
COMPILED_ROUTES_FILE = "routes.compiled.json"  # llm_router.config.COMPILED_ROUTES_FILE


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


def compile_routes(routes_file: Path) -> dict[str, Any]:
    """``routes.compiled.json``'s content: routes.json validated, its reference prompts cut to
    the LLM classifier's few-shot examples, and the hash of all of them."""
    ensure_import_paths()
    from llm_router.config import COMPILED_FORMAT, parse_routes
    from llm_router.decision.classifiers.llm import EXAMPLES_PER_LABEL

    text = routes_file.read_text(encoding="utf-8")
    raw = json.loads(text)
    config = parse_routes(raw, source_path=routes_file)  # refuses a broken file here
    trimmed = copy.deepcopy(raw)
    sections = [*trimmed["categories"].values(), trimmed.get("out_of_scope") or {}]
    for section in sections:
        if "reference_prompts" in section:
            section["reference_prompts"] = section["reference_prompts"][:EXAMPLES_PER_LABEL]
    # Resolved here: "auto" counts the off-topic prompts, which the compiled file no longer has.
    trimmed.setdefault("out_of_scope", {})["topic_bank"] = config.out_of_scope.topic_bank
    return {
        "format": COMPILED_FORMAT,
        "source_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "reference_prompts_sha256": config.reference_prompts_hash(),
        "routes": trimmed,
    }


def files_key(files: Sequence[tuple[Path, str]], bytecode: Compiler | None = None) -> str:
    """Content hash of (asset path, bytes) pairs, the compiled configuration's format and the
    bytecode's magic number: changes with any file, rename, or the Python the ``.pyc`` files are
    made for."""
    ensure_import_paths()
    from llm_router.config import COMPILED_FORMAT

    digest = hashlib.sha256()
    digest.update(f"compiled routes {COMPILED_FORMAT}\0".encode())
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
            compiled = compile_routes(routes_file)
            (asset / COMPILED_ROUTES_FILE).write_text(
                json.dumps(compiled, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
            )
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
