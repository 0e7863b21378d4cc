"""The routing core's layout: packages by role, imports only downwards, no cycles.

The layers, lowest first, are the order in which a request's code depends on itself: value types
and error codes, configuration, observability, model calls, the decision, governance, the
pipeline that composes them, and the HTTP edge. A module may import its own layer or a lower one;
an import upwards is how cycles and hidden coupling start, so it fails here instead of in review.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lambdas" / "llm_router"
LAYERS = (
    ("records", "errors"),
    ("config",),
    ("observability",),
    ("models",),
    ("decision",),
    ("governance",),
    ("pipeline",),
    ("edge",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Every ``llm_router`` module the file imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "llm_router":
                continue
            for alias in node.names:  # "from . import x" names a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if module_path(candidate) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "llm_router"}
    return found


def module_path(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def layer_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {m for m in imported_modules(p) if m in MODULES} for name, p in MODULES.items()}


def test_top_level_holds_about_ten_entries() -> None:
    entries = [p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 10, sorted(entries)
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        name for names in LAYERS for name in names if (PACKAGE / name).is_dir()
    }


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer_of(n)))
def test_imports_go_only_downwards(name: str) -> None:
    own = RANK[layer_of(name)]
    upward = sorted(m for m in GRAPH[name] if layer_of(m) and RANK[layer_of(m)] > own)
    assert not upward, f"{name} imports a higher layer: {upward}"


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_the_checker_sees_an_upward_import() -> None:
    """The rule can fail: a models module that imported the edge would be reported."""
    path = PACKAGE / "models" / "bedrock.py"
    imports = imported_modules(path, path.read_text() + "\nfrom ..edge import handler\n")
    assert "llm_router.edge.handler" in imports
    assert RANK[layer_of("llm_router.edge.handler")] > RANK["models"]


def test_the_architecture_doc_names_every_package() -> None:
    """docs/architecture.md describes the layout as it is: each package, and no other."""
    doc = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text()
    described = set(re.findall(r"^\d+\. \*\*`(\w+)/`\*\*", doc, re.M))
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert described == packages
