"""Asset bundling in Python, without Docker: the function code and the layers.

CDK bundles an asset by calling ``ILocalBundling.try_bundle(output_dir, options)``; when that
returns True the Docker image is never pulled, so ``DockerImage.from_registry`` only names a
placeholder. The heavy work (pip, the index) happens before CDK asks, in plain Python, so its
errors reach the user as messages rather than through the jsii bridge; ``try_bundle`` then only
hard-links the finished directory into the cloud assembly.

Asset hashes are CUSTOM and equal to the content key of what is bundled, so a changed input
always yields a new asset, and CDK skips bundling when the staged asset already exists.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from layers import REPO_ROOT

CODE_PACKAGE_DIR = REPO_ROOT / "lambdas" / "llm_router"
_PLACEHOLDER_IMAGE = "local-bundling-only"  # never pulled: try_bundle always succeeds or raises


@jsii.implements(ILocalBundling)
class LocalBundling:
    """Bundles by calling a Python function that fills the output directory."""

    def __init__(self, fill: Callable[[Path], None]) -> None:
        self._fill = fill

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        self._fill(Path(output_dir))
        return True


def local_asset(source_dir: Path, content_key: str, fill: Callable[[Path], None]) -> lambda_.Code:
    """A Lambda code/layer asset whose files ``fill`` writes and whose hash is ``content_key``."""
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash=content_key,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(_PLACEHOLDER_IMAGE), local=LocalBundling(fill)
        ),
    )


def function_files(
    routes_file: Path, package_dir: Path = CODE_PACKAGE_DIR
) -> list[tuple[Path, str]]:
    """(source, path in the asset) of the function: ``llm_router/**`` and ``routes.json``.

    In Lambda they become /var/task/llm_router and /var/task/routes.json, which is where the
    handler and ``load_routes`` look. Bytecode caches and hidden files are left out.
    """
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


def files_key(files: Sequence[tuple[Path, str]]) -> str:
    """Content hash of (asset path, bytes) pairs: changes with any file or rename."""
    digest = hashlib.sha256()
    for source, name in files:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()


def copy_files(files: Sequence[tuple[Path, str]], out_dir: Path) -> None:
    for source, name in files:
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def function_code(routes_file: Path) -> tuple[lambda_.Code, int]:
    """The router function's code asset and its unzipped size in bytes."""
    files = function_files(routes_file)
    size = sum(source.stat().st_size for source, _ in files)
    code = local_asset(
        CODE_PACKAGE_DIR.parent, files_key(files), lambda out: copy_files(files, out)
    )
    return code, size
