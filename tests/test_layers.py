"""The Docker-free layer builder, and the real layers it builds for the routers.

Unit tests use a fake pip and a temporary cache. The ``real_*`` fixtures build the actual layers
from PyPI (once; cached under .build/layers across runs) with the index embedded by the offline
Bedrock stand-in.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_
from llm_router.config import RoutesConfig, parse_routes
from llm_router.decision.linear_head import HEAD_FILE
from llm_router.decision.semantic_index import TOPIC_DECISIONS_FILE, Manifest, manifest_problems

from layers import REPO_ROOT
from layers.aws_sdk import code_operations
from layers.build import (
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    BuiltLayer,
    LayerBuilder,
    LayerBuildError,
    LayerSpec,
    Platform,
    binary_problems,
    check_size,
    link_tree,
    python_version_of,
    read_pins,
    tree_size,
)
from layers.index_content import INDEX_DIR, SemanticIndexContent
from stacks.bundling import copy_files, files_key, function_files
from stacks.lambda_target import LambdaTarget, TargetError
from stacks.router_layers import RUNTIME_REQUIREMENTS, SEMANTIC_REQUIREMENTS, runtime_layer_spec

pytestmark = pytest.mark.generic  # holds for any valid routes file

ARM = Platform.for_lambda("python3.12", "arm64")
X86 = Platform.for_lambda("python3.12", "x86_64")
EM_AARCH64, EM_X86_64 = 183, 62
STANDIN = "offline-stand-in"


def elf(path: Path, machine: int) -> Path:
    """A minimal 64-bit little-endian ELF header for ``machine``: enough for the checker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + (3).to_bytes(2, "little")
    path.write_bytes(header + machine.to_bytes(2, "little") + bytes(44))
    return path


class FakePip:
    """Stands in for ``pip install --target``: writes a package and records the call."""

    def __init__(self, machine: int = EM_AARCH64, ext: str = "cpython-312-aarch64-linux-gnu"):
        self.calls: list[list[str]] = []
        self.machine = machine
        self.ext = ext
        self.returncode = 0
        self.stderr = ""

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        target = Path(args[args.index("--target") + 1])
        (target / "demo").mkdir(parents=True, exist_ok=True)
        (target / "demo" / "__init__.py").write_text("VALUE = 1\n" * 100)
        elf(target / "demo" / f"_speedups.{self.ext}.so", self.machine)
        (target / "demo-1.0.dist-info").mkdir(exist_ok=True)
        (target / "bin").mkdir(exist_ok=True)
        (target / "bin" / "demo").write_text("#!/host/python\n")
        return subprocess.CompletedProcess(args, self.returncode, "", self.stderr)


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# a comment\ndemo==1.0  # pinned\n")
    return path


# -- platform -------------------------------------------------------------------------------------


def test_platform_tags_per_architecture() -> None:
    for platform, machine in ((ARM, "aarch64"), (X86, "x86_64")):
        tags = platform.pip_platforms()
        assert tags[0] == f"manylinux_2_34_{machine}"  # Amazon Linux 2023's glibc
        assert f"manylinux_2_28_{machine}" in tags
        assert tags[-1] == f"manylinux2014_{machine}"
        assert all(tag.endswith(machine) for tag in tags)
        args = platform.pip_args()
        assert args[:4] == ["--implementation", "cp", "--python-version", "3.12"]
        assert "--only-binary=:all:" in args
    assert ARM.extension_tag == "cpython-312-aarch64-linux-gnu"
    assert Platform.for_lambda("python3.11", "arm64").glibc == (2, 26)  # Amazon Linux 2


def test_python_version_comes_from_the_runtime() -> None:
    assert python_version_of("python3.12") == "3.12"
    assert python_version_of("python3.14") == "3.14"
    with pytest.raises(LayerBuildError):
        python_version_of("nodejs22.x")
    target = LambdaTarget.of("python3.13", "x86_64")
    assert target.runtime.name == "python3.13"
    assert target.architecture.name == lambda_.Architecture.X86_64.name
    assert target.platform == Platform("3.13", "x86_64", (2, 34))


def test_target_refuses_old_runtimes_and_unknown_cpus() -> None:
    with pytest.raises(TargetError, match="python3.12 or newer"):
        LambdaTarget.of("python3.11", "arm64")
    with pytest.raises(TargetError, match="architecture"):
        LambdaTarget.of("python3.12", "riscv64")


# -- verification ---------------------------------------------------------------------------------


def test_mismatched_binaries_are_reported(tmp_path: Path) -> None:
    elf(tmp_path / "numpy" / "_core" / "_umath.cpython-312-aarch64-linux-gnu.so", EM_AARCH64)
    elf(tmp_path / "faiss" / "_swigfaiss.abi3.so", EM_AARCH64)
    elf(tmp_path / "numpy.libs" / "libopenblas-1a2b.so.0.3", EM_AARCH64)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "readme.so.txt").write_text("not a binary")
    assert binary_problems(tmp_path, ARM) == []

    wrong_cpu = binary_problems(tmp_path, X86)
    assert len(wrong_cpu) == 3  # the tagged module by name, the others by ELF machine
    assert any("cpython-312-aarch64-linux-gnu" in p and "expected" in p for p in wrong_cpu)
    assert any("faiss/_swigfaiss.abi3.so: ELF machine 183" in p for p in wrong_cpu)

    elf(tmp_path / "numpy" / "_other.cpython-313-aarch64-linux-gnu.so", EM_AARCH64)
    assert binary_problems(tmp_path, ARM) == [
        "numpy/_other.cpython-313-aarch64-linux-gnu.so: built for cpython-313-aarch64-linux-gnu, "
        "expected cpython-312-aarch64-linux-gnu"
    ]


def test_build_fails_when_pip_installs_another_cpu(tmp_path: Path, requirements: Path) -> None:
    pip = FakePip(machine=EM_X86_64, ext="cpython-312-x86_64-linux-gnu")
    builder = LayerBuilder(tmp_path / "cache", pip=pip, progress=lambda _: None)
    with pytest.raises(LayerBuildError, match="do not fit CPython 3.12 on aarch64"):
        builder.build(LayerSpec("demo", requirements), ARM)
    assert not list((tmp_path / "cache").glob("*/*/build.json"))  # nothing cached


def test_requirements_must_be_pinned(tmp_path: Path) -> None:
    loose = tmp_path / "requirements.txt"
    loose.write_text("numpy>=2\n")
    with pytest.raises(LayerBuildError, match="not an exact pin"):
        read_pins(loose)
    runtime_pins = read_pins(RUNTIME_REQUIREMENTS)
    assert runtime_pins[0] == "aws-lambda-powertools==3.37.0"
    # The layer's botocore is the one the tools and tests run with (requirements.txt).
    botocore_pin = next(pin for pin in runtime_pins if pin.startswith("botocore=="))
    assert botocore_pin in (REPO_ROOT / "requirements.txt").read_text().split()
    assert botocore_pin == f"botocore=={__import__('botocore').__version__}"
    assert read_pins(SEMANTIC_REQUIREMENTS) == ("faiss-cpu==1.15.1", "numpy==2.4.6")


def test_missing_wheels_fail_with_a_clear_message(tmp_path: Path, requirements: Path) -> None:
    pip = FakePip()
    pip.returncode = 1
    pip.stderr = "ERROR: No matching distribution found for demo==1.0"
    builder = LayerBuilder(tmp_path / "cache", pip=pip, progress=lambda _: None)
    with pytest.raises(LayerBuildError) as failure:
        builder.build(LayerSpec("demo", requirements), ARM)
    message = str(failure.value)
    assert "pip found no wheel for demo==1.0 on CPython 3.12 on aarch64" in message
    assert "No matching distribution found" in message


# -- cache and size -------------------------------------------------------------------------------


def test_second_build_is_a_cache_hit(tmp_path: Path, requirements: Path) -> None:
    pip = FakePip()
    builder = LayerBuilder(tmp_path / "cache", pip=pip, progress=lambda _: None)
    spec = LayerSpec("demo", requirements)
    first = builder.build(spec, ARM)
    second = LayerBuilder(tmp_path / "cache", pip=pip, progress=lambda _: None).build(spec, ARM)
    assert len(pip.calls) == 1
    assert second.path == first.path and second.key == first.key
    assert builder.cached(spec, ARM) == second

    requirements.write_text("demo==1.0\n# reworded comment\n")
    assert builder.key(spec, ARM) == first.key  # comments are not inputs
    requirements.write_text("demo==1.1\n")
    assert builder.key(spec, ARM) != first.key
    assert builder.key(LayerSpec("demo", requirements), X86) != builder.key(spec, ARM)


def test_pip_gets_the_platform_and_the_layer_is_pruned(tmp_path: Path, requirements: Path) -> None:
    pip = FakePip()
    built = LayerBuilder(tmp_path / "cache", pip=pip, progress=lambda _: None).build(
        LayerSpec("demo", requirements), ARM
    )
    (call,) = pip.calls
    assert call[call.index("--python-version") + 1] == "3.12"
    assert "manylinux_2_28_aarch64" in call and "--no-compile" in call
    assert (built.path / "python" / "demo" / "__init__.py").is_file()
    assert not (built.path / "python" / "bin").exists()  # host console scripts dropped
    manifest = json.loads((built.path / "layer-manifests" / "demo.json").read_text())
    assert manifest["packages"] == {"demo": "1.0"}
    assert manifest["lambda_architecture"] == "arm64"
    assert manifest["platform"]["python_version"] == "3.12"


def test_size_is_reported_and_limited(
    tmp_path: Path, requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = LayerSpec("demo", requirements)
    built = LayerBuilder(tmp_path / "a", pip=FakePip(), progress=lambda _: None).build(spec, ARM)
    assert built.unzipped_bytes == tree_size(built.path) > 1000
    assert built.manifest["unzipped_bytes"] == built.unzipped_bytes

    assert check_size({"code": 10, "layer": 20}, limit=30) == 30
    with pytest.raises(LayerBuildError, match=r"exceeds Lambda's .* \(code 0.0 MiB, layer"):
        check_size({"code": 10, "layer": 21}, limit=30)
    assert LAMBDA_UNZIPPED_LIMIT_BYTES == 250 * 1024 * 1024

    monkeypatch.setattr("layers.build.LAMBDA_UNZIPPED_LIMIT_BYTES", 100)
    builder = LayerBuilder(tmp_path / "b", pip=FakePip(), progress=lambda _: None)
    with pytest.raises(LayerBuildError, match="exceeds Lambda's"):
        builder.build(spec, ARM)


def test_link_tree_hard_links(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_text("x = 1\n")
    link_tree(tmp_path / "src", tmp_path / "dst")
    source, copy_ = tmp_path / "src" / "pkg" / "a.py", tmp_path / "dst" / "pkg" / "a.py"
    assert copy_.read_text() == "x = 1\n"
    assert os.stat(source).st_ino == os.stat(copy_).st_ino


def test_index_key_follows_the_reference_prompts(routes: RoutesConfig) -> None:
    raw = copy.deepcopy(dict(routes.raw))
    first_category = next(iter(raw["categories"]))
    raw["categories"][first_category]["reference_prompts"].append("One more prompt?")
    edited = parse_routes(raw, preset=routes.preset)
    spec = LayerSpec("semantic", SEMANTIC_REQUIREMENTS, (SemanticIndexContent(routes, STANDIN),))
    edited_spec = LayerSpec(
        "semantic", SEMANTIC_REQUIREMENTS, (SemanticIndexContent(edited, STANDIN),)
    )
    bedrock_spec = LayerSpec(
        "semantic", SEMANTIC_REQUIREMENTS, (SemanticIndexContent(routes, "bedrock"),)
    )
    builder = LayerBuilder()
    keys = {builder.key(s, ARM) for s in (spec, edited_spec, bedrock_spec)}
    assert len(keys) == 3
    # ...while the packages it shares with the other variants are installed once.
    assert len({builder.packages_key(s.requirements, ARM) for s in (spec, edited_spec)}) == 1


def test_function_asset_follows_code_and_routes(tmp_path: Path, routes: RoutesConfig) -> None:
    assert routes.source_path is not None
    files = function_files(routes.source_path)
    names = [name for _, name in files]
    assert "routes.json" in names and "llm_router/edge/handler.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    package = tmp_path / "llm_router"
    link_tree(REPO_ROOT / "lambdas" / "llm_router", package)
    routes_copy = tmp_path / "routes.json"
    routes_copy.write_text(routes.source_path.read_text())
    key = files_key(function_files(routes_copy, package))
    edited = json.loads(routes_copy.read_text())
    edited["semantic"]["k"] += 1
    routes_copy.write_text(json.dumps(edited))
    assert files_key(function_files(routes_copy, package)) != key
    routes_copy.write_text(routes.source_path.read_text())
    (package / "edge" / "handler.py").unlink()
    (package / "edge" / "handler.py").write_text("# changed\n")
    assert files_key(function_files(routes_copy, package)) != key


# -- the real layers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_semantic(routes: RoutesConfig) -> BuiltLayer:
    index = SemanticIndexContent.resolve(routes, "stand-in")
    spec = LayerSpec("semantic", SEMANTIC_REQUIREMENTS, (index,))
    return LayerBuilder().build(spec, LambdaTarget.of("python3.12", "arm64").platform)


def test_real_semantic_layer_has_arm64_faiss_numpy_and_the_index(
    real_semantic: BuiltLayer, routes: RoutesConfig
) -> None:
    python = real_semantic.path / "python"
    assert (python / "faiss" / "__init__.py").is_file()
    assert (python / "numpy" / "__init__.py").is_file()
    numpy_ext = list((python / "numpy").rglob("*.cpython-312-aarch64-linux-gnu.so"))
    assert numpy_ext, "numpy's extension modules must be built for CPython 3.12 on aarch64"
    assert not list(python.rglob("*x86_64-linux-gnu.so"))
    faiss_ext = list((python / "faiss").glob("_swigfaiss*.so"))
    assert faiss_ext
    assert binary_problems(python, ARM) == []

    manifest = json.loads((real_semantic.path / "layer-manifests" / "semantic.json").read_text())
    assert manifest["packages"]["faiss-cpu"] == "1.15.1"
    assert manifest["packages"]["numpy"] == "2.4.6"
    assert manifest["platform"] == {"python_version": "3.12", "machine": "aarch64", "glibc": "2.34"}
    assert 0 < real_semantic.unzipped_bytes < LAMBDA_UNZIPPED_LIMIT_BYTES

    index_dir = real_semantic.path / INDEX_DIR
    bank = {TOPIC_DECISIONS_FILE} if routes.out_of_scope.topic_bank else set()
    assert {p.name for p in index_dir.iterdir()} == {
        "index.faiss", "labels.json", "manifest.json", "embedding-probe.json", HEAD_FILE, *bank
    }
    index = Manifest.read(index_dir)
    assert manifest_problems(index, routes, STANDIN) == []
    own = len(routes.reference_prompts())  # the topic bank, when used, adds rows after these
    assert index.vectors >= own if bank else index.vectors == own
    assert index.dimensions == routes.embedding.dimensions


def test_llm_assisted_code_imports_with_only_the_runtime_layer(
    tmp_path: Path, routes: RoutesConfig
) -> None:
    """What Lambda would load for the llm-assisted router: its asset, the runtime layer, boto3.

    Runs in a fresh interpreter without site-packages, so a module the function imports at cold
    start but that neither its asset nor its layers nor the Lambda runtime provide fails here.
    The layer's botocore comes before the runtime's, and its trimmed data makes every client the
    functions create, with the operations they call.
    """
    assert routes.source_path is not None
    task = tmp_path / "task"
    copy_files(function_files(routes.source_path), task)
    runtime = LayerBuilder().build(runtime_layer_spec(), ARM)
    # The Lambda Python runtime ships boto3 and its dependencies.
    provided = tmp_path / "runtime-provided"
    site = Path(__import__("boto3").__file__).resolve().parent.parent
    provided.mkdir()
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        if (site / name).is_dir():
            link_tree(site / name, provided / name)
        else:
            shutil.copy2(site / name, provided / name)
    probe = (
        "import sys; sys.path[:0] = {paths!r}; import os; "
        "os.environ['ROUTER_STRATEGY'] = 'llm-assisted'; import llm_router.edge.handler; "
        # ...and the cold start builds the router (the client is only used per request).
        "from llm_router.pipeline.factory import build_service; "
        "from llm_router.config import load_routes; "
        "build_service('llm-assisted', load_routes(), client=object()); "
        "import botocore; assert botocore.__file__.startswith({layer!r}), botocore.__file__; "
        "from llm_router.models.bedrock import aws_client; "
        "clients = {{s: aws_client(s, region_name='us-east-1') for s in {operations!r}}}; "
        "missing = [(s, o) for s, ops in {operations!r}.items() for o in ops "
        "if not hasattr(clients[s], botocore.xform_name(o))]; "
        "assert not missing, missing; "
        "assert sorted(clients['dynamodb'].meta.service_model.operation_names) == "
        "sorted({operations!r}['dynamodb'])"
    ).format(paths=[str(task), str(runtime.path / "python"), str(provided)],
             layer=str(runtime.path / "python"),
             operations={s: sorted(o) for s, o in code_operations().items()})
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
