"""Checked-in torchvision architectures (reduced width, random weights, calibrated
BatchNorm) exported by both torch.onnx exporters (scripts/make_onnx_fixtures.py, run in
its own torchvision env), converted to every target and compared with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmconv.verify.compare import compare
from mmconv.verify.onnx_runner import run_onnx
from tests.frontends.onnx._common import convert_and_check

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "onnx"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())
#: Keras and CNTK (slower to build) get one exporter each, alternating, so every target
#: sees every architecture and every exporter
_SLOW = {name: (("keras",) if entry["exporter"] == "torchscript" else ("cntk",))
         for name, entry in MANIFEST.items()}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_reference_is_onnxruntimes(name: str) -> None:
    """The stored outputs are what onnxruntime computes on the stored input (so the
    fixture and its reference belong together)."""
    ref = np.load(FIXTURES / f"{name}.npz")
    got = run_onnx(str(FIXTURES / f"{name}.onnx"), {"input": ref["input"]})[0]
    assert compare("output", ref["output"], got).passed


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_converts_to_every_target(name: str, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    targets = ("onnx", "pytorch", *_SLOW[name])
    if "cntk" in targets:
        request.getfixturevalue("cntk_python")
    graph = convert_and_check(FIXTURES / f"{name}.onnx", targets, tmp_path)
    assert graph.inputs[0].shape[0] is None
    assert graph.metadata["source_format"] == f"onnx-opset{MANIFEST[name]['opset']}"


def test_fixtures_are_small() -> None:
    for path in FIXTURES.iterdir():
        assert path.stat().st_size < 2 * 1024 * 1024, path.name
