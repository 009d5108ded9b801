"""The versioned converter registry: the converter with the highest ``since`` at or below
the model's opset is used, checked against onnxruntime across every opset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from mmconv.dispatch import VersionedRegistry
from mmconv.frontends.onnx.converters import CONVERTERS
from tests.frontends.onnx._common import convert_and_check, model, save


def test_highest_since_at_or_below_the_opset_wins() -> None:
    reg: VersionedRegistry = VersionedRegistry("test", min_version=7)

    @reg.register("Op", since=1)
    def v1() -> None: ...

    @reg.register("Op", since=13)
    def v13() -> None: ...

    assert reg.get("Op", 7) is v1
    assert reg.get("Op", 12) is v1
    assert reg.get("Op", 13) is v13
    assert reg.get("Op", 21) is v13
    assert reg.get("Other", 13) is None
    assert reg.ranges("Op") == [(7, 12), (13, None)]
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("Op", since=13)(v1)


def test_ops_that_changed_have_one_converter_per_form() -> None:
    assert CONVERTERS.versions("Softmax") == [1, 13]
    assert CONVERTERS.versions("Clip") == [6, 11]
    assert CONVERTERS.versions("ReduceSum") == [1, 13]
    assert CONVERTERS.versions("ReduceMean") == [1, 18]
    assert CONVERTERS.get("Gelu", 19) is None and CONVERTERS.get("Gelu", 20) is not None


def _newest_ort_opset() -> int:
    import onnxruntime

    major, minor = (int(v) for v in onnxruntime.__version__.split(".")[:2])
    # onnxruntime 1.17 runs opset 20; every minor release since added about one opset
    return min(onnx.defs.onnx_opset_version(), 20 + max(0, (minor - 17) // 2)) \
        if major == 1 else onnx.defs.onnx_opset_version()


@pytest.mark.parametrize("opset", range(7, onnx.defs.onnx_opset_version() + 1))
def test_softmax_and_reduce_forms_at_every_opset(opset: int, tmp_path: Path) -> None:
    """Softmax on axis 1 of a rank-3 tensor flattens before opset 13 and not after; the
    reduction's axes move from attribute to input at 18: each opset converts to what
    onnxruntime computes for that opset."""
    if opset > _newest_ort_opset():
        pytest.skip(f"onnxruntime here runs opsets up to {_newest_ort_opset()}")
    reduce_node = (helper.make_node("ReduceMax", ["s", "ax"], ["y"], keepdims=1)
                   if opset >= 18 else
                   helper.make_node("ReduceMax", ["s"], ["y"], axes=[2], keepdims=1))
    inits = {"ax": np.array([2], np.int64)} if opset >= 18 else {}
    proto = model([helper.make_node("Softmax", ["x"], ["s"], axis=1), reduce_node],
                  [("x", ["N", 3, 4])], ["y"], inits, opset=opset)
    convert_and_check(save(proto, tmp_path / f"softmax{opset}.onnx"), ["onnx"], tmp_path)
