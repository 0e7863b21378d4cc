"""The AWS SDK the functions ship: botocore, pinned, with the data of the calls they make only.

**Why ship botocore at all.** The managed runtime's SDK is whatever version Lambda installed
that month, and where it lives differs between runtimes (the streaming function's own runtime
loop does not even put ``/var/runtime`` on its path). The runtime layer pins it instead
(``layers/runtime/requirements.txt``), as AWS recommends for production functions, so the code
is tested against the SDK it runs with.

**Why trim its data.** botocore's ``data/`` holds the models of all ~450 services (30 MB), and
creating the first client lists every service's directory (some 900 ``listdir`` and 2,700
``stat`` calls) and parses the 1.2 MB ``endpoints.json``; a DynamoDB client then parses a 94 KB
compressed model of 57 operations. Measured here (CPU ms, median of three fresh processes,
``scripts/benchmark.py --cold`` measures the effect on the whole cold start): bedrock-runtime
35, DynamoDB 9, Secrets Manager 3 with the full data; 6, 3 and 2 with the data below. So the layer
keeps, of each service the code creates a client for, the newest API version's endpoint rules
and a service model cut to the operations the code calls (the shapes they reach, without
documentation), and of ``endpoints.json`` those services' entries. Everything comes from the
pinned botocore's own files, so code and data are one version.

The operations come from the code (:func:`operations_called`): every ``aws_client("<service>")``
names a service, and every attribute call or string constant that is one of its operations' Python
names (``client.converse(...)``, ``traced_call(client, "update_item", ...)``) keeps that operation.
A call the scan cannot see would fail in Lambda with ``AttributeError``, so the same scan also
drives the test that every operation is granted to the function's role
(``tests/test_iam_enforced.py``), and the cold-start benchmark runs the real handler on a
trimmed copy (``sdk_copy``).

Hand-written: botocore reads any directory laid out like its ``data/`` (its loader has no filter
to offer), and no published tool trims service models.
"""

from __future__ import annotations

import ast
import gzip
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from layers import REPO_ROOT

FORMAT_VERSION = 1  # bump when the trimming changes what it writes
CODE_DIR = REPO_ROOT / "lambdas" / "llm_router"
CLIENT_FACTORY = "aws_client"  # llm_router.models.bedrock.aws_client(service, ...)
ENDPOINTS_FILE = "endpoints.json"
_DROPPED_KEYS = ("documentation", "documentationUrl")
_KEPT_SERVICE_FILES = ("endpoint-rule-set-1.json", "service-2.sdk-extras.json")


def xform_name(name: str) -> str:
    from botocore import xform_name as botocore_xform

    return str(botocore_xform(name))


def services_created(paths: Iterable[Path]) -> set[str]:
    """The services named by ``aws_client("<service>", ...)`` calls in ``paths``."""
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == CLIENT_FACTORY
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def operations_called(
    paths: Iterable[Path], services: Iterable[str], data_dir: Path | None = None
) -> dict[str, set[str]]:
    """{service: {Operation}} of every operation of ``services`` that the code in ``paths``
    calls: an attribute call (``client.update_item(...)``) or a string argument
    (``traced_call(client, "update_item", ...)``) that is the operation's Python name."""
    by_method: dict[str, set[tuple[str, str]]] = {}
    for service in services:
        for operation in load_service_model(service, data_dir)["operations"]:
            by_method.setdefault(xform_name(operation), set()).add((service, operation))
    called: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            names = [node.func.attr] if isinstance(node.func, ast.Attribute) else []
            names += [
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            for name in names:
                for service, operation in by_method.get(name, ()):
                    called.setdefault(service, set()).add(operation)
    return called


def code_operations(code_dir: Path = CODE_DIR) -> dict[str, set[str]]:
    """What the functions' code calls: the operations of every service it creates a client for."""
    paths = sorted(code_dir.rglob("*.py"))
    return operations_called(paths, services_created(paths))


def botocore_data_dir() -> Path:
    import botocore

    return Path(botocore.__file__).resolve().parent / "data"


def newest_version_dir(service: str, data_dir: Path | None = None) -> Path:
    """The service's newest API version directory (the one botocore loads by default)."""
    root = (data_dir or botocore_data_dir()) / service
    versions = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not versions:
        raise ValueError(f"botocore has no model for service {service!r}")
    return versions[-1]


def _read_json(path_without_gz: Path) -> Any:
    if path_without_gz.is_file():
        return json.loads(path_without_gz.read_text(encoding="utf-8"))
    with gzip.open(path_without_gz.with_name(path_without_gz.name + ".gz"), "rt") as handle:
        return json.load(handle)


def load_service_model(service: str, data_dir: Path | None = None) -> dict[str, Any]:
    return dict(_read_json(newest_version_dir(service, data_dir) / "service-2.json"))


def _without_docs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_docs(v) for k, v in value.items() if k not in _DROPPED_KEYS}
    if isinstance(value, list):
        return [_without_docs(v) for v in value]
    return value


def trimmed_model(model: Mapping[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """``model`` with only ``operations`` and the shapes they reach, without documentation."""
    wanted = set(operations)
    missing = wanted - set(model["operations"])
    if missing:
        raise ValueError(f"operations not in the model: {', '.join(sorted(missing))}")
    kept_operations = {k: v for k, v in model["operations"].items() if k in wanted}
    shapes = model["shapes"]
    reached: set[str] = set()
    pending = [
        ref["shape"]
        for operation in kept_operations.values()
        for ref in [operation.get("input"), operation.get("output"), *operation.get("errors", [])]
        if ref
    ]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = shapes[name]
        pending += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        pending += [member["shape"] for member in shape.get("members", {}).values()]
    trimmed = {
        **model,
        "operations": kept_operations,
        "shapes": {k: v for k, v in shapes.items() if k in reached},
    }
    return dict(_without_docs(trimmed))


def write_sdk_data(
    operations: Mapping[str, Iterable[str]], target: Path, source: Path | None = None
) -> dict[str, Any]:
    """Write a botocore ``data/`` directory at ``target`` holding ``operations`` only; what was
    kept, for the layer's manifest."""
    source = source or botocore_data_dir()
    target.mkdir(parents=True)
    for path in source.iterdir():  # the SDK-wide files: partitions, retry rules, defaults
        if path.is_file() and path.name != ENDPOINTS_FILE:
            shutil.copyfile(path, target / path.name)
    endpoints = json.loads((source / ENDPOINTS_FILE).read_text(encoding="utf-8"))
    for partition in endpoints["partitions"]:
        partition["services"] = {k: v for k, v in partition["services"].items() if k in operations}
    (target / ENDPOINTS_FILE).write_text(json.dumps(endpoints, separators=(",", ":")), "utf-8")
    kept = {}
    for service, names in sorted(operations.items()):
        version = newest_version_dir(service, source)
        out = target / service / version.name
        out.mkdir(parents=True)
        model = trimmed_model(load_service_model(service, source), names)
        (out / "service-2.json").write_text(json.dumps(model, separators=(",", ":")), "utf-8")
        for name in _KEPT_SERVICE_FILES:
            if (version / name).is_file() or (version / f"{name}.gz").is_file():
                data = _read_json(version / name)
                (out / name).write_text(json.dumps(data, separators=(",", ":")), "utf-8")
        kept[service] = {"api_version": version.name, "operations": sorted(names)}
    return kept


class SdkDataContent:
    """Layer content (:class:`layers.build.LayerContent`): replaces the pip-installed botocore's
    ``data/`` by the trimmed one. The layer's requirements pin botocore; this runs after they
    are installed, on their files."""

    def __init__(self, operations: Mapping[str, Iterable[str]] | None = None) -> None:
        found = operations if operations is not None else code_operations()
        self.operations = {service: sorted(names) for service, names in sorted(found.items())}

    def cache_inputs(self) -> Mapping[str, Any]:
        return {"sdk_data": FORMAT_VERSION, "operations": self.operations}

    def write(self, layer_root: Path, progress: Any) -> Mapping[str, Any]:
        data = layer_root / "python" / "botocore" / "data"
        if not data.is_dir():
            raise ValueError("the layer's requirements must pin botocore: no botocore/data found")
        trimmed = data.with_name("data.trimmed")
        kept = write_sdk_data(self.operations, trimmed, source=data)
        shutil.rmtree(data)  # links into the package cache: removing them leaves the cache intact
        trimmed.rename(data)
        summary = ", ".join(f"{s} ({len(k['operations'])} operations)" for s, k in kept.items())
        progress(f"botocore data: {summary}")
        return {"botocore_data": kept}


def sdk_copy(target: Path, operations: Mapping[str, Iterable[str]] | None = None) -> Path:
    """A copy of this interpreter's botocore package with the trimmed data, at
    ``target/botocore``: what the runtime layer ships, for a process to put on its path (the
    cold-start benchmark). Its bytecode is the installed package's."""
    import botocore

    package = Path(botocore.__file__).resolve().parent
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        package,
        target / "botocore",
        ignore=shutil.ignore_patterns("data"),
        copy_function=shutil.copy2,
    )
    write_sdk_data(
        operations if operations is not None else code_operations(),
        target / "botocore" / "data",
        source=package / "data",
    )
    return target
