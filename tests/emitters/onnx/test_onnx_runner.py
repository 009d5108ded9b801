"""mmconv.verify.onnx_runner: inputs by name or position, outputs in graph order, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mmconv.errors import ModelFormatError, RuntimeUnavailableError, UsageError
from mmconv.verify import onnx_runner
from mmconv.verify.onnx_runner import OnnxRunner, run_onnx


def _model() -> onnx.ModelProto:
    """Two inputs, two outputs declared in the opposite order of their computation."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Sub", ["a", "b"],
                                                                         ["diff"])],
        "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("diff", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)


A = np.array([[1.0, 2.0]], np.float32)
B = np.array([[0.5, 4.0]], np.float32)


def test_by_name_and_position(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    for source in (path, str(path), _model(), _model().SerializeToString()):
        runner = OnnxRunner(source)
        assert runner.input_names == ["a", "b"] and runner.output_names == ["diff", "sum"]
        diff, total = runner.run({"b": B, "a": A})
        np.testing.assert_array_equal(diff, A - B)
        np.testing.assert_array_equal(total, A + B)
        diff2, _ = runner.run([A, B])
        np.testing.assert_array_equal(diff2, diff)
    assert set(OnnxRunner(path).run_dict([A, B])) == {"diff", "sum"}


def test_extra_outputs(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    runner = OnnxRunner(path, extra_outputs=["sum", "a"])
    assert runner.output_names == ["diff", "sum", "a"]
    diff, total, a = runner.run([A, B])
    np.testing.assert_array_equal(total, A + B)
    np.testing.assert_array_equal(diff, A - B)
    np.testing.assert_array_equal(a, A)
    with pytest.raises(ModelFormatError, match="nope"):
        OnnxRunner(_model(), extra_outputs=["nope"])


def test_inputs_cast_to_model_dtype() -> None:
    (diff, _) = run_onnx(_model(), [A.astype(np.float64), B.astype(np.float64)])
    assert diff.dtype == np.float32


def test_input_mismatch_errors() -> None:
    runner = OnnxRunner(_model())
    with pytest.raises(UsageError, match="missing: \\['b'\\]"):
        runner.run({"a": A})
    with pytest.raises(UsageError, match="unknown: \\['c'\\]"):
        runner.run({"a": A, "b": B, "c": B})
    with pytest.raises(UsageError, match="1 inputs given"):
        runner.run([A])
    with pytest.raises(UsageError, match="failed to run"):
        runner.run([A, np.ones((1, 3), np.float32)])


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such"):
        OnnxRunner(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model")
    with pytest.raises(ModelFormatError, match=r"junk\.onnx"):
        OnnxRunner(junk)


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without the optional dependency: ``None`` in sys.modules fails the import."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RuntimeUnavailableError, match="pip install"):
        onnx_runner.OnnxRunner(_model())
