"""The architecture on disk: which part may import which (docs/design.md), no cycles, no names.

Every ``pardo`` import of every module is read from its syntax tree, function-local ones
included (they are imports all the same; a lazy import only changes when it runs). A module's
part is its folder, or for the top-level private modules the layer docs/design.md gives them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pardo"

GROUND = {"_config", "_errors", "_memsize", "_expr", "_grid", "_context", "_task", "_sshlogin"}
FRONT = {"_parallel", "_options", "_parallel_config"}
FACE = {"__init__", "__main__"}

#: part -> the parts it may import (itself included). Lower parts never import higher ones.
ALLOWED: dict[str, set[str]] = {
    "ground": {"ground"},
    "_arrays": {"ground", "_arrays"},
    "_report": {"ground", "_report"},
    "_memory": {"ground", "_arrays", "_memory"},
    "backends": {"ground", "_arrays", "backends"},
    "_engine": {"ground", "_arrays", "_report", "backends", "_engine"},
    "front": {"ground", "_arrays", "_report", "backends", "_engine", "front"},
    "_cli": {"ground", "_arrays", "_report", "backends", "_engine", "front", "_cli", "face"},
    "face": set(),  # filled below: the face may re-export anything
}
ALLOWED["face"] = set(ALLOWED) | {"face"}


def part_of(module: str) -> str:
    """``pardo._engine._dispatch`` -> ``_engine``; ``pardo._task`` -> ``ground``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "face"
    top = parts[1]
    if top in GROUND:
        return "ground"
    if top in FRONT:
        return "front"
    if top in FACE:
        return "face"
    if top in ALLOWED:
        return top
    msg = f"{module}: no layer for {top!r}; add it to docs/design.md and to this test"
    raise AssertionError(msg)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def pardo_imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The pardo modules ``path`` imports (``from pardo import x`` counts as ``pardo.x`` when x
    is a module, else as ``pardo``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "pardo")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "pardo":
                continue
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                as_file = PACKAGE.parent / Path(*candidate.split("."))
                is_module = as_file.with_suffix(".py").exists() or as_file.is_dir()
                found.add(candidate if is_module else node.module)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module: str) -> None:
    mine = part_of(module)
    wrong = sorted(
        f"{target} ({part_of(target)})"
        for target in pardo_imports(MODULES[module])
        if part_of(target) not in ALLOWED[mine]
    )
    assert not wrong, f"{module} ({mine}) imports from a higher or unrelated layer: {wrong}"


def test_no_import_cycle() -> None:
    graph = {
        name: {t for t in pardo_imports(path, top_level_only=True) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    # Importing a submodule imports its package first: that edge is not a cycle of ours.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


_BACKEND_NAMES = r"""["'](loky|multiprocessing|sequential|threading|dask)["']"""
_NAME_TEST = re.compile(
    rf"(\bbackend\w*\.name\s*(==|!=|\bin\b|\bnot in\b))|({_BACKEND_NAMES}\s*(==|!=|\bin\b))|((==|!=)\s*{_BACKEND_NAMES})"
)


def test_no_backend_is_named_outside_backends() -> None:
    """Callers ask a backend's flags; only ``backends/`` may compare backend names."""
    offenders = []
    for name, path in MODULES.items():
        if name.startswith("pardo.backends"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _NAME_TEST.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
