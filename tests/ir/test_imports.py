"""The IR's modules import in one direction: no cycles (core <-> registry was one), and
each imports on its own in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mmconv.ir
from tests.import_graph import ROOT, find_cycle, import_graph, package_modules

IR_DIR = Path(mmconv.ir.__file__).parent
MODULES = package_modules(IR_DIR)


def test_ir_import_graph_has_no_cycle() -> None:
    graph = import_graph(MODULES)
    cycle = find_cycle(graph)
    if cycle is not None:
        pytest.fail("import cycle: " + " -> ".join(cycle))
    assert "mmconv.ir.registry" not in graph["mmconv.ir.core"]
    assert "mmconv.ir.core" in graph["mmconv.ir.registry"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if "graph_pb2" not in m))
def test_each_ir_module_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
