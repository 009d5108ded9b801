"""The CNTK frontend's modules import in one direction: no cycles (``v1_nodes`` <->
``reader_v1`` was one, hidden by imports inside functions), and the v1 reader's
modules import on their own in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mmconv.frontends.cntk
from tests.import_graph import ROOT, find_cycle, import_graph, package_modules

MODULES = package_modules(Path(mmconv.frontends.cntk.__file__).parent)


def test_cntk_frontend_import_graph_has_no_cycle() -> None:
    graph = import_graph(MODULES)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
    # the v1 reader's layers: bytes <- fields, translation <- reader
    assert "mmconv.frontends.cntk.reader_v1" not in graph["mmconv.frontends.cntk.v1_fields"]
    assert "mmconv.frontends.cntk.reader_v1" not in graph["mmconv.frontends.cntk.v1_translate"]
    assert "mmconv.frontends.cntk.v1_nodes" not in MODULES
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check can fail


@pytest.mark.parametrize("module", ["mmconv.frontends.cntk.v1_binary",
                                    "mmconv.frontends.cntk.v1_fields",
                                    "mmconv.frontends.cntk.v1_translate",
                                    "mmconv.frontends.cntk.reader_v1",
                                    "mmconv.frontends.cntk.recurrence"])
def test_module_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
