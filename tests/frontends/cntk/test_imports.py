"""The CNTK frontend's modules import in one direction: no cycles (``v1_nodes`` <->
``reader_v1`` was one, hidden by imports inside functions), and the v1 reader's
modules import on their own in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mmconv.frontends.cntk

PKG_DIR = Path(mmconv.frontends.cntk.__file__).parent
ROOT = PKG_DIR.parent.parent.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG_DIR.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Frontend modules ``path`` imports, at module level or in functions (not for typing)."""
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
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES}


def test_cntk_frontend_import_graph_has_no_cycle() -> None:
    graph = {name: _imports(path) for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*trail[trail.index(name):], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        state[name] = 1
        for dep in sorted(graph[name]):
            visit(dep, [*trail, name])
        state[name] = 2

    for name in graph:
        visit(name, [])
    # the v1 reader's layers: bytes <- fields, translation <- reader
    assert "mmconv.frontends.cntk.reader_v1" not in graph["mmconv.frontends.cntk.v1_fields"]
    assert "mmconv.frontends.cntk.reader_v1" not in graph["mmconv.frontends.cntk.v1_translate"]
    assert "mmconv.frontends.cntk.v1_nodes" not in MODULES


@pytest.mark.parametrize("module", ["mmconv.frontends.cntk.v1_binary",
                                    "mmconv.frontends.cntk.v1_fields",
                                    "mmconv.frontends.cntk.v1_translate",
                                    "mmconv.frontends.cntk.reader_v1",
                                    "mmconv.frontends.cntk.recurrence"])
def test_module_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
