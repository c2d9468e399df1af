"""The shape of generator/ stays what a newcomer can carry: the pipeline's layers import only
downwards and never in a cycle, no module is over 300 lines and no function over 40. (Ruff
checks complexity, argument counts and boolean flags; see pyproject.toml.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO

PACKAGE = REPO / "generator"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 40
# The layers, bottom first: a module imports only from its own layer or below (and never in a cycle).
LAYERS = [
    {"__init__", "tokens", "errors", "files", "names", "quantity", "emit", "releases",
     "digests", "sharing", "stamp", "recorder"},
    {"layout", "load", "compiled_schema", "fetch", "capacity", "templatecache"},
    {"merge", "secrets", "crds"},
    {"validate", "project", "schemas", "kubeconform", "verdicts"},
    {"plan"},
    {"render"},
    {"bundle", "gitops", "podsecurity", "diff"},
    {"check", "write", "validation"},
    {"pipeline", "scaffold", "noop"},
    {"commands"},
    {"cli", "__main__"},
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def modules() -> dict[str, Path]:
    return {p.relative_to(PACKAGE).with_suffix("").as_posix(): p for p in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    """The layer unit of a module: its top-level name below generator/ (a package counts as one)."""
    return module.split("/")[0]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module == "generator":
            names = [f"generator.{alias.name}" for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("generator.")}
    return found


def test_every_module_has_a_layer() -> None:
    assert {unit(m) for m in modules()} - set(RANK) == set()


def test_imports_go_down_the_layers_and_never_in_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in modules().items():
        graph.setdefault(unit(module), set()).update((imports(path) & set(RANK)) - {unit(module)})
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if RANK[b] > RANK[a])
    assert upward == []
    seen: dict[str, int] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert node not in trail, f"import cycle: {' -> '.join((*trail, node))}"
        if seen.get(node):
            return
        for target in sorted(graph.get(node, ())):
            visit(target, (*trail, node))
        seen[node] = 1

    for node in sorted(graph):
        visit(node, ())


@pytest.mark.parametrize("module", sorted(modules()))
def test_modules_and_functions_stay_small(module: str) -> None:
    path = modules()[module]
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{module} has {text.count(chr(10))} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
