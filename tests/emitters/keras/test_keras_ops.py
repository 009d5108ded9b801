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
from mmconv.ir import Graph, all_schemas
from mmconv.verify.compare import assert_close

from .. import reference as ref
from ..ir_cases import CASES
from .outputs import named

keras = pytest.importorskip("keras")

#: IR ops with no Keras handler at all (reported per node by the builder).
NO_HANDLER: set[str] = set()
#: Cases whose op has a handler but whose variant Keras cannot express.
UNSUPPORTED_CASES = {
    "avgpool_dilated": "dilated pooling",
    "maxpool_dilated": "dilated pooling",
    "conv_transpose": "grouped transposed convolution",
    "batchnorm_per_element_runtime_scale": "must be a weight",
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
    got = named(model([c.feeds[v.name] for v in c.graph.inputs]), c.graph.outputs)
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


# -- MaxRoiPool beyond the catalogue case: ONNX Runtime's kernel is the oracle --------
def _roi_graph(then_conv: bool) -> tuple[Graph, np.ndarray | None]:
    """x [N, 3, 9, 11] and a dynamic number of ROIs; optionally a 1x1 conv after."""
    g = Graph("roi")
    g.add_input("x", "float32", [None, 3, 9, 11])
    g.add_input("rois", "float32", [None, 5])
    g.add_node("MaxRoiPool", ["x", "rois"], "pool", pooled_shape=(3, 4), spatial_scale=0.5)
    g.outputs = ["pool"]
    if not then_conv:
        return g, None
    w = np.random.default_rng(5).standard_normal((2, 3, 1, 1)).astype(np.float32)
    g.add_weight("w", w)
    g.add_node("Conv", ["pool", "w"], "conv")
    g.outputs = ["conv"]
    return g, w


#: (batch index, x1, y1, x2, y2) before the 0.5 scale: halves that round away from zero
#: (1 -> 0.5 -> 1, -1 -> -0.5 -> -1, 3 -> 1.5 -> 2), boxes past every edge, a reversed
#: (malformed -> 1x1) box, one entirely outside the map (every bin empty -> 0), boxes
#: smaller than the pooled grid (bins repeat) and the whole map
ROIS = np.asarray([
    [0, 1.0, 3.0, 9.0, 7.0], [1, -1.0, -3.0, 5.0, 30.0], [1, 16.0, 10.0, 2.0, 4.0],
    [0, 40.0, 30.0, 50.0, 40.0], [1, 4.0, 4.0, 6.0, 5.0], [0, 0.0, 0.0, 21.0, 17.0],
    [1, 20.9, 16.9, 21.1, 17.1], [0, 2.2, 6.6, 13.4, 9.8]], dtype=np.float32)


def _onnx_max_roi_pool(x: np.ndarray, rois: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    node = helper.make_node("MaxRoiPool", ["x", "rois"], ["y"], pooled_shape=[3, 4],
                            spatial_scale=0.5)
    model = helper.make_model(helper.make_graph(
        [node], "roi", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
                        helper.make_tensor_value_info("rois", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
        opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x, "rois": rois})[0]


def test_max_roi_pool_edges_and_dynamic_roi_count_match_onnxruntime() -> None:
    x = np.random.default_rng(8).standard_normal((2, 3, 9, 11)).astype(np.float32)
    g, _ = _roi_graph(then_conv=False)
    model, gen = build_model(g)
    assert [t.kind for t in gen.transposes] == ["input"]  # the result is [R, C, ph, pw]
    for rois in (ROIS, ROIS[:3], ROIS[5:6]):  # one model, any number of ROIs
        want = _onnx_max_roi_pool(x, rois)
        assert np.array_equal(want, ref.max_roi_pool(x, rois, (3, 4), 0.5))
        have = np.asarray(model([x, rois]))
        np.testing.assert_array_equal(have, want)  # a max of inputs or 0: exact
    assert not np.asarray(model([x, ROIS]))[3].any()  # outside: every bin 0


def test_max_roi_pool_feeding_a_conv_stays_channels_last() -> None:
    x = np.random.default_rng(9).standard_normal((2, 3, 9, 11)).astype(np.float32)
    g, w = _roi_graph(then_conv=True)
    model, gen = build_model(g)
    assert [t.kind for t in gen.transposes] == ["input", "output"]
    want = ref.conv(ref.max_roi_pool(x, ROIS, (3, 4), 0.5), w).astype(np.float32)
    assert_close(want, np.asarray(model([x, ROIS])), name="roi+conv")


@pytest.mark.parametrize(("x_shape", "b_shape"), [
    ((None, 4, 4), (4, 1)), ((None, 3, 5, 3), (3, 1, 1)), ((None, 2), (2, 2)),
    ((None, 5, 4), (4,))])
def test_add_broadcasts_where_keras_ops_add_would_bias_add(x_shape: tuple, b_shape: tuple
                                                          ) -> None:
    """Keras 3's TF ``ops.add`` treats a vector-like second operand matching axis 1 or the
    last axis as a bias of that axis; the emitter must broadcast like numpy anyway."""
    rng = np.random.default_rng(4)
    g = Graph("add")
    g.add_input("x", "float32", list(x_shape))
    b = rng.standard_normal(b_shape).astype(np.float32)
    g.add_weight("b", b)
    g.add_node("Add", ["x", "b"], "y")
    g.outputs = ["y"]
    x = rng.standard_normal((2, *x_shape[1:])).astype(np.float32)
    model, _ = build_model(g)
    assert_close(x + b, np.asarray(model([x])), name=str(x_shape))


@pytest.mark.parametrize("form, why", [
    ("resize_batch", "dynamic"), ("gather_runtime_dynamic_axis", "dynamic axis"),
])
def test_new_op_forms_refused(form: str, why: str) -> None:
    """A resize of the batch, runtime indices into a dynamic axis: refused per node."""
    from ..ir_cases import refused_forms

    with pytest.raises(UnsupportedError, match=why) as info:
        build_model(refused_forms()[form])
    assert "node 'n'" in str(info.value)


@pytest.mark.parametrize("form", ["tile_batch", "expand_moves_batch"])
def test_new_op_forms_on_the_batch_run(form: str) -> None:
    """Keras tiles along the batch and expands it into a new leading axis."""
    g = refused_forms_graph(form)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) if form == "expand_moves_batch" \
        else np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    model, _ = build_model(g)
    have = np.asarray(model([x]))
    want = np.tile(x, (2, 1, 1)) if form == "tile_batch" else np.broadcast_to(x, (2, 2, 3))
    np.testing.assert_array_equal(have, want)


def refused_forms_graph(form: str) -> Graph:
    from ..ir_cases import refused_forms

    return refused_forms()[form]
