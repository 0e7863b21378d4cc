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

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from layers.build import link_tree
from layers.bytecode import missing_compiler_note
from layers.function_asset import (  # noqa: F401  (re-exported: the asset's file list and key)
    CODE_PACKAGE_DIR,
    build_function_asset,
    copy_files,
    files_key,
    function_files,
)

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


def function_code(routes_file: Path, python_version: str) -> tuple[lambda_.Code, int]:
    """The router function's code asset for a ``python_version`` runtime (sources, routes.json
    and, when an interpreter of that version is found, their bytecode) and its unzipped size."""
    built = build_function_asset(routes_file, python_version)
    if built.bytecode is None:
        print(f"function asset: {missing_compiler_note(python_version)}", file=sys.stderr)
    code = local_asset(CODE_PACKAGE_DIR.parent, built.key, lambda out: link_tree(built.path, out))
    return code, built.unzipped_bytes
