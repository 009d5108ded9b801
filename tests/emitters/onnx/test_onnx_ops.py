"""Every IR op through the ONNX emitter at every opset class, against numpy references.

The cases (``tests/emitters/ir_cases.py``, shared by all emitters) are emitted
at opsets 7 to 21, checked with ``onnx.checker`` (full_check), run with
onnxruntime and compared with ``assert_close``.  Below the case's minimum
opset the emitter must refuse with an UnsupportedError naming the node.  A
coverage test makes a new IR op without a handler or without a case fail CI.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from mmconv.emitters.onnx import HANDLERS, build_model
from mmconv.errors import UnsupportedError
from mmconv.ir import all_schemas
from mmconv.verify.compare import assert_close
from mmconv.verify.onnx_runner import OnnxRunner

from ..ir_cases import CASES, Case

#: Every opset where an emitted op changes, and the one before it (so each case's
#: minimum opset is tested from both sides).
OPSETS = (7, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 21)


# -- the tests --------------------------------------------------------------------
def _run(c: Case, opset: int) -> list[np.ndarray]:
    model = build_model(c.graph, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    return OnnxRunner(model).run(c.feeds)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name: str, opset: int) -> None:
    c = CASES[name]()
    if opset < c.min_opset:
        with pytest.raises(UnsupportedError, match=f"node '{c.node}'.*opset"):
            build_model(c.graph, opset=opset)
        return
    got = _run(c, opset)
    assert len(got) == len(c.expected)
    for i, (want, have) in enumerate(zip(c.expected, got, strict=True)):
        want = np.asarray(want)
        if want.dtype == bool or want.dtype.kind in "iu":
            assert have.dtype == want.dtype, (have.dtype, want.dtype)
            np.testing.assert_array_equal(have, want)
        else:
            assert_close(want.astype(have.dtype), have, name=f"{name} output {i}")


def test_every_ir_op_has_a_handler() -> None:
    missing = [s.name for s in all_schemas() if s.name not in HANDLERS]
    assert not missing, f"IR ops without an ONNX emitter handler: {missing}"


def test_every_ir_op_has_a_case() -> None:
    covered = {n.op for build in CASES.values() for n in build().graph.nodes}
    missing = sorted(s.name for s in all_schemas() if s.name not in covered)
    assert not missing, f"IR ops without a numeric ONNX emitter test: {missing}"
