"""Every IR op case (tests/emitters/ir_cases.py) through the Keras emitter, against numpy.

Each case's graph is turned into Keras code, the code is run to build the model
(the same path mmtocode + mmtomodel take) and its outputs are compared with the
case's numpy oracle.  Ops or op variants Keras cannot express must fail with an
UnsupportedError naming the node; those sets are explicit, so a regression or a
new gap shows up here.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.emitters.keras import HANDLERS, build_model, missing_handlers
from mmconv.errors import UnsupportedError
from mmconv.ir import all_schemas
from mmconv.verify.compare import assert_close

try:
    from ..ir_cases import CASES
except ImportError:  # the catalogue's former home
    from ..onnx.test_onnx_ops import CASES  # type: ignore[no-redef]

keras = pytest.importorskip("keras")

#: IR ops with no Keras handler at all (reported per node by the builder).
NO_HANDLER = {"MaxRoiPool"}
#: Cases whose op has a handler but whose variant Keras cannot express.
UNSUPPORTED_CASES = {
    "avgpool_dilated": "dilated pooling",
    "maxpool_dilated": "dilated pooling",
    "conv_transpose": "grouped transposed convolution",
    "batchnorm_per_element_runtime_scale": "must be a weight",
    "max_roi_pool": "no Keras emitter",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name: str) -> None:
    c = CASES[name]()
    if name in UNSUPPORTED_CASES:
        with pytest.raises(UnsupportedError, match=UNSUPPORTED_CASES[name]) as info:
            build_model(c.graph)
        assert repr(c.node) in str(info.value) or c.node in str(info.value)
        return
    model, gen = build_model(c.graph)
    got = model([c.feeds[v.name] for v in c.graph.inputs])
    assert len(got) == len(c.expected)
    for out, want in zip(c.graph.outputs, c.expected, strict=True):
        have = np.asarray(got[out])
        want = np.asarray(want)
        assert have.shape == want.shape, (out, have.shape, want.shape)
        if want.dtype == bool or want.dtype.kind in "iu":
            assert have.dtype == want.dtype, (have.dtype, want.dtype)
            np.testing.assert_array_equal(have, want)
        else:
            assert_close(want.astype(have.dtype), have, name=f"{name}:{out}")
    # boundary only: a single-op graph transposes at most its inputs and outputs
    assert all(t.kind in ("input", "output") for t in gen.transposes), gen.transposes


def test_ops_without_handler_are_the_known_ones() -> None:
    assert set(missing_handlers()) == NO_HANDLER
    assert all((s.name in HANDLERS) != (s.name in NO_HANDLER) for s in all_schemas())


def test_every_ir_op_has_a_case() -> None:
    covered = {n.op for build in CASES.values() for n in build().graph.nodes}
    assert not sorted(s.name for s in all_schemas() if s.name not in covered)
