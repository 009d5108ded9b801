"""The import graph of a package's modules, for the no-cycle tests (tests/ir, tests/frontends).

Imports inside functions count (a lazy import hides a cycle, it does not remove it);
imports under ``if TYPE_CHECKING`` do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = list(path.resolve().relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``package_dir``."""
    return {module_name(p): p for p in sorted(package_dir.rglob("*.py"))}


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Which of ``modules`` the file ``path`` imports (not for typing only)."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for b in node.body for n in ast.walk(b))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # ``from pkg import mod``: the submodule
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m in modules}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imports(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        state[start] = 1
        trail = [start]
        while stack:
            name, deps = stack[-1]
            if not deps:
                stack.pop()
                trail.pop()
                state[name] = 2
                continue
            dep = deps.pop(0)
            if state.get(dep) == 1:
                return [*trail[trail.index(dep):], dep]
            if not state.get(dep):
                state[dep] = 1
                trail.append(dep)
                stack.append((dep, sorted(graph[dep])))
    return None
