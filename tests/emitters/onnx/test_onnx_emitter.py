"""The ONNX emitter as a whole: file output, names, dynamic batch, opsets, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

import mmconv.emitters.onnx as onnx_emitter
from mmconv.emitters import get_emitter
from mmconv.errors import MmconvError, UnsupportedError, UsageError
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close
from mmconv.verify.onnx_runner import OnnxRunner, run_onnx

from .. import reference as ref
from ..ir_cases import conv_net, conv_net_reference, dtypes_graph


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((3, 3, 12, 12)).astype(np.float32)


# -- output file --------------------------------------------------------------------
@pytest.mark.parametrize("opset", [9, None])
def test_emit_model_file_passes_checker_and_runs(tmp_path: Path, data: np.ndarray,
                                                 opset: int | None) -> None:
    g = conv_net()
    path = tmp_path / "out" / "model.onnx"  # the folder is created
    get_emitter("onnx").emit_model(g, path, opset=opset)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == (opset or onnx_emitter.DEFAULT_OPSET)
    assert_close(conv_net_reference(g, data), run_onnx(path, [data])[0])


def test_streamed_file_equals_in_memory_model(tmp_path: Path) -> None:
    """emit_model streams weights; the file must parse to exactly build_model's message."""
    g = dtypes_graph()
    weights = g.weights
    path = tmp_path / "d.onnx"
    onnx_emitter.emit_model(g, path, opset=13)
    loaded = onnx.load(str(path))
    assert loaded == onnx_emitter.build_model(g, 13)
    onnx.checker.check_model(loaded, full_check=True)
    x = np.ones((2, 3), np.float32)
    outs = run_onnx(path, [x])
    np.testing.assert_allclose(outs[0], 2.5 * (x @ weights["f32"].T))
    np.testing.assert_array_equal(outs[1], x + np.arange(3))
    for got, name in zip(outs[2:], g.outputs[2:], strict=True):
        assert got.dtype == weights[name].dtype and np.array_equal(got, weights[name])


def test_dynamic_batch(tmp_path: Path, data: np.ndarray) -> None:
    g = conv_net()
    path = tmp_path / "m.onnx"
    onnx_emitter.emit_model(g, path)
    model = onnx.load(str(path))
    in_dims = model.graph.input[0].type.tensor_type.shape.dim
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    assert in_dims[0].dim_param == "N" and [d.dim_value for d in in_dims[1:]] == [3, 12, 12]
    assert out_dims[0].dim_param == "N" and out_dims[1].dim_value == 10
    runner = OnnxRunner(path)
    for batch in (1, 3):
        x = data[:batch]
        (got,) = runner.run({"data": x})
        assert got.shape == (batch, 10)
        assert_close(conv_net_reference(g, x), got)


def test_names_preserved() -> None:
    g = conv_net()
    model = onnx_emitter.build_model(g)
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] == ["prob"]
    assert [n.name for n in model.graph.node] == [n.name for n in g.nodes]
    assert [n.output[0] for n in model.graph.node] == [n.outputs[0] for n in g.nodes]
    init = {t.name: t for t in model.graph.initializer}
    assert set(init) == set(g.weights)
    # [C,1,1] BN statistics are stored as [C] under their IR names
    assert list(init["bn1/scale"].dims) == [8]
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(init["conv1/W"]),
                                  g.weights["conv1/W"])


def test_no_transpose_in_conv_net() -> None:
    for opset in (9, 17):
        ops = {n.op_type for n in onnx_emitter.build_model(conv_net(), opset).graph.node}
        assert "Transpose" not in ops
        assert ops == {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool",
                       "Flatten", "Gemm", "Softmax"}


def test_deterministic_bytes(tmp_path: Path) -> None:
    onnx_emitter.emit_model(conv_net(), tmp_path / "a.onnx")
    onnx_emitter.emit_model(conv_net(), tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_failing_emit_leaves_no_file(tmp_path: Path) -> None:
    g = Graph("bad")
    g.add_input("x", "float32", [None, 4])
    g.add_node("Round", ["x"], "round")  # Round needs opset 11
    g.outputs = ["round"]
    path = tmp_path / "bad.onnx"
    with pytest.raises(UnsupportedError, match=r"node 'round' \(Round\).*opset >= 11"):
        onnx_emitter.emit_model(g, path, opset=9)
    assert list(tmp_path.iterdir()) == []


def test_failing_emit_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    g = Graph("bad")
    g.add_input("x", "float32", [2])
    g.add_node("Where", ["x", "x", "x"], "w")
    g.outputs = ["w"]
    with pytest.raises(UnsupportedError):
        onnx_emitter.emit_model(g, path, opset=8)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# -- opsets and errors ----------------------------------------------------------------
@pytest.mark.parametrize("opset", [6, 22, 0])
def test_opset_out_of_range(opset: int) -> None:
    with pytest.raises(UnsupportedError, match=f"opset {opset} is not supported"):
        onnx_emitter.build_model(conv_net(), opset)


def test_all_problems_in_one_error() -> None:
    g = Graph("many")
    g.add_input("x", "float32", [None, 4])
    g.add_node("Round", ["x"], "r1")
    g.add_node("Sign", ["r1"], "s1")
    g.add_node("Relu", ["s1"], "ok")
    g.outputs = ["ok"]
    with pytest.raises(UnsupportedError) as info:
        onnx_emitter.build_model(g, 8)
    message = str(info.value)
    assert "2 nodes" in message and "'r1' (Round)" in message and "'s1' (Sign)" in message
    assert "\n" not in message


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no option"):
        onnx_emitter.emit_model(conv_net(), tmp_path / "m.onnx", opsett=9)
    assert list(tmp_path.iterdir()) == []


# -- opset-dependent forms (the numbers are in test_onnx_ops; here the structure) -------
def _ops(g: Graph, opset: int) -> list[str]:
    return [n.op_type for n in onnx_emitter.build_model(g, opset).graph.node]


def _single(op: str, shape: list[int | None], **attrs: object) -> Graph:
    g = Graph(op)
    g.add_input("x", "float32", shape)
    g.add_node(op, ["x"], "y", **attrs)  # type: ignore[arg-type]
    g.outputs = ["y"]
    return g


def test_softmax_forms() -> None:
    middle = _single("Softmax", [None, 4, 3], axis=1)
    assert _ops(middle, 13) == ["Softmax"]
    assert "Softmax" not in _ops(middle, 12)
    assert _ops(_single("Softmax", [None, 4, 3], axis=-1), 9) == ["Softmax"]


def test_layer_norm_forms() -> None:
    g = Graph("ln")
    g.add_input("x", "float32", [None, 4])
    g.add_weight("s", np.ones(4, np.float32))
    g.add_node("LayerNormalization", ["x", "s"], "ln")
    g.outputs = ["ln"]
    assert _ops(g, 17) == ["LayerNormalization"]
    assert "LayerNormalization" not in _ops(g, 16)


def test_clip_forms() -> None:
    g = _single("Clip", [None, 4], max=6.0)
    old = onnx_emitter.build_model(g, 10).graph.node[0]
    assert [a.name for a in old.attribute] == ["max"] and list(old.input) == ["x"]
    new = onnx_emitter.build_model(g, 11).graph.node[0]
    assert not new.attribute and list(new.input)[:2] == ["x", ""]


def test_batch_norm_forms() -> None:
    g = Graph("bn")
    g.add_input("x", "float32", [None, 2, 3])
    for p in ("scale", "B", "mean", "var"):
        g.add_weight(p, np.ones(2, np.float32))
    g.add_node("BatchNormalization", ["x", "scale", "B", "mean", "var"], "bn")
    g.outputs = ["bn"]
    attrs = {o: {a.name for a in onnx_emitter.build_model(g, o).graph.node[0].attribute}
             for o in (8, 9)}
    assert attrs == {8: {"epsilon", "spatial"}, 9: {"epsilon"}}

    per_element = Graph("bn_pe")
    per_element.add_input("x", "float32", [None, 2, 3])
    for p in ("scale", "B", "mean", "var"):
        per_element.add_weight(p, np.ones((2, 3), np.float32))
    per_element.add_node("BatchNormalization", ["x", "scale", "B", "mean", "var"], "bn",
                         spatial=False)
    per_element.outputs = ["bn"]
    model = onnx_emitter.build_model(per_element)
    assert [n.op_type for n in model.graph.node] == ["Mul", "Add"]
    assert model.graph.node[-1].name == "bn" and list(model.graph.node[-1].output) == ["bn"]
    assert len(model.graph.initializer) == 2  # folded scale and shift, raw stats dropped


def test_pool_ceil_forms() -> None:
    g = _single("MaxPool", [None, 1, 8, 8], kernel_shape=(3, 3), strides=(2, 2), ceil_mode=True)
    node9 = onnx_emitter.build_model(g, 9).graph.node[0]
    node10 = onnx_emitter.build_model(g, 10).graph.node[0]
    assert {a.name: list(a.ints) for a in node9.attribute}["pads"] == [0, 0, 1, 1]
    assert "ceil_mode" not in {a.name for a in node9.attribute}
    assert {a.name: a.i for a in node10.attribute}["ceil_mode"] == 1


def test_dynamic_spatial_ceil_needs_opset_10() -> None:
    g = _single("MaxPool", [None, 1, None, None], kernel_shape=(3, 3), strides=(2, 2),
                ceil_mode=True)
    with pytest.raises(UnsupportedError, match=r"node 'y'.*dynamic spatial"):
        onnx_emitter.build_model(g, 9)
    onnx.checker.check_model(onnx_emitter.build_model(g, 10), full_check=True)


def test_dense_without_bias_before_11() -> None:
    g = Graph("fc")
    g.add_input("x", "float32", [None, 3])
    g.add_weight("W", np.ones((2, 3), np.float32))
    g.add_node("Dense", ["x", "W"], "fc")
    g.outputs = ["fc"]
    assert len(onnx_emitter.build_model(g, 9).graph.node[0].input) == 3
    assert len(onnx_emitter.build_model(g, 11).graph.node[0].input) == 2


def test_helper_names_do_not_collide() -> None:
    """A decomposition's helper values avoid IR names that look like them."""
    g = Graph("names")
    g.add_input("x", "float32", [None, 4, 3])
    g.add_node("Relu", ["x"], "sm/ReduceMax")  # the name a helper would want
    g.add_node("Softmax", ["sm/ReduceMax"], "sm", axis=1)
    g.outputs = ["sm"]
    model = onnx_emitter.build_model(g, 12)
    outs = [o for n in model.graph.node for o in n.output]
    assert len(outs) == len(set(outs))
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    assert_close(ref.softmax(np.maximum(x, 0), 1).astype(np.float32),
                 OnnxRunner(model).run([x])[0])


def test_duplicate_ir_node_names_made_unique() -> None:
    """The IR only requires unique value names; onnxruntime also wants unique node names."""
    g = Graph("dup")
    g.add_input("x", "float32", [None, 2])
    g.add_node("Relu", ["x"], "n", outputs=["a"])
    g.add_node("Neg", ["a"], "n", outputs=["b"])
    g.outputs = ["b"]
    model = onnx_emitter.build_model(g)
    assert [n.name for n in model.graph.node] == ["n", "n_1"]
    x = np.array([[-1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(OnnxRunner(model).run([x])[0], -np.maximum(x, 0))


def test_outputs_that_are_inputs_or_weights(tmp_path: Path) -> None:
    g = Graph("passthrough")
    g.add_input("x", "float32", [None, 2])
    g.add_weight("w", np.array([3.0, 4.0], np.float32))
    g.add_node("Add", ["x", "w"], "y")
    g.outputs = ["y", "x", "w"]
    onnx_emitter.emit_model(g, tmp_path / "p.onnx")
    x = np.array([[1.0, 2.0]], np.float32)
    y, x_out, w_out = run_onnx(tmp_path / "p.onnx", [x])
    np.testing.assert_array_equal(y, x + g.weights["w"])
    np.testing.assert_array_equal(x_out, x)
    np.testing.assert_array_equal(w_out, g.weights["w"])


def test_metadata_and_producer() -> None:
    g = conv_net()
    g.metadata = {"source": "cntk", "a": "1"}
    model = onnx_emitter.build_model(g)
    assert model.producer_name == "mmconv"
    assert [(p.key, p.value) for p in model.metadata_props] == [("a", "1"), ("source", "cntk")]


# -- the numpy oracle itself, cross-checked against onnx.reference ---------------------
def test_reference_conv_and_pool_agree_with_onnx_reference() -> None:
    """The oracle is independent code; onnx.reference confirms it on a few configurations."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    conv = onnx.helper.make_node("Conv", ["x", "w"], ["y"], group=2, strides=[2, 1],
                                 pads=[1, 0, 2, 1], dilations=[1, 2])
    pool = onnx.helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2],
                                 strides=[2, 2], pads=[1, 1, 0, 1], count_include_pad=1)
    for node, feeds, expected in (
        (conv, {"x": x, "w": w}, ref.conv(x, w, None, (2, 1), (1, 0, 2, 1), (1, 2), 2)),
        (pool, {"x": x}, ref.pool(x, "avg", (3, 2), (2, 2), (1, 1, 0, 1),
                                  count_include_pad=True)),
    ):
        (got,) = ReferenceEvaluator(node).run(None, feeds)
        assert_close(expected.astype(np.float32), got)


def test_errors_are_mmconv_errors() -> None:
    assert issubclass(UnsupportedError, MmconvError)
