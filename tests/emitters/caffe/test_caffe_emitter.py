"""The Caffe emitter's files: schema, determinism, atomicity, hostile names, mmtomodel's
checks of its inputs, and the window fitting that makes Caffe's pools exact."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.emitters import get_emitter
from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe import code_to_model, emit_code, emit_model, model_paths
from mmconv.emitters.caffe.windows import caffe_pool_out, fit_axis
from mmconv.errors import ModelFormatError, UnsupportedError, UsageError
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close

from .. import reference as ref
from ..ir_cases import CASES, HOSTILE, conv_net, conv_net_reference, hostile_graph
from .conftest import run

X = np.random.default_rng(3).standard_normal((2, 3, 12, 12)).astype(np.float32)


def test_description() -> None:
    caffe = get_emitter("Caffe")
    assert caffe.name == "caffe" and caffe.model_suffixes == (".prototxt", ".caffemodel")
    assert [p.name for p in caffe.outputs("out/m.caffemodel")] == ["m.prototxt", "m.caffemodel"]
    with pytest.raises(UsageError, match="no option"):
        caffe.emit_model(conv_net(), "x", opset=9)


@pytest.mark.parametrize("given", ["m", "m.prototxt", "m.caffemodel", "m.PROTOTXT"])
def test_model_paths(given: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert model_paths(tmp_path / given) == (tmp_path / "m.prototxt", tmp_path / "m.caffemodel")
    assert model_paths(tmp_path / "m.v1") == (tmp_path / "m.v1.prototxt",
                                             tmp_path / "m.v1.caffemodel")


def test_files_are_caffe_netparameters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The caffemodel is a binary NetParameter with every layer's blobs; the prototxt the
    same layers without blobs.  Names and BVLC field numbers are what Caffe reads."""
    emit_model(conv_net(), tmp_path / "net")
    binary = pb.NetParameter.FromString((tmp_path / "net.caffemodel").read_bytes())
    from google.protobuf import text_format

    text = text_format.Parse((tmp_path / "net.prototxt").read_text(), pb.NetParameter())
    assert binary.name == text.name == "convnet"
    assert [layer.name for layer in binary.layer] == [layer.name for layer in text.layer]
    assert all(not layer.blobs for layer in text.layer)
    layers = {layer.name: layer for layer in binary.layer}
    assert layers["data"].type == "Input"
    assert list(layers["data"].input_param.shape[0].dim) == [1, 3, 12, 12]
    conv1 = layers["conv1"]
    assert conv1.type == "Convolution" and list(conv1.bottom) == ["data"]
    assert list(conv1.blobs[0].shape.dim) == [8, 3, 3, 3]
    np.testing.assert_array_equal(np.array(conv1.blobs[0].data, np.float32),
                                  conv_net().weights["conv1/W"].ravel())
    # conv2's end-only pads: Caffe pads both sides by 1 and the first row and column are
    # cut; pool2 rounds down in the IR and up in Caffe: its last row and column are cut
    assert [layer.type for layer in binary.layer] == [
        "Input", "Convolution", "BatchNorm", "Scale", "ReLU", "Pooling", "Convolution",
        "Slice", "Slice", "Pooling", "Slice", "Slice", "Flatten", "InnerProduct", "Softmax"]
    assert layers["conv2/convolution"].convolution_param.pad_h == 1
    assert list(layers["conv2/crop"].slice_param.slice_point) == [1]
    # BVLC field numbers on the wire: LayerParameter.convolution_param is field 106
    raw = conv1.SerializeToString()
    tag = 106 << 3 | 2  # length-delimited
    assert bytes([tag & 0x7F | 0x80, tag >> 7]) in raw


def test_conv_net_runs_in_opencv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = conv_net()
    emit_model(g, tmp_path / "net")
    (got,) = run(tmp_path / "net", {"data": X}, ["prob"])
    assert_close(conv_net_reference(g, X), got)


def test_deterministic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for run_ in ("a", "b"):
        emit_model(conv_net(), tmp_path / run_ / "net")
        emit_code(conv_net(), tmp_path / run_ / "code.prototxt", tmp_path / run_ / "w.npy")
    for name in ("net.prototxt", "net.caffemodel", "code.prototxt", "w.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _unsupported_graph() -> Graph:
    g = Graph("bad")
    g.add_input("x", "float32", [None, 3, 4])
    g.add_node("Relu", ["x"], "ok")
    g.add_node("Floor", ["ok"], "floor")
    g.add_node("Slice", ["floor"], "rev", starts=(-1,), ends=(-100,), axes=(2,), steps=(-1,))
    g.outputs = ["rev"]
    return g


def test_failures_are_reported_together_and_write_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "keep.prototxt").write_text("old")
    with pytest.raises(UnsupportedError, match=r"'floor' \(Floor\)"):
        emit_model(_unsupported_graph(), tmp_path / "keep")
    g = _unsupported_graph()
    g.nodes[1].op = "Relu"  # now only the reversing slice is refused, with the node named
    with pytest.raises(UnsupportedError, match=r"node 'rev' \(Slice\): steps \[-1\]"):
        emit_code(g, tmp_path / "c.prototxt", tmp_path / "c.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.prototxt"]
    assert (tmp_path / "keep.prototxt").read_text() == "old"


def test_hostile_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Names with quotes, newlines, slashes and keywords are strings in protobuf text
    format (escaped by it), so they neither break the prototxt nor change its layers."""
    g = hostile_graph()
    emit_model(g, tmp_path / "h")
    text = (tmp_path / "h.prototxt").read_text()
    assert text.count("\nlayer {") == len(pb.NetParameter.FromString(
        (tmp_path / "h.caffemodel").read_bytes()).layer)
    from google.protobuf import text_format

    net = text_format.Parse(text, pb.NetParameter())
    assert net.name == g.name
    names = {layer.name for layer in net.layer} | {t for layer in net.layer for t in layer.top}
    assert {v for v in HOSTILE if v in g.values and v not in g.weights} <= names
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    got = run(tmp_path / "h", {g.inputs[0].name: x}, g.outputs)
    w = [g.weights[n.inputs[1]] for n in g.nodes if n.op == "Dense"]
    y = x
    for m in w:
        y = y @ m.T
    y = np.maximum(y * g.weights[g.nodes[4].inputs[1]], 0)
    assert_close(y, got[1])
    assert_close(ref.softmax(y.astype(np.float64), 1).astype(np.float32), got[0])


def test_mmtomodel_checks_its_inputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    emit_code(conv_net(), tmp_path / "c.prototxt", tmp_path / "c.npy")
    code_to_model(tmp_path / "c.prototxt", tmp_path / "c.npy", tmp_path / "ok")
    (got,) = run(tmp_path / "ok", {"data": X}, ["prob"])
    assert_close(conv_net_reference(conv_net(), X), got)
    (tmp_path / "bad.prototxt").write_text("layer { nme: 'x' }")
    with pytest.raises(ModelFormatError, match=r"bad\.prototxt: not a Caffe prototxt"):
        code_to_model(tmp_path / "bad.prototxt", tmp_path / "c.npy", tmp_path / "x")
    np.savez(tmp_path / "extra.npz", **{"nolayer/0": np.zeros(2, np.float32)})
    with pytest.raises(ModelFormatError, match="names no layer"):
        code_to_model(tmp_path / "c.prototxt", tmp_path / "extra.npz", tmp_path / "x")
    np.savez(tmp_path / "gap.npz", **{"conv1/1": np.zeros(2, np.float32)})
    with pytest.raises(ModelFormatError, match=r"numbered \[1\]"):
        code_to_model(tmp_path / "c.prototxt", tmp_path / "gap.npz", tmp_path / "x")
    with np.load(tmp_path / "c.npy", allow_pickle=False) as data:
        fewer = {k: data[k] for k in data.files if k != "conv1/1"}
    np.savez(tmp_path / "fewer.npz", **fewer)
    with pytest.raises(ModelFormatError, match=r"layer 'conv1' \(Convolution\) needs 2 blob"):
        code_to_model(tmp_path / "c.prototxt", tmp_path / "fewer.npz", tmp_path / "x")
    (tmp_path / "junk.npy").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFormatError, match=r"junk\.npy"):
        code_to_model(tmp_path / "c.prototxt", tmp_path / "junk.npy", tmp_path / "x")
    assert not any(p.name.startswith("x") for p in tmp_path.iterdir())


# -- window fitting -----------------------------------------------------------------------
def test_caffe_pool_out_rounds_up_as_caffe() -> None:
    assert caffe_pool_out(6, 3, 2, 0) == 3  # ceil((6-3)/2)+1
    assert caffe_pool_out(5, 2, 2, 1) == 3  # the last window would start in the padding
    assert caffe_pool_out(7, 3, 2, 1) == 4


@pytest.mark.parametrize("size,k,s,pb_,pe,ceil", [
    (6, 3, 2, 0, 0, False), (7, 3, 2, 1, 0, True), (7, 3, 2, 0, 2, False), (9, 2, 2, 1, 1, True),
    (10, 3, 3, 2, 0, False), (5, 5, 1, 2, 2, False), (8, 3, 1, 0, 2, False),
])
def test_fit_axis_reproduces_the_ir_windows(size: int, k: int, s: int, pb_: int, pe: int,
                                            ceil: bool) -> None:
    span = size + pb_ + pe - k
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + pb_:
        out -= 1
    fit = fit_axis(size, k, s, pb_, out, pool=True, max_pad=k - 1)
    if fit is None:
        assert pb_ + s > k - 1  # no pad below the kernel starts the windows where the IR does
        return
    assert fit.pad == pb_ + fit.crop * s and fit.crop + out <= fit.size
    assert fit.size == caffe_pool_out(size, k, s, fit.pad)


def test_pool_cases_cover_floor_ceil_and_asymmetric_pads() -> None:
    names = {"maxpool_ceil", "maxpool_asymmetric_pads", "avgpool_pads_exclude",
             "avgpool_ceil_include_pad", "maxpool_1d_ceil_pads"}
    assert names <= set(CASES)  # each runs in OpenCV in test_caffe_ops


def test_per_element_scale_after_a_convolution(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A per-element BN (CNTK's default) after a conv: OpenCV would fuse a plain Scale into
    the conv assuming one factor per channel (and assert); the flattened Scale is not fused."""
    rng = np.random.default_rng(11)
    g = Graph("conv_bn_elem")
    g.add_input("x", "float32", [None, 3, 6, 6])
    g.add_weight("W", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    g.add_node("Conv", ["x", "W"], "conv", pads=(1, 1, 1, 1))
    params = {p: rng.uniform(0.5, 1.5, (4, 6, 6)).astype(np.float32)
              for p in ("scale", "B", "mean", "var")}
    for p, a in params.items():
        g.add_weight(f"bn/{p}", a)
    g.add_node("BatchNormalization", ["conv", *(f"bn/{p}" for p in params)], "bn",
               spatial=False)
    g.outputs = ["bn"]
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    emit_model(g, tmp_path / "m")
    (got,) = run(tmp_path / "m", {"x": x}, ["bn"])
    y = ref.conv(x, g.weights["W"], pads=(1, 1, 1, 1))
    want = (y - params["mean"]) / np.sqrt(params["var"] + 1e-5) * params["scale"] + params["B"]
    assert_close(want.astype(np.float32), got)


def _leaky_graph(threshold: float) -> Graph:
    """CNTK v1's leaky_relu, as the CNTK frontend reads it: where(x < t, 0.2 * x, x)."""
    g = Graph("leaky")
    g.add_input("x", "float32", [None, 5])
    g.add_weight("zero", np.array([threshold], np.float32))
    g.add_weight("alpha", np.array([0.2], np.float32))
    g.add_node("Less", ["x", "zero"], "less")
    g.add_node("Cast", ["less"], "as_float", to="float32")
    g.add_node("Cast", ["as_float"], "as_bool", to="bool")
    g.add_node("Mul", ["alpha", "x"], "scaled")
    g.add_node("Where", ["as_bool", "scaled", "x"], "select")
    g.outputs = ["select"]
    return g


def test_decomposed_leaky_relu_is_one_relu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    emit_model(_leaky_graph(0.0), tmp_path / "m")
    net = pb.NetParameter.FromString((tmp_path / "m.caffemodel").read_bytes())
    assert [(layer.type, layer.name) for layer in net.layer] == [("Input", "x"),
                                                                  ("ReLU", "select")]
    assert net.layer[1].relu_param.negative_slope == pytest.approx(0.2)
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]] * 2, np.float32)
    (got,) = run(tmp_path / "m", {"x": x}, ["select"])
    assert_close(np.where(x < 0, 0.2 * x, x), got)
    # another threshold is not a leaky ReLU: the comparison is refused, with its name
    with pytest.raises(UnsupportedError, match=r"'less' \(Less\)"):
        emit_model(_leaky_graph(1.0), tmp_path / "n")


@pytest.mark.parametrize("op,gate_first", [("Mul", False), ("Mul", True), ("Div", False),
                                           ("Div", True)])
def test_broadcast_product_of_computed_blobs(op: str, gate_first: bool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An SE block's x * gate[N, C, 1, 1]: a two-bottom Scale layer (Caffe broadcasts its
    second bottom over the trailing axes)."""
    g = Graph("se")
    g.add_input("x", "float32", [None, 4, 3, 5])
    g.add_node("GlobalAveragePool", ["x"], "gap")
    g.add_node("Sigmoid", ["gap"], "gate")
    g.add_node(op, ["gate", "x"] if gate_first else ["x", "gate"], "y")
    g.outputs = ["y"]
    emit_model(g, tmp_path / "m")
    x = np.random.default_rng(2).standard_normal((2, 4, 3, 5)).astype(np.float32)
    gate = 1 / (1 + np.exp(-x.mean(axis=(2, 3), keepdims=True)))
    a, b = (gate, x) if gate_first else (x, gate)
    (got,) = run(tmp_path / "m", {"x": x}, ["y"])
    assert_close((a * b if op == "Mul" else a / b).astype(np.float32), got)
    net = pb.NetParameter.FromString((tmp_path / "m.caffemodel").read_bytes())
    assert net.layer[-1].type == "Scale" and len(net.layer[-1].bottom) == 2


def test_decomposed_softmax_and_log_softmax(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """CNTK v1's softmax/log_softmax along an axis, as the frontend reads them (keepdims
    reductions and a broadcasting Sub no Caffe layer has): Softmax and Softmax + Log."""
    g = Graph("soft")
    g.add_input("x", "float32", [None, 5, 7])
    for tag, axis in (("s", 1), ("l", 2)):
        g.add_node("ReduceMax", ["x"], f"{tag}_max", axes=(axis,), keepdims=True)
        g.add_node("Sub", ["x", f"{tag}_max"], f"{tag}_shift")
        g.add_node("Exp", [f"{tag}_shift"], f"{tag}_exp")
        g.add_node("ReduceSum", [f"{tag}_exp"], f"{tag}_sum", axes=(axis,), keepdims=True)
    g.add_node("Reciprocal", ["s_sum"], "s_inv")
    g.add_node("Mul", ["s_exp", "s_inv"], "softmax")
    g.add_node("Log", ["l_sum"], "l_log")
    g.add_node("Sub", ["l_shift", "l_log"], "log_softmax")
    g.outputs = ["softmax", "log_softmax"]
    emit_model(g, tmp_path / "m")
    net = pb.NetParameter.FromString((tmp_path / "m.caffemodel").read_bytes())
    assert [layer.type for layer in net.layer] == ["Input", "Softmax", "Softmax", "Log"]
    assert [layer.softmax_param.axis for layer in net.layer[1:3]] == [1, 2]
    x = np.random.default_rng(4).standard_normal((2, 5, 7)).astype(np.float32) * 3
    got = run(tmp_path / "m", {"x": x}, g.outputs)
    assert_close(ref.softmax(x.astype(np.float64), 1).astype(np.float32), got[0])
    want = np.log(ref.softmax(x.astype(np.float64), 2)).astype(np.float32)
    assert_close(want, got[1])
