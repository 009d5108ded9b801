"""Every IR op case (tests/emitters/ir_cases.py) through the Caffe emitter, run in OpenCV.

Each case's graph is written as ``NAME.prototxt`` + ``NAME.caffemodel`` by
``emit_model`` and run with ``cv2.dnn.readNetFromCaffe`` (the ``--verify``
runner); outputs are compared with the case's numpy oracle.  What Caffe
cannot express must fail with an UnsupportedError naming the node, and those
sets are pinned here, so a regression or a new gap shows up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.caffe import EMITTER, HANDLERS, emit_model, missing_handlers
from mmconv.emitters.caffe.no_layer import NO_LAYER_REASONS
from mmconv.errors import UnsupportedError
from mmconv.ir import all_schemas
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES, RECURRENT_CASES, SCAN_CASES, refused_forms
from .conftest import run

#: IR ops with no Caffe handler: Caffe (as OpenCV reads it) has no layer for them.
NO_HANDLER = {
    "ArgMax", "ArgMin", "CumSum", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual",
    "Not", "Where", "Ceil", "Floor", "Round", "Sign", "Hardmax", "LayerNormalization",
    "ReduceLogSumExp", "ReduceProd",
    # ops added for the ONNX/Keras/PyTorch sources
    "And", "Or", "Xor", "Mod", "Sin", "Cos", "Erf", "Gelu", "Gather", "Expand", "Tile",
    "DepthToSpace", "SpaceToDepth", "InstanceNormalization",
    # recurrent layers (docs/recurrent.md, mmconv/emitters/caffe/no_layer.py): no LSTM
    # file reads the same in BVLC Caffe and OpenCV 4 (bottoms x, cont / x or x, h0, c0;
    # blobs W_xc, b_c, W_hc / Wh, Wx, b, h0, c0), BVLC Caffe has no GRU, OpenCV 4 does
    # not register Caffe's RNN; the general loop (Scan): Caffe has no loop construct
    "LSTM", "GRU", "RNN", "Scan",
}
#: Cases whose op has a handler but whose variant Caffe cannot express: the reason shown.
UNSUPPORTED_CASES = {
    "conv_transpose": "output_padding beyond the end padding",
    "maxpool_dilated": "dilated pooling",
    "avgpool_dilated": "dilated pooling",
    "batchnorm_per_element_runtime_scale": "computed at run time",
    "prelu_broadcast_out": "broadcasts the input",
    "pow": "raising a blob to a computed power",
    "max_broadcast": "Eltwise needs equal shapes",
    "min_broadcast": "Eltwise needs equal shapes",
    "clip_int32": "int32 inputs have no Caffe blob",
    "flatten_int64": "int64 inputs have no Caffe blob",
    "concat_channels": "is a constant",
    "slice_steps": "cuts contiguous pieces",
    "slice_reversed_to_start": "cuts contiguous pieces",
    "pad_constant_value": "no padding layer",
    "pad_reflect": "no padding layer",
    "pad_edge": "no padding layer",
    "cast_bool_to_float": "bool inputs have no Caffe blob",
    "cast_float_to_int64": "Caffe blobs hold floats only",
    "reduce_max_all": "reduces over the batch axis",
    "resize_nearest_sizes_round_prefer_ceil": "not an integer nearest upscaling",
    "resize_nearest_1d_sizes_asymmetric": "only nearest resizing of 2-D feature maps",
    **{f"resize_linear_{v}": "only nearest resizing of 2-D feature maps" for v in (
        "2x_half_pixel", "align_corners_sizes", "asymmetric_2x", "pytorch_half_pixel_down",
        "fractional_scales", "3d_half_pixel")},
}


def _no_handler_case(name: str) -> bool:
    return any(n.op in NO_HANDLER for n in CASES[name]().graph.nodes)


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name: str, tmp_path: Path) -> None:
    c = CASES[name]()
    path = tmp_path / "model"
    if name in UNSUPPORTED_CASES or _no_handler_case(name):
        match = UNSUPPORTED_CASES.get(name, "no Caffe emitter for")
        with pytest.raises(UnsupportedError, match=match) as info:
            emit_model(c.graph, path)
        assert c.node in str(info.value) or "input" in str(info.value)
        assert list(tmp_path.iterdir()) == []  # nothing half-written
        return
    emit_model(c.graph, path)
    got = run(path, c.feeds, c.graph.outputs, c.graph)
    assert len(got) == len(c.expected)
    for out, want, have in zip(c.graph.outputs, c.expected, got, strict=True):
        want = np.asarray(want)
        assert have.shape == want.shape, (out, have.shape, want.shape)
        # Caffe computes in float32: a float64 graph is held to float32's tolerance
        rtol = 1e-4 if want.dtype == np.float64 else None
        assert_close(want, have.astype(want.dtype), rtol=rtol, name=f"{name}:{out}")


def test_ops_without_handler_are_the_known_ones() -> None:
    assert set(missing_handlers()) == NO_HANDLER
    assert all((s.name in HANDLERS) != (s.name in NO_HANDLER) for s in all_schemas())
    assert EMITTER.handlers is HANDLERS


def test_every_expressible_case_runs() -> None:
    """The pinned refusals are refusals, not the bulk: most cases run in OpenCV."""
    runnable = [n for n in CASES if n not in UNSUPPORTED_CASES and not _no_handler_case(n)]
    assert len(runnable) >= 80, len(runnable)


def test_refused_forms_of_the_new_ops(tmp_path: Path) -> None:
    """The new ops' forms every target decides on (ir_cases.refused_forms)."""
    want = {"resize_batch": "resizes the batch or channel axis",
            "tile_batch": "no Caffe emitter", "expand_moves_batch": "no Caffe emitter",
            "gather_runtime_dynamic_axis": "no Caffe emitter"}
    forms = refused_forms()
    assert set(forms) == set(want)
    for name, graph in forms.items():
        with pytest.raises(UnsupportedError, match=want[name]):
            emit_model(graph, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(RECURRENT_CASES | SCAN_CASES))
def test_recurrent_refusal_says_why(name: str, tmp_path: Path) -> None:
    """LSTM/GRU/RNN/Scan are refused up front in one line that names the node and says
    why Caffe has no form for it (BVLC Caffe and OpenCV 4 read no common file)."""
    c = CASES[name]()
    ops = {n.op for n in c.graph.nodes} & set(NO_LAYER_REASONS)
    assert ops, name
    with pytest.raises(UnsupportedError) as info:
        emit_model(c.graph, tmp_path / "model")
    text = str(info.value)
    assert "\n" not in text and "no Caffe emitter for" in text
    for node in c.graph.nodes:
        if node.op in ops:
            assert f"{node.name!r} ({node.op}: {NO_LAYER_REASONS[node.op]})" in text, text
    assert list(tmp_path.iterdir()) == []


def test_recurrent_reasons_cover_exactly_the_loops() -> None:
    assert set(NO_LAYER_REASONS) == {"LSTM", "GRU", "RNN", "Scan"} <= NO_HANDLER
    assert "W_xc, b_c, W_hc" in NO_LAYER_REASONS["LSTM"]
