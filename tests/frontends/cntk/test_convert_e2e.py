"""End to end against real CNTK: fixture (.v2.model) -> IR -> ONNX -> onnxruntime vs the
outputs CNTK 2.7 computed for the same inputs (``<name>.io.npz``, batch of 2)."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.errors import MmconvError, UnsupportedError
from mmconv.frontends.cntk import convert
from mmconv.verify.compare import assert_close
from tests.frontends.cntk._common import FIXTURES, fixture

onnx_emitter = pytest.importorskip("mmconv.emitters.onnx")
onnx_runner = pytest.importorskip("mmconv.verify.onnx_runner")

#: Fixtures whose every op converts and must match CNTK.
SUPPORTED = [
    "act_elu", "act_hardmax", "act_leaky_relu", "act_param_relu", "act_selu",
    "act_sigmoid_tanh", "act_softmax_axis", "bn_per_element", "combine_two", "conv1d",
    "conv_depthwise", "conv_dilation", "conv_even_kernel", "conv_even_kernel_strided",
    "conv_groups", "conv_ops_autopad_mixed", "conv_strides", "conv_valid", "convnet",
    "dense_chw", "float16", "inception_mini", "math_binary", "math_unary_positive", "mlp",
    "pool_explicit_pads", "pool_variants", "residual", "with_loss",
]
#: Fixtures using ops not converted yet: they must fail with one clear UnsupportedError.
NOT_YET = {
    "act_softplus": "LogPlus", "alexnet_mini": "norm1", "compare_select": "Select",
    "conv_explicit_pads": "Pad", "conv_transpose": "ConvolutionTranspose",
    "conv_transpose_explicit_pads": "ConvolutionTranspose",
    "fast_rcnn_mini": "ROIPooling", "layer_norm": "ReduceElements", "lrn": "lrn",
    "math_unary": "Clip", "reductions": "ReduceElements", "roipooling": "ROIPooling",
    "shape_ops": "Slice", "times": "TransposeTimes",
}


def _io(name: str) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    io = np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False)
    in_names = [str(n) for n in io["input_names"]]
    out_names = [str(n) for n in io["output_names"]]
    ins = [io[f"in_{i}"] for i in range(len(in_names))]
    outs = [io[f"out_{i}"] for i in range(len(out_names))]
    return ins, outs, in_names, out_names


@pytest.mark.parametrize("name", SUPPORTED)
def test_matches_cntk(name: str) -> None:
    graph = convert(None, str(fixture(name)))
    ins, refs, in_names, out_names = _io(name)
    assert graph.metadata["source_framework"] == "cntk"
    assert graph.metadata["layout"] == "NCHW"
    assert graph.outputs == out_names or len(graph.outputs) == len(out_names) or (
        name == "with_loss")
    feed = {n: x for n, x in zip(in_names, ins, strict=True)
            if n in {v.name for v in graph.inputs}}
    model = onnx_emitter.build_model(graph)
    got = onnx_runner.run_onnx(model.SerializeToString(), feed)
    by_name = dict(zip(graph.outputs, got, strict=True))
    for out, ref in zip(out_names, refs, strict=True):
        if out not in by_name:
            continue  # a training-only output (with_loss) is dropped on purpose
        assert_close(ref, by_name[out], name=f"{name}:{out}")


def test_float64_ir_shapes_match_cntk() -> None:
    """onnxruntime has no float64 Conv, so float64 is checked at the IR level here."""
    graph = convert(None, str(fixture("float64")))
    _, refs, _, out_names = _io("float64")
    for out, ref in zip(out_names, refs, strict=True):
        value = graph.values[out]
        assert value.dtype == "float64"
        assert value.shape[1:] == ref.shape[1:]


@pytest.mark.parametrize("name", sorted(NOT_YET))
def test_unsupported_ops_fail_clearly(name: str) -> None:
    with pytest.raises(UnsupportedError, match=NOT_YET[name]):
        convert(None, str(fixture(name)))


def test_every_fixture_is_classified() -> None:
    names = {p.name[: -len(".v2.model")] for p in FIXTURES.glob("*.v2.model")}
    unknown = names - set(SUPPORTED) - set(NOT_YET) - {"float64"}
    assert not unknown, f"new fixtures to classify: {sorted(unknown)}"


def test_training_outputs_dropped_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    graph = convert(None, str(fixture("with_loss")))
    err = capsys.readouterr().err
    assert "dropped training-only outputs" in err and "CrossEntropyWithSoftmax" in err
    assert "labels" in err
    assert [v.name for v in graph.inputs] == ["features"]


def test_dst_node_name_picks_outputs() -> None:
    graph = convert(None, str(fixture("combine_two")), output_names=["head_a"])
    assert graph.outputs == ["head_a"]
    with pytest.raises(MmconvError, match="nope"):
        convert(None, str(fixture("combine_two")), output_names=["nope"])


def test_input_shapes_checked() -> None:
    graph = convert(None, str(fixture("convnet")), input_shapes=[(3, 32, 32)])
    assert graph.inputs[0].shape == (None, 3, 32, 32)
    with pytest.raises(MmconvError, match="features"):
        convert(None, str(fixture("convnet")), input_shapes=[(3, 64, 64)])


def test_names_follow_layers() -> None:
    graph = convert(None, str(fixture("convnet")))
    assert any(k.endswith("/W") for k in graph.weights)
    assert any(k.endswith("/mean") for k in graph.weights)
    assert not any(n.op in ("Identity", "Add") for n in graph.nodes)  # dropout gone, bias fused
    convs = [n for n in graph.nodes if n.op == "Conv"]
    assert convs and any(n.input(2) for n in convs)  # conv1 has a bias (conv2 has none)
