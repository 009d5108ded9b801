"""OnnxRunner falls back to onnx.reference where onnxruntime has no kernel (float64 Conv).

A float64 CNTK model converts to a float64 ONNX graph; onnxruntime refuses to
load it (NOT_IMPLEMENTED), which made ``mmconvert --verify`` fail on a correct
conversion (found by scripts/zoo_check.py on a float64 ResNet-20).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from mmconv.errors import ModelFormatError
from mmconv.verify.onnx_runner import OnnxRunner


def _conv64(op: str = "Conv") -> object:
    w = np.arange(2 * 3 * 3 * 3, dtype=np.float64).reshape(2, 3, 3, 3) / 50.0
    node = helper.make_node(op, ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "conv64",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 3, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 2, 5, 5])],
        [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)


def _reference_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((x.shape[0], w.shape[0], 5, 5))
    for i in range(5):
        for j in range(5):
            out[:, :, i, j] = np.einsum("nchw,ochw->no", xp[:, :, i:i + 3, j:j + 3], w)
    return out


def test_float64_conv_runs_through_onnx_reference() -> None:
    model = _conv64()
    runner = OnnxRunner(model)
    assert runner.input_names == ["x"] and runner.output_names == ["y"]
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32).astype(
        np.float64)
    (y,) = runner.run([x.astype(np.float32)])  # cast to the declared float64
    assert y.dtype == np.float64
    w = numpy_helper.to_array(model.graph.initializer[0])
    np.testing.assert_allclose(y, _reference_conv(x, w), rtol=1e-12, atol=1e-12)
    assert list(runner.run_dict({"x": x})) == ["y"]


def test_other_load_errors_still_reported() -> None:
    with pytest.raises(ModelFormatError, match="onnxruntime cannot load it"):
        OnnxRunner(_conv64("NoSuchOp"))
