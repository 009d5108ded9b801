"""The layout pass on channels-last graphs written the way tf2onnx and layer-wise
importers write them: every graph is run in onnxruntime (through the ONNX emitter)
before and after the default passes, outputs must agree, and the Transposes left
are counted (only model inputs/outputs may keep one).  The last tests take real
tf2onnx exports through the ONNX frontend (skipped where that frontend is absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import run_default_passes
from mmconv.ir.passes.layout import channels_first_boundaries, count_transposes, optimize_layout
from mmconv.verify.compare import assert_close

onnx_emitter = pytest.importorskip("mmconv.emitters.onnx")
onnx_runner = pytest.importorskip("mmconv.verify.onnx_runner")

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _w(g: Graph, name: str, shape: tuple[int, ...], seed: int) -> str:
    return g.add_weight(name, _rng(seed).normal(size=shape).astype(np.float32))


def _run(graph: Graph, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return onnx_runner.run_onnx(onnx_emitter.build_model(graph).SerializeToString(), feed)


def _check(build: Callable[[], Graph], left: int, seed: int = 0) -> Graph:
    """Run ``build()`` before and after the default passes; ``left`` Transposes remain
    (any number when ``left`` is -1)."""
    before = infer_shapes(build())
    feed = {v.name: _rng(seed + 100).normal(size=[2 if d is None else d for d in v.shape])
            .astype(np.float32) for v in before.inputs}
    expected = _run(before, feed)
    after = run_default_passes(infer_shapes(build()))
    assert left == -1 or count_transposes(after) == left, [(n.op, n.name) for n in after.nodes]
    assert after.outputs == before.outputs
    got = _run(after, feed)
    for name, e, a in zip(after.outputs, expected, got, strict=True):
        assert e.shape == a.shape, name
        assert_close(e, a, name=name)
    return after


def _wrapped_conv(g: Graph, x: str, name: str, cin: int, cout: int, seed: int) -> str:
    """NHWC in, NHWC out: Transpose -> Conv(+bias as an Add) -> Transpose, as tf2onnx or a
    layer-wise Keras import writes a Conv2D."""
    t = g.add_node("Transpose", [x], f"{name}/to_nchw", perm=TO_NCHW).outputs[0]
    w = _w(g, f"{name}/W", (cout, cin, 3, 3), seed)
    c = g.add_node("Conv", [t, w], f"{name}/conv", pads=(1, 1, 1, 1)).outputs[0]
    b = _w(g, f"{name}/b", (cout, 1, 1), seed + 1)
    c = g.add_node("Add", [c, b], f"{name}/biased").outputs[0]
    return g.add_node("Transpose", [c], name, perm=TO_NHWC).outputs[0]


def _cnn() -> Graph:
    """conv -> relu -> +bias(NHWC [C]) -> conv -> maxpool (wrapped) -> concat(-1) with a
    residual -> softmax(-1) -> global mean over H, W -> Dense."""
    g = Graph("cnn")
    g.add_input("image", "float32", (None, 8, 8, 3))
    a = _wrapped_conv(g, "image", "conv1", 3, 4, 1)
    a = g.add_node("Relu", [a], "relu1").outputs[0]
    a = g.add_node("Add", [a, _w(g, "shift", (4,), 3)], "shift1").outputs[0]
    b = _wrapped_conv(g, a, "conv2", 4, 4, 5)
    t = g.add_node("Transpose", [b], "pool/to_nchw", perm=TO_NCHW).outputs[0]
    p = g.add_node("MaxPool", [t], "pool/pool", kernel_shape=(3, 3), strides=(1, 1),
                   pads=(1, 1, 1, 1)).outputs[0]
    p = g.add_node("Transpose", [p], "pool", perm=TO_NHWC).outputs[0]
    c = g.add_node("Concat", [p, a], "cat", axis=-1).outputs[0]
    c = g.add_node("Softmax", [c], "soft", axis=-1).outputs[0]
    m = g.add_node("ReduceMean", [c], "gap", axes=(1, 2), keepdims=False).outputs[0]
    g.add_node("Dense", [m, _w(g, "fc/W", (5, 8), 7), _w(g, "fc/b", (5,), 8)], "fc")
    g.outputs = ["fc"]
    return g


def test_channels_last_cnn_keeps_only_the_input_transpose() -> None:
    after = _check(_cnn, left=1)
    (t,) = [n for n in after.nodes if n.op == "Transpose"]
    assert t.inputs == ["image"]
    # the conv biases were fused (the Adds sat between Transposes before); the NHWC [C]
    # shift after the Relu became a [1, C, 1, 1] constant
    (shift,) = [n for n in after.nodes if n.op == "Add"]
    assert after.weights[shift.inputs[1]].shape == (1, 4, 1, 1)
    assert all(n.input(2) for n in after.nodes if n.op == "Conv")


def _residual() -> Graph:
    """A block whose NHWC output feeds both the next conv and the skip Add (fan-out)."""
    g = Graph("res")
    g.add_input("x", "float32", (None, 6, 6, 4))
    a = _wrapped_conv(g, "x", "c1", 4, 4, 11)
    r = g.add_node("Relu", [a], "r1").outputs[0]
    b = _wrapped_conv(g, r, "c2", 4, 4, 13)
    s = g.add_node("Add", [r, b], "skip").outputs[0]
    g.add_node("Sigmoid", [s], "y")
    g.add_node("Tanh", [r], "aux")
    g.outputs = ["y", "aux"]
    return g


def test_fan_out_and_skip_add_leave_boundary_transposes() -> None:
    after = _check(_residual, left=3)  # the input, and one per output
    for n in after.nodes:
        if n.op == "Transpose":
            assert n.inputs == ["x"] or n.outputs[0] in ("y", "aux"), n


def _flatten_classifier(kind: str) -> Callable[[], Graph]:
    def build() -> Graph:
        g = Graph("flat")
        g.add_input("x", "float32", (None, 5, 5, 3))
        a = _wrapped_conv(g, "x", "c1", 3, 6, 21)
        a = g.add_node("Relu", [a], "r").outputs[0]
        if kind == "flatten":
            f = g.add_node("Flatten", [a], "flat", axis=1).outputs[0]
        else:
            f = g.add_node("Reshape", [a], "flat", shape=(-1, 150)).outputs[0]
        if kind == "matmul":
            g.add_node("MatMul", [f, _w(g, "fc/W", (150, 7), 23)], "fc")
        else:
            g.add_node("Dense", [f, _w(g, "fc/W", (7, 150), 23)], "fc")
        g.outputs = ["fc"]
        return g
    return build


@pytest.mark.parametrize("kind", ["flatten", "reshape", "matmul"])
def test_nhwc_flatten_becomes_a_weight_permutation(kind: str) -> None:
    after = _check(_flatten_classifier(kind), left=1)
    flat = next(n for n in after.nodes if n.op in ("Flatten", "Reshape"))
    assert after.producers()[flat.inputs[0]].op == "Relu"


def _op_between(op: str, attrs: dict, extra: Callable[[Graph], list[str]] | None = None,
                out_perm: bool = True) -> Callable[[], Graph]:
    """x NCHW -> Transpose to NHWC -> op (NHWC attributes) -> Transpose back -> Relu."""
    def build() -> Graph:
        g = Graph(op)
        g.add_input("x", "float32", (None, 3, 4, 5))
        t = g.add_node("Transpose", ["x"], "t", perm=TO_NHWC).outputs[0]
        ins = [t, *(extra(g) if extra else [])]
        y = g.add_node(op, ins, "op", **attrs).outputs[0]
        if out_perm:
            y = g.add_node("Transpose", [y], "back", perm=TO_NCHW).outputs[0]
        g.add_node("Relu", [y], "out")
        g.outputs = ["out"]
        return g
    return build


CASES = {
    "Sigmoid": _op_between("Sigmoid", {}),
    "Clip": _op_between("Clip", {"min": -0.5, "max": 0.5}),
    "Mul_const_full": _op_between("Mul", {}, lambda g: [_w(g, "k", (4, 5, 3), 31)]),
    "Sub_const_row": _op_between("Sub", {}, lambda g: [_w(g, "k", (3,), 32)]),
    "Div_scalar": _op_between("Div", {}, lambda g: [g.add_weight("k", np.float32(2.5))]),
    "PRelu": _op_between("PRelu", {}, lambda g: [_w(g, "k", (1, 1, 3), 33)]),
    "Softmax": _op_between("Softmax", {"axis": 2}),
    "LogSoftmax_neg": _op_between("LogSoftmax", {"axis": -1}),
    "CumSum": _op_between("CumSum", {"axis": 1, "reverse": True}),
    "Pad": _op_between("Pad", {"pads": (0, 1, 0, 2, 0, 0, 3, 1)}),
    "Slice": _op_between("Slice", {"starts": (1, 0), "ends": (4, 2), "axes": (1, -1)}),
    "ReduceSum_keep": _op_between("ReduceSum", {"axes": (2,), "keepdims": True}),
    "ReduceMax_drop": _op_between("ReduceMax", {"axes": (1,), "keepdims": False},
                                  out_perm=False),
    "ArgMax_keep": _op_between("ArgMax", {"axis": -1, "keepdims": True}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_transposes_sink_through_and_cancel(name: str) -> None:
    # ArgMax's int64 output cannot feed Relu: compare its transposed-back output instead
    build = CASES[name]
    if name.startswith("ArgMax"):
        def build() -> Graph:
            g = CASES[name]()
            relu = g.nodes.pop()
            g.outputs = [relu.inputs[0]]
            return g
        after = _check(build, left=0)
    elif name == "ReduceMax_drop":
        # [N, W, C] is NHWC-ordered: one Transpose remains, sunk to the output
        after = _check(build, left=1)
        assert after.nodes[-1].op == "Transpose" and after.nodes[-1].outputs == ["out"]
        return
    else:
        after = _check(build, left=0)
    assert all(n.op != "Transpose" for n in after.nodes)


def test_concat_with_a_weight_operand() -> None:
    def build() -> Graph:
        g = Graph("cat")
        g.add_input("x", "float32", (2, 3, 4, 5))
        t = g.add_node("Transpose", ["x"], "t", perm=TO_NHWC).outputs[0]
        k = _w(g, "k", (2, 4, 5, 2), 41)
        y = g.add_node("Concat", [t, k], "cat", axis=3).outputs[0]
        y = g.add_node("Transpose", [y], "back", perm=TO_NCHW).outputs[0]
        g.add_node("Relu", [y], "out")
        g.outputs = ["out"]
        return g
    _check(build, left=0)


def test_merged_transposes_and_named_output_kept() -> None:
    def build() -> Graph:
        g = Graph("merge")
        g.add_input("x", "float32", (2, 3, 4, 5))
        a = g.add_node("Transpose", ["x"], "a", perm=(0, 2, 3, 1)).outputs[0]
        g.add_node("Transpose", [a], "b", perm=(0, 2, 1, 3))
        c = g.add_node("Transpose", ["x"], "c", perm=(0, 2, 3, 1)).outputs[0]
        g.add_node("Transpose", [c], "same", perm=(0, 3, 1, 2))
        g.outputs = ["b", "same"]
        return g
    after = _check(build, left=1)
    (t,) = [n for n in after.nodes if n.op == "Transpose"]
    assert t.inputs == ["x"] and t.attrs["perm"] == (0, 3, 2, 1)


def test_transpose_not_sunk_when_it_would_add_one() -> None:
    """A Transpose that also feeds a Conv stays: sinking it into the Relu next to it would
    add one after the Relu without removing any."""
    g = Graph("keep")
    g.add_input("x", "float32", (None, 4, 4, 3))
    t = g.add_node("Transpose", ["x"], "t", perm=TO_NCHW).outputs[0]
    g.add_node("Conv", [t, _w(g, "W", (2, 3, 1, 1), 51)], "conv")
    g.add_node("Relu", [t], "r")
    g.outputs = ["conv", "r"]
    infer_shapes(g)
    assert optimize_layout(g) == 0


def test_fan_out_to_outputs_only_is_not_split() -> None:
    """Readers that would each carry a copy of the Transpose to an output: splitting
    would turn one Transpose into two, so the graph stays as it is."""
    def build() -> Graph:
        g = Graph("fan")
        g.add_input("x", "float32", (None, 4, 4, 3))
        a = _wrapped_conv(g, "x", "c1", 3, 2, 71)
        g.add_node("Relu", [a], "r")
        g.add_node("Sigmoid", [a], "s")
        g.outputs = ["r", "s"]
        return g
    _check(build, left=2)  # the input's and the one the two outputs share


def _split_directions(g: Graph, y: str) -> None:
    """What tf2onnx writes after a bidirectional LSTM: the time-major [T, 2, N, H]
    output sliced per direction, each squeezed, concatenated on the last axis, and
    transposed back to batch-major; here from a batch-major [N, T, 2, H] value."""
    t = g.add_node("Transpose", [y], "y_time_major", perm=(1, 2, 0, 3)).outputs[0]
    parts = []
    for d in range(2):
        g.add_node("Slice", [t], f"dir{d}", starts=(d,), ends=(d + 1,), axes=(1,))
        parts.append(g.add_node("Reshape", [f"dir{d}"], f"squeeze{d}",
                                shape=(5, -1, 3)).outputs[0])
    g.add_node("Concat", parts, "both", axis=2)
    g.add_node("Transpose", ["both"], "out", perm=(1, 0, 2))
    g.outputs = ["out"]


def test_transposes_meeting_after_chains_are_split_and_cancel() -> None:
    """Copies of the Transpose sink down each Slice -> Reshape chain, meet at the Concat
    and cancel against the Transpose after it: no Transpose left."""
    def build() -> Graph:
        g = Graph("bidirectional")
        g.add_input("y", "float32", (None, 5, 2, 3))
        _split_directions(g, "y")
        return g
    _check(build, left=0)


def test_chains_reaching_different_ends_are_not_split() -> None:
    """Chains that do not meet (each direction its own output) keep the one Transpose."""
    g = Graph("apart")
    g.add_input("y", "float32", (None, 5, 2, 3))
    t = g.add_node("Transpose", ["y"], "t", perm=(1, 2, 0, 3)).outputs[0]
    for d in range(2):
        g.add_node("Slice", [t], f"dir{d}", starts=(d,), ends=(d + 1,), axes=(1,))
        g.add_node("Reshape", [f"dir{d}"], f"squeeze{d}", shape=(5, -1, 3))
    g.outputs = ["squeeze0", "squeeze1"]
    infer_shapes(g)
    assert optimize_layout(g) == 0


def test_channels_first_graph_is_untouched() -> None:
    g = Graph("plain")
    g.add_input("x", "float32", (None, 3, 4, 4))
    g.add_node("Conv", ["x", _w(g, "W", (2, 3, 1, 1), 52)], "conv")
    g.add_node("Relu", ["conv"], "r")
    g.outputs = ["r"]
    infer_shapes(g)
    assert optimize_layout(g) == 0


def _reshapes(kind: str) -> Callable[[], Graph]:
    """NHWC reshapes that only merge/split axes contiguous in NCHW, between Transposes:
    ``merge`` folds H, W into one axis around a Softmax over C; ``upsample`` is tf2onnx's
    NHWC nearest upsampling (unsqueeze, broadcast a new axis, merge it into H)."""
    def build() -> Graph:
        g = Graph(kind)
        g.add_input("x", "float32", (None, 4, 3, 5))
        t = g.add_node("Transpose", ["x"], "t", perm=TO_NHWC).outputs[0]
        if kind == "merge":
            y = g.add_node("Reshape", [t], "rows", shape=(0, 15, 4)).outputs[0]
            y = g.add_node("Softmax", [y], "soft", axis=-1).outputs[0]
            y = g.add_node("Reshape", [y], "back", shape=(0, 3, 5, 4)).outputs[0]
        else:
            y = g.add_node("Reshape", [t], "unsq", shape=(0, 3, 1, 5, 4)).outputs[0]
            y = g.add_node("Mul", [y, _w(g, "k", (1, 1, 2, 1, 1), 61)], "rep").outputs[0]
            y = g.add_node("Reshape", [y], "merged", shape=(-1, 6, 5, 4)).outputs[0]
        y = g.add_node("Transpose", [y], "to_nchw", perm=TO_NCHW).outputs[0]
        g.add_node("Relu", [y], "out")
        g.outputs = ["out"]
        return g
    return build


@pytest.mark.parametrize("kind", ["merge", "upsample"])
def test_transposes_sink_through_axis_merging_reshapes(kind: str) -> None:
    after = _check(_reshapes(kind), left=0)
    shapes = [n.attrs["shape"] for n in after.nodes if n.op == "Reshape"]
    if kind == "merge":
        assert shapes == [(-1, 4, 15), (-1, 4, 3, 5)]
    else:
        assert shapes == [(-1, 4, 3, 1, 5), (-1, 4, 6, 5)]


def test_reshape_mixing_axes_keeps_its_transpose() -> None:
    """Merging W and C (not contiguous in NCHW) cannot move: the Transpose stays."""
    g = Graph("mix")
    g.add_input("x", "float32", (None, 4, 3, 5))
    t = g.add_node("Transpose", ["x"], "t", perm=TO_NHWC).outputs[0]
    g.add_node("Reshape", [t], "rows", shape=(0, 3, 20))
    g.outputs = ["rows"]
    infer_shapes(g)
    assert optimize_layout(g) == 0


def _flat_classifier() -> Any:
    """Keras CNN with a residual Add and an NHWC Flatten before its Dense."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    x = inp = keras.Input((12, 12, 3), name="image")
    x = layers.Conv2D(6, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(4, 3, padding="same", name="conv2")(x)
    skip = layers.Conv2D(4, 1, name="proj")(layers.Activation("relu", name="act")(x))
    x = layers.Add(name="res")([x, skip])
    x = layers.Flatten(name="flat")(x)
    return keras.Model(inp, layers.Dense(7, name="fc")(x))


@pytest.mark.parametrize("net", ["small_cnn", "flat_classifier"])
def test_tf2onnx_channels_last_models_keep_only_the_input_transpose(net: str,
                                                                   tmp_path: Path) -> None:
    """Real tf2onnx exports of Keras CNNs (NHWC): through the ONNX frontend, the IR keeps
    one Transpose, at the input, and matches onnxruntime on the source file."""
    onnx_frontend = pytest.importorskip("mmconv.frontends.onnx")
    keras_nets = pytest.importorskip("tests.frontends.onnx.keras_nets")
    model = keras_nets.small_cnn() if net == "small_cnn" else _flat_classifier()
    path = keras_nets.to_onnx(model, tmp_path / f"{net}.onnx")
    graph = onnx_frontend.convert(str(path), None)
    transposes = [n for n in graph.nodes if n.op == "Transpose"]
    assert len(transposes) == 1 and transposes[0].inputs == [graph.inputs[0].name]
    x = _rng(5).standard_normal((2, *model.inputs[0].shape[1:])).astype(np.float32)
    (expected,) = onnx_runner.run_onnx(str(path), [x])
    (got,) = onnx_runner.run_onnx(onnx_emitter.build_model(graph).SerializeToString(), [x])
    assert_close(expected, got, name=net)


@pytest.mark.parametrize("op", ["BatchNormalization", "LRN", "Where"])
def test_channel_ops_sink_when_the_channel_axis_stays(op: str) -> None:
    """A Transpose that only swaps H and W passes BatchNormalization/LRN (per-channel
    on axis 1); Where takes a same-permutation Transpose on two inputs and a constant."""
    def build() -> Graph:
        g = Graph(op)
        g.add_input("x", "float32", (None, 3, 4, 5))
        t = g.add_node("Transpose", ["x"], "t", perm=(0, 1, 3, 2)).outputs[0]
        if op == "BatchNormalization":
            params = [_w(g, f"p{i}", (3,), 80 + i) for i in range(4)]
            g.weights[params[3]] = np.abs(g.weights[params[3]]) + 0.5  # variance > 0
            y = g.add_node(op, [t, *params], "op").outputs[0]
        elif op == "LRN":
            y = g.add_node(op, [t], "op", size=3).outputs[0]
        else:
            s = g.add_node("Sigmoid", [t], "s").outputs[0]
            cond = g.add_weight("cond", _rng(85).random((3, 5, 4)) > 0.5)
            y = g.add_node(op, [cond, t, s], "op").outputs[0]
        y = g.add_node("Transpose", [y], "back", perm=(0, 1, 3, 2)).outputs[0]
        g.add_node("Relu", [y], "out")
        g.outputs = ["out"]
        return g
    _check(build, left=0)


def test_nhwc_swish_between_convolutions() -> None:
    """``a * sigmoid(a)`` on an NHWC value between two wrapped convolutions: the
    Transpose feeding both factors is split, sunk down both branches and merged again."""
    def build() -> Graph:
        g = Graph("swish")
        g.add_input("x", "float32", (None, 6, 6, 3))
        a = _wrapped_conv(g, "x", "c1", 3, 4, 91)
        s = g.add_node("Sigmoid", [a], "sig").outputs[0]
        m = g.add_node("Mul", [a, s], "swish").outputs[0]
        _wrapped_conv(g, m, "c2", 4, 2, 93)
        g.outputs = ["c2"]
        return g
    _check(build, left=2)  # the input's and the output's


def _random_nhwc_graph(seed: int) -> Graph:
    """A random DAG over NHWC values of one shape: wrapped 1x1 convolutions and pools
    (Transpose in and out), unary ops, binary ops of two earlier values, per-channel
    constants, softmax over channels; one or two outputs."""
    rng = _rng(seed)
    g = Graph(f"random{seed}")
    g.add_input("x", "float32", (None, 4, 5, 3))
    values = ["x"]
    for k in range(int(rng.integers(6, 14))):
        kind = rng.choice(["conv", "pool", "unary", "binary", "const", "softmax"])
        a = values[int(rng.integers(len(values)))]
        name = f"n{k}"
        if kind == "conv":
            t = g.add_node("Transpose", [a], f"{name}/in", perm=TO_NCHW).outputs[0]
            w = _w(g, f"{name}/W", (3, 3, 1, 1), seed * 100 + k)
            c = g.add_node("Conv", [t, w], f"{name}/conv").outputs[0]
            y = g.add_node("Transpose", [c], name, perm=TO_NHWC).outputs[0]
        elif kind == "pool":
            t = g.add_node("Transpose", [a], f"{name}/in", perm=TO_NCHW).outputs[0]
            c = g.add_node("MaxPool", [t], f"{name}/pool", kernel_shape=(3, 3),
                           pads=(1, 1, 1, 1)).outputs[0]
            y = g.add_node("Transpose", [c], name, perm=TO_NHWC).outputs[0]
        elif kind == "unary":
            y = g.add_node(str(rng.choice(["Relu", "Sigmoid", "Tanh", "Neg"])), [a],
                           name).outputs[0]
        elif kind == "binary":
            b = values[int(rng.integers(len(values)))]
            y = g.add_node(str(rng.choice(["Add", "Mul", "Sub", "Max"])), [a, b],
                           name).outputs[0]
        elif kind == "const":
            y = g.add_node("Add", [a, _w(g, f"{name}/c", (3,), seed * 100 + k)],
                           name).outputs[0]
        else:
            y = g.add_node("Softmax", [a], name, axis=-1).outputs[0]
        values.append(y)
    g.outputs = list(dict.fromkeys([values[-1], values[int(rng.integers(1, len(values)))]]))
    return g


@pytest.mark.parametrize("seed", range(12))
def test_random_nhwc_graphs_keep_their_numbers_and_lose_transposes(seed: int) -> None:
    before = count_transposes(_random_nhwc_graph(seed))
    after = _check(lambda: _random_nhwc_graph(seed), left=-1, seed=seed)
    assert count_transposes(after) <= before


# -- channels_first_boundaries (--channelsFirstIO) -----------------------------------------
def _channels_first_io(build: Callable[[], Graph], seed: int = 0
                       ) -> tuple[Graph, dict[str, Any], dict[str, Any]]:
    """``build()`` run in onnxruntime as it is (the source: NHWC), and after the default
    passes and :func:`channels_first_boundaries` on the same data with the changed inputs
    fed transposed by their perm; the changed outputs must equal the source's transposed
    the same way."""
    before = infer_shapes(build())
    feed = {v.name: _rng(seed + 100).normal(size=[2 if d is None else d for d in v.shape])
            .astype(np.float32) for v in before.inputs}
    expected = _run(before, feed)
    after = run_default_passes(infer_shapes(build()))
    ins, outs = channels_first_boundaries(after)
    infer_shapes(after)
    assert after.outputs == before.outputs
    got = _run(after, {k: np.ascontiguousarray(a.transpose(ins[k])) if k in ins else a
                       for k, a in feed.items()})
    for name, e, a in zip(after.outputs, expected, got, strict=True):
        want = e.transpose(outs[name]) if name in outs else e
        assert want.shape == a.shape, name
        assert_close(want, a, name=name)
    return after, ins, outs


def test_channels_first_io_removes_the_input_transpose() -> None:
    after, ins, outs = _channels_first_io(_cnn)
    assert (ins, outs) == ({"image": TO_NCHW}, {})
    assert count_transposes(after) == 0
    assert after.inputs[0].shape == (None, 3, 8, 8)


def test_channels_first_io_removes_output_transposes_keeping_names() -> None:
    after, ins, outs = _channels_first_io(_residual)
    assert (ins, outs) == ({"x": TO_NCHW}, {"y": TO_NCHW, "aux": TO_NCHW})
    assert count_transposes(after) == 0
    assert after.value("y").shape == (None, 4, 6, 6)


def _passthrough() -> Graph:
    """An NCHW view of the input is itself an output (its name must survive)."""
    g = Graph("pass")
    g.add_input("x", "float32", (None, 5, 5, 2))
    t = g.add_node("Transpose", [g.inputs[0].name], "t", perm=TO_NCHW).outputs[0]
    g.add_node("Relu", [t], "r")
    g.outputs = ["t", "r"]
    return g


def test_channels_first_io_input_transpose_that_is_an_output() -> None:
    after, ins, outs = _channels_first_io(_passthrough)
    assert (ins, outs) == ({"x": TO_NCHW}, {})
    assert count_transposes(after) == 0


def _mixed_reader() -> Graph:
    """``x`` feeds a conv (through a Transpose) and, NHWC, a reduction: not movable."""
    g = Graph("mixed")
    g.add_input("x", "float32", (None, 4, 4, 3))
    g.add_input("v", "float32", (None, 3))
    a = _wrapped_conv(g, "x", "c1", 3, 3, 31)
    m = g.add_node("ReduceMean", ["x"], "m", axes=(1, 2), keepdims=False).outputs[0]
    m = g.add_node("Add", [m, "v"], "mv").outputs[0]
    g.add_node("ReduceMean", [a], "y", axes=(1, 2), keepdims=False)
    g.add_node("Mul", ["y", m], "z")
    g.outputs = ["z"]
    return g


def test_channels_first_io_warns_and_keeps_an_input_read_channels_last(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="mmconv"):
        after, ins, outs = _channels_first_io(_mixed_reader)
    assert (ins, outs) == ({}, {})
    assert after.inputs[0].shape == (None, 4, 4, 3)
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("mmconv")]
    assert len(warnings) == 1 and "'x'" in warnings[0] and "'v'" not in warnings[0], warnings
