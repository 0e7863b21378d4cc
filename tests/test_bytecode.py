"""Shipped bytecode: the function asset and every layer carry unchecked-hash ``.pyc`` files of the
runtime's Python, which Python loads without looking at the source, and which are absent (with
the asset still complete) when no interpreter of that version is found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest
from llm_router.config import RoutesConfig
from test_layers import ARM, FakePip, requirements  # noqa: F401  (a fixture)

from layers.build import LayerBuilder, LayerSpec
from layers.bytecode import Compiler, find_python
from layers.function_asset import build_function_asset

pytestmark = pytest.mark.generic  # holds for any valid routes file

HOST = Compiler(sys.executable, "{}.{}".format(*sys.version_info[:2]), MAGIC_NUMBER.hex())
TAG = sys.implementation.cache_tag  # cpython-311


def pyc_flags(path: Path) -> int:
    """The .pyc header's flags: 0b01 hash-based, 0b10 check the source (PEP 552)."""
    return int.from_bytes(path.read_bytes()[4:8], "little")


def test_the_asset_ships_unchecked_bytecode_for_every_module(
    tmp_path: Path, routes: RoutesConfig
) -> None:
    assert routes.source_path is not None
    built = build_function_asset(routes.source_path, HOST.version, tmp_path, compiler=HOST)
    assert built.bytecode == HOST.version
    sources = sorted((built.path / "llm_router").rglob("*.py"))
    assert sources and (built.path / "routes.json").is_file()
    for source in sources:
        cached = source.parent / "__pycache__" / f"{source.stem}.{TAG}.pyc"
        assert cached.is_file(), cached
        assert pyc_flags(cached) == 0b01  # hash-based, source never checked
    files = [p for p in built.path.rglob("*") if p.is_file()]
    assert built.unzipped_bytes == sum(p.stat().st_size for p in files)
    again = build_function_asset(routes.source_path, HOST.version, tmp_path, compiler=HOST)
    assert again == built  # the content-keyed cache


def test_python_loads_the_shipped_bytecode_without_reading_the_source(
    tmp_path: Path, routes: RoutesConfig
) -> None:
    """An unchecked .pyc is used even when the source beside it differs (as a zip's file times
    do): edit a module after the build, and the import still gets the built code."""
    assert routes.source_path is not None
    built = build_function_asset(routes.source_path, HOST.version, tmp_path, compiler=HOST)
    pricing = built.path / "llm_router" / "governance" / "pricing.py"
    pricing.write_text("raise RuntimeError('the source was compiled, not the .pyc used')\n")
    module = "llm_router.governance.pricing"
    code = f"import {module}, sys; assert {module!r} in sys.modules"
    env = {**os.environ, "PYTHONPATH": str(built.path), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_without_an_interpreter_of_the_version_the_asset_ships_sources(
    tmp_path: Path, routes: RoutesConfig
) -> None:
    assert routes.source_path is not None
    built = build_function_asset(routes.source_path, "3.12", tmp_path, compiler=lambda _v: None)
    assert built.bytecode is None
    assert not list(built.path.rglob("__pycache__"))
    with_pyc = build_function_asset(routes.source_path, HOST.version, tmp_path, compiler=HOST)
    assert with_pyc.key != built.key


def test_a_layer_ships_the_runtime_pythons_bytecode(
    tmp_path: Path, requirements: Path  # noqa: F811  (the fixture)
) -> None:
    compiler = find_python(ARM.python_version)
    if compiler is None:
        pytest.skip(f"no Python {ARM.python_version} on this machine to write its bytecode")
    quiet = {"pip": FakePip(), "progress": lambda _: None}
    built = LayerBuilder(tmp_path / "a", **quiet).build(LayerSpec("demo", requirements), ARM)
    cached = built.path / "python" / "demo" / "__pycache__" / "__init__.cpython-312.pyc"
    assert cached.is_file() and pyc_flags(cached) == 0b01
    manifest = json.loads((built.path / "layer-manifests" / "demo.json").read_text())
    assert manifest["bytecode"]["python"] == "3.12" and manifest["bytecode"]["sources"] == 1
    without = LayerBuilder(tmp_path / "b", compiler=lambda _v: None, **quiet)
    plain = without.build(LayerSpec("demo", requirements), ARM)
    assert not list(plain.path.rglob("__pycache__")) and plain.key != built.key
