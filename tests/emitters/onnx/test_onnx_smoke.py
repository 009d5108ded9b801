"""A small conv net through the ONNX emitter at several opsets (the first-version smoke test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from mmconv.emitters import get_emitter
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close
from mmconv.verify.onnx_runner import run_onnx


def _net() -> Graph:
    rng = np.random.default_rng(0)
    g = Graph("net")
    g.add_input("x", "float32", [None, 3, 8, 8])
    g.add_weight("conv1/W", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    g.add_node("Conv", ["x", "conv1/W"], "conv1", pads=(1, 1, 1, 1))
    g.add_node("Relu", ["conv1"], "relu1")
    g.add_node("Flatten", ["relu1"], "flat")
    g.add_weight("fc/W", rng.standard_normal((5, 256)).astype(np.float32))
    g.add_node("Dense", ["flat", "fc/W"], "fc")
    g.outputs = ["fc"]
    return g


def _reference(g: Graph, x: np.ndarray) -> np.ndarray:
    w = g.weights["conv1/W"].astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((x.shape[0], 4, 8, 8))
    for i in range(8):
        for j in range(8):
            y[:, :, i, j] = np.einsum("nchw,ochw->no", xp[:, :, i:i + 3, j:j + 3], w)
    y = np.maximum(y, 0).reshape(x.shape[0], -1)
    return (y @ g.weights["fc/W"].astype(np.float64).T).astype(np.float32)


@pytest.mark.parametrize("opset", [7, 9, 17])
def test_conv_net_runs(tmp_path: Path, opset: int) -> None:
    g = _net()
    path = tmp_path / "net.onnx"
    get_emitter("onnx").emit_model(g, path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (got,) = run_onnx(path, {"x": x})
    assert_close(_reference(g, x), got)
