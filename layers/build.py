"""Build Lambda layers on the deployer's machine without Docker, cached by content.

Why pip instead of a build container: the layers hold only published wheels (and generated data),
so ``pip install --platform <manylinux tags> --python-version <runtime's> --only-binary=:all:``
fetches exactly the files Lambda will load, on any host OS and CPU, with no Docker daemon. What pip
cannot check is that it chose the right binaries, so every ELF file is verified afterwards against
the target CPU and every extension module's name against the target Python.

Why a content cache: a layer is a pure function of its pinned requirements, the target platform
and its generated contents. Builds live under ``.build/layers/`` keyed by a hash of those inputs,
so repeated synths neither reinstall nor need the network; the CDK asset is hard-linked from the
cache. Packages and assembled layers are cached separately, so changing the reference prompts
re-embeds them without reinstalling faiss.

    python -m layers.build --requirements layers/runtime/requirements.txt \
        --runtime python3.12 --architecture arm64 --name runtime
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from layers.bytecode import (
    BytecodeError,
    Compiler,
    compile_tree,
    find_python,
    missing_compiler_note,
)

# Bump when the build procedure changes in a way that should invalidate every cached layer.
BUILDER_VERSION = "1"
# Lambda's limit for a function's code plus all its layers, unzipped: 250 MB.
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
CACHE_ENV = "LAYER_CACHE_DIR"
DEFAULT_CACHE_ROOT = Path(__file__).resolve().parent.parent / ".build" / "layers"
MANIFEST_DIR = "layer-manifests"  # /opt/layer-manifests/<name>.json: one file per layer, no clash

_LAMBDA_MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
_ELF_MACHINES = {"aarch64": 183, "x86_64": 62}  # ELF e_machine: EM_AARCH64, EM_X86_64
# glibc of the Lambda base image per Python runtime: AL2 (2.26) up to 3.11, AL2023 (2.34) after.
_AL2_GLIBC = (2, 26)
_AL2023_GLIBC = (2, 34)
_AL2_PYTHONS = {"3.8", "3.9", "3.10", "3.11"}
_OLDEST_MANYLINUX_MINOR = 17  # manylinux_2_17 == manylinux2014, the oldest tag worth accepting
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==([A-Za-z0-9.+!_-]+)$")
_EXT_TAG = re.compile(r"\.cpython-(\d+)-([A-Za-z0-9_]+-linux-gnu)\.so$")

Progress = Callable[[str], None]
PipRunner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class LayerBuildError(RuntimeError):
    """A layer could not be built or failed verification; the message says what to change."""


def python_version_of(runtime_name: str) -> str:
    """'python3.12' -> '3.12': the Python whose wheels a Lambda runtime can import."""
    match = re.fullmatch(r"python(3)\.(\d+)", runtime_name)
    if not match:
        raise LayerBuildError(f"{runtime_name!r} is not a Lambda Python runtime (python3.N)")
    return f"{match.group(1)}.{match.group(2)}"


def machine_of(architecture_name: str) -> str:
    """Lambda architecture name ('arm64', 'x86_64') -> the machine name in wheel tags."""
    try:
        return _LAMBDA_MACHINES[architecture_name]
    except KeyError:
        raise LayerBuildError(
            f"unknown Lambda architecture {architecture_name!r}; use one of "
            f"{', '.join(_LAMBDA_MACHINES)}"
        ) from None


@dataclass(frozen=True)
class Platform:
    """The Lambda platform a layer is built for: CPython version, CPU and glibc ceiling."""

    python_version: str  # "3.12"
    machine: str  # "aarch64" | "x86_64"
    glibc: tuple[int, int]

    @classmethod
    def for_lambda(cls, runtime_name: str, architecture_name: str) -> Platform:
        """Derive the platform from a Lambda runtime and architecture name (one source of truth)."""
        version = python_version_of(runtime_name)
        glibc = _AL2_GLIBC if version in _AL2_PYTHONS else _AL2023_GLIBC
        return cls(version, machine_of(architecture_name), glibc)

    @property
    def nodot(self) -> str:
        return self.python_version.replace(".", "")

    @property
    def extension_tag(self) -> str:
        """Suffix of version-specific extension modules, e.g. cpython-312-aarch64-linux-gnu."""
        return f"cpython-{self.nodot}-{self.machine}-linux-gnu"

    def pip_platforms(self) -> tuple[str, ...]:
        """Every manylinux tag the target glibc can load, newest first (pip won't expand them)."""
        major, newest = self.glibc
        tags = [
            f"manylinux_{major}_{minor}_{self.machine}"
            for minor in range(newest, _OLDEST_MANYLINUX_MINOR - 1, -1)
        ]
        tags.append(f"manylinux2014_{self.machine}")
        return tuple(tags)

    def pip_args(self) -> list[str]:
        args = ["--implementation", "cp", "--python-version", self.python_version]
        for tag in self.pip_platforms():
            args += ["--platform", tag]
        return args + ["--only-binary=:all:"]

    def describe(self) -> dict[str, Any]:
        return {
            "python_version": self.python_version,
            "machine": self.machine,
            "glibc": ".".join(map(str, self.glibc)),
        }

    def __str__(self) -> str:
        glibc = ".".join(map(str, self.glibc))
        return f"CPython {self.python_version} on {self.machine} Linux (glibc {glibc})"


class LayerContent(Protocol):
    """Generated files a layer carries besides pip packages (e.g. the semantic index)."""

    def cache_inputs(self) -> Mapping[str, Any]:
        """Everything the generated files depend on, JSON-serialisable: part of the cache key."""
        ...

    def write(self, layer_root: Path, progress: Progress) -> Mapping[str, Any]:
        """Write the files under ``layer_root``; return what the layer manifest should record."""
        ...


@dataclass(frozen=True)
class LayerSpec:
    name: str
    requirements: Path
    contents: tuple[LayerContent, ...] = ()


@dataclass(frozen=True)
class BuiltLayer:
    name: str
    key: str
    path: Path  # the directory to ship: its contents become /opt in Lambda
    unzipped_bytes: int
    manifest: Mapping[str, Any] = field(repr=False)


def read_pins(requirements: Path) -> tuple[str, ...]:
    """The requirement lines, which must all be exact pins: the cache key trusts them."""
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayerBuildError(f"cannot read layer requirements {requirements}: {exc}") from exc
    pins: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _PIN.match(line):
            raise LayerBuildError(
                f"{requirements}:{number}: {line!r} is not an exact pin (name==version); layer "
                "builds are cached by their requirements, so every requirement must be pinned"
            )
        pins.append(line)
    if not pins:
        raise LayerBuildError(f"{requirements} lists no requirements")
    return tuple(sorted(pins, key=str.lower))


def digest(inputs: Mapping[str, Any]) -> str:
    payload = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def default_cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_ROOT)


def run_pip(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False
    )


def _stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class LayerBuilder:
    """Builds layers into a content-addressed cache; ``build`` is a no-op when the key is there."""

    def __init__(
        self,
        cache_root: Path | None = None,
        pip: PipRunner | None = None,
        progress: Progress | None = None,
        compiler: Callable[[str], Compiler | None] = find_python,
    ) -> None:
        """``compiler`` finds the interpreter that writes a layer's bytecode for the target's
        Python (:mod:`layers.bytecode`); one that returns None ships sources only."""
        self.cache_root = Path(cache_root) if cache_root else default_cache_root()
        self._pip = pip or run_pip
        self._say = progress or _stderr_progress
        self._compiler = compiler

    # -- keys -------------------------------------------------------------------------------------

    def packages_key(self, requirements: Path, platform: Platform) -> str:
        return digest(
            {
                "builder": BUILDER_VERSION,
                "kind": "packages",
                "pins": read_pins(requirements),
                "platform": platform.describe(),
                "pip_platforms": platform.pip_platforms(),
            }
        )

    def key(self, spec: LayerSpec, platform: Platform) -> str:
        """The cache key of the finished layer; cheap (nothing is built)."""
        compiler = self._compiler(platform.python_version)
        return digest(
            {
                "builder": BUILDER_VERSION,
                "kind": "layer",
                "name": spec.name,
                "packages": self.packages_key(spec.requirements, platform),
                "contents": [dict(c.cache_inputs()) for c in spec.contents],
                "bytecode": compiler.magic if compiler else None,
            }
        )

    def cached(self, spec: LayerSpec, platform: Platform) -> BuiltLayer | None:
        """The finished layer if the cache has it, without building anything."""
        return _read_built(self.cache_root / "assembled" / self.key(spec, platform), spec.name)

    # -- builds -----------------------------------------------------------------------------------

    def build(self, spec: LayerSpec, platform: Platform) -> BuiltLayer:
        key = self.key(spec, platform)
        final = self.cache_root / "assembled" / key
        built = _read_built(final, spec.name)
        if built:
            self._say(
                f"layer {spec.name}: cached build {key[:12]} ({mb(built.unzipped_bytes)} unzipped)"
            )
            return built
        packages_dir, packages = self.install_packages(spec.requirements, platform)
        scratch = _scratch_dir(final)
        try:
            layer_root = scratch / "layer"
            link_tree(packages_dir / "python", layer_root / "python")
            contents = [dict(c.write(layer_root, self._say)) for c in spec.contents]
            compiler = self._compiler(platform.python_version)
            if compiler is None:
                self._say(f"layer {spec.name}: {missing_compiler_note(platform.python_version)}")
                bytecode = None
            else:
                # /opt is read-only in Lambda: without these, every cold start compiles.
                try:
                    sources = compile_tree(compiler, layer_root, "/opt")
                except BytecodeError as exc:
                    raise LayerBuildError(str(exc)) from exc
                bytecode = {"python": compiler.version, "magic": compiler.magic,
                            "sources": sources, "invalidation_mode": "unchecked-hash"}
            manifest = {
                "layer": spec.name,
                "cache_key": key,
                "builder_version": BUILDER_VERSION,
                "platform": platform.describe(),
                "lambda_architecture": _lambda_architecture(platform.machine),
                "pip_platforms": list(platform.pip_platforms()),
                "requirements": list(read_pins(spec.requirements)),
                "packages": packages,
                "contents": contents,
                "bytecode": bytecode,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            # The manifest ships in the layer, so its own size is counted too.
            manifest_path = layer_root / MANIFEST_DIR / f"{spec.name}.json"
            manifest_path.parent.mkdir(parents=True, exist_ok=True)
            manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            manifest["unzipped_bytes"] = tree_size(layer_root)
            manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            size = manifest["unzipped_bytes"] = tree_size(layer_root)  # exact, manifest included
            check_size({f"layer {spec.name}": size})
            (scratch / "build.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            _publish(scratch, final, "build.json")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._say(f"layer {spec.name}: built {key[:12]} ({mb(size)} unzipped) in {final}")
        built = _read_built(final, spec.name)
        assert built is not None
        return built

    def install_packages(
        self, requirements: Path, platform: Platform
    ) -> tuple[Path, dict[str, str]]:
        """pip-install the pinned requirements for ``platform`` (cached): (dir, versions)."""
        key = self.packages_key(requirements, platform)
        final = self.cache_root / "packages" / key
        record = final / "packages.json"
        if record.is_file():
            return final, json.loads(record.read_text(encoding="utf-8"))
        pins = read_pins(requirements)
        scratch = _scratch_dir(final)
        try:
            pinned = scratch / "requirements.txt"
            pinned.write_text("\n".join(pins) + "\n", encoding="utf-8")
            target = scratch / "python"
            self._say(f"pip: installing {', '.join(pins)} for {platform}")
            result = self._pip(
                [
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--no-compile",  # host-compiled .pyc would be for the wrong Python
                    "--target",
                    str(target),
                    *platform.pip_args(),
                    "-r",
                    str(pinned),
                ]
            )
            if result.returncode != 0:
                raise LayerBuildError(_pip_failure(pins, platform, result))
            prune(target)
            problems = binary_problems(target, platform)
            if problems:
                raise LayerBuildError(
                    f"pip installed binaries that do not fit {platform}:\n  "
                    + "\n  ".join(problems[:20])
                )
            packages = installed_versions(target)
            record_tmp = scratch / "packages.json"
            record_tmp.write_text(json.dumps(packages, indent=2, sort_keys=True), encoding="utf-8")
            _publish(scratch, final, record.name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return final, json.loads(record.read_text(encoding="utf-8"))


# -- verification -------------------------------------------------------------------------------


def elf_machine(path: Path) -> int | None:
    """ELF e_machine of a little-endian 64-bit ELF file; None when it is not one."""
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    if header[4] != 2 or header[5] != 1:  # EI_CLASS 64-bit, EI_DATA little-endian
        return -1
    return int.from_bytes(header[18:20], "little")


def binary_problems(root: Path, platform: Platform) -> list[str]:
    """Every shared object whose CPU or CPython tag does not match ``platform``."""
    expected_machine = _ELF_MACHINES[platform.machine]
    problems: list[str] = []
    for path in sorted(root.rglob("*.so*")):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(root).as_posix()
        tag = _EXT_TAG.search(path.name)
        found = f"cpython-{tag.group(1)}-{tag.group(2)}" if tag else None
        if found and found != platform.extension_tag:
            problems.append(f"{rel}: built for {found}, expected {platform.extension_tag}")
            continue
        machine = elf_machine(path)
        if machine is not None and machine != expected_machine:
            problems.append(
                f"{rel}: ELF machine {machine}, expected {expected_machine} ({platform.machine})"
            )
    return problems


def prune(target: Path) -> None:
    """Drop what Lambda never uses: console scripts (host shebangs) and bytecode caches (the
    host's; the layer gets the runtime Python's at assembly, :mod:`layers.bytecode`)."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def installed_versions(target: Path) -> dict[str, str]:
    versions: dict[str, str] = {}
    for info in sorted(target.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        versions[name.lower().replace("_", "-")] = version
    return versions


# -- files ----------------------------------------------------------------------------------------


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def check_size(parts: Mapping[str, int], limit: int | None = None) -> int:
    """Sum the unzipped sizes; fail above Lambda's limit, naming each part's share."""
    limit = LAMBDA_UNZIPPED_LIMIT_BYTES if limit is None else limit
    total = sum(parts.values())
    if total > limit:
        detail = ", ".join(f"{name} {mb(size)}" for name, size in parts.items())
        raise LayerBuildError(
            f"unzipped size {mb(total)} exceeds Lambda's {mb(limit)} limit for code plus layers "
            f"({detail})"
        )
    return total


def mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def link_tree(source: Path, destination: Path) -> None:
    """Copy a tree by hard-linking files (instant, no extra disk); copies across filesystems."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, destination, copy_function=_link_or_copy, dirs_exist_ok=True)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _scratch_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))


def _publish(scratch: Path, final: Path, marker: str) -> None:
    """Move a finished build into place atomically; a concurrent identical build may have won."""
    if (final / marker).is_file():
        return  # identical inputs, identical result: keep the one already there
    if final.exists():
        shutil.rmtree(final)  # an incomplete leftover
    try:
        scratch.rename(final)
    except OSError:
        if not (final / marker).is_file():
            raise


def _read_built(final: Path, name: str) -> BuiltLayer | None:
    record = final / "build.json"
    if not record.is_file():
        return None
    manifest = json.loads(record.read_text(encoding="utf-8"))
    return BuiltLayer(
        name=name,
        key=manifest["cache_key"],
        path=final / "layer",
        unzipped_bytes=int(manifest["unzipped_bytes"]),
        manifest=manifest,
    )


def _lambda_architecture(machine: str) -> str:
    return {v: k for k, v in _LAMBDA_MACHINES.items()}[machine]


def _pip_failure(
    pins: Iterable[str], platform: Platform, result: subprocess.CompletedProcess[str]
) -> str:
    output = (result.stderr or "") + (result.stdout or "")
    tail = "\n    ".join(output.strip().splitlines()[-8:])
    if "No matching distribution" in output or "Could not find a version" in output:
        return (
            f"pip found no wheel for {', '.join(pins)} on {platform} "
            f"(platform tags {platform.pip_platforms()[0]} … manylinux2014_{platform.machine}). "
            "Pick versions that publish manylinux wheels for this Python and CPU (see the release "
            "files on pypi.org), or change the runtime/architecture. pip said:\n    " + tail
        )
    if "NewConnectionError" in output or "Failed to establish" in output or "ProxyError" in output:
        return (
            "pip could not reach the package index; the first build of a layer needs network "
            "access to PyPI (later builds come from the cache). pip said:\n    " + tail
        )
    return f"pip install failed (exit {result.returncode}):\n    " + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a Lambda layer from pinned requirements.")
    parser.add_argument("--requirements", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--architecture", default="arm64", choices=sorted(_LAMBDA_MACHINES))
    parser.add_argument("--out", type=Path, help="also copy the layer here")
    args = parser.parse_args(argv)
    try:
        platform = Platform.for_lambda(args.runtime, args.architecture)
        built = LayerBuilder().build(LayerSpec(args.name, args.requirements), platform)
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out:
        link_tree(built.path, args.out)
    print(f"{built.path} ({mb(built.unzipped_bytes)} unzipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
