"""The shared frontend builder (mmconv.frontends.base): shapes as nodes are added,
early folding of weight-only nodes, the weight cache and the one unsupported-ops error."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.errors import UnsupportedError
from mmconv.frontends.base import BuildContext, UnsupportedOps, finish_graph
from mmconv.ir.core import Graph
from mmconv.ir.passes import FOLD_MAX_GROWTH


def _ctx() -> BuildContext:
    g = Graph()
    g.add_input("x", "float32", (None, 3, 8, 8))
    return BuildContext(g)


def test_add_infers_shape_at_once() -> None:
    ctx = _ctx()
    w = ctx.constant("conv/W", np.random.default_rng(0).normal(size=(5, 3, 3, 3)).astype("f4"))
    y = ctx.add("Conv", ["x", w], "conv", strides=(2, 2))
    assert ctx.shape(y) == (None, 5, 3, 3) and ctx.dtype(y) == "float32"
    # a second node of the same name is renamed, not refused
    assert ctx.add("Relu", [y], "conv") == "conv_1"


def test_weight_only_nodes_fold_into_weights() -> None:
    ctx = _ctx()
    a = np.random.default_rng(1).normal(size=(4, 3)).astype("f4")
    w = ctx.constant("p", a)
    s = ctx.add("Sigmoid", [w], "gate")
    assert ctx.is_constant(s) and not ctx.graph.nodes
    np.testing.assert_allclose(ctx.constant_array(s), 1 / (1 + np.exp(-a)), rtol=1e-6)
    # a node reading a runtime value is a node
    y = ctx.add("Relu", ["x"], "r")
    assert not ctx.is_constant(y) and [n.op for n in ctx.graph.nodes] == ["Relu"]


def test_fold_refuses_to_blow_weights_up() -> None:
    ctx = _ctx()
    rows = ctx.constant("rows", np.ones((2048, 1), np.float32))
    cols = ctx.constant("cols", np.ones((1, 1024), np.float32))
    assert FOLD_MAX_GROWTH < 2048 * 1024
    table = ctx.add("Add", [rows, cols], "table")
    assert not ctx.is_constant(table) and ctx.shape(table) == (2048, 1024)


def test_weight_cache_one_weight_per_source_and_transformation() -> None:
    ctx = _ctx()
    made = []

    def load() -> np.ndarray:
        made.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    first = ctx.cached_weight("uid7", "fc", "W", load)
    assert first == "fc/W"
    assert ctx.cached_weight("uid7", "other", "W", load) == first and len(made) == 1
    t = ctx.cached_weight("uid7", "fc", "W", load().T, key="transposed")
    assert t == "fc/W_1" and ctx.shape(t) == (3, 2)


def test_unsupported_ops_listed_once_with_counts() -> None:
    missing = UnsupportedOps()
    assert not missing
    missing.raise_if_any("m.onnx", "ONNX ops without a converter")  # nothing recorded: no-op
    for i in range(7):
        missing.record("Foo", f"foo{i}")
    missing.record("Bar", "bar0")
    assert len(missing) == 8
    with pytest.raises(UnsupportedError) as info:
        missing.raise_if_any("m.onnx", "ONNX ops without a converter", hint="see docs")
    assert str(info.value) == (
        "m.onnx: ONNX ops without a converter: Foo x7 (foo0, foo1, foo2, foo3, foo4, ...); "
        "Bar x1 (bar0); see docs")


def test_finish_graph_runs_the_default_passes() -> None:
    ctx = _ctx()
    y = ctx.add("Identity", ["x"], "id")
    y = ctx.add("Relu", [y], "out")
    ctx.graph.outputs = [y]
    g = finish_graph(ctx.graph)
    assert [n.op for n in g.nodes] == ["Relu"] and g.value("out").shape == (None, 3, 8, 8)


def test_scalar_weights_keep_rank_zero() -> None:
    """A 0-d constant (an ONNX scalar Gather index) must stay 0-d: np.ascontiguousarray
    would make it [1], and the gathered axis would then be kept instead of removed."""
    ctx = _ctx()
    index = ctx.constant("index", np.array(1, dtype=np.int64))
    cached = ctx.cached_weight("src", "layer", "scale", np.array(2.0, np.float32))
    assert ctx.shape(index) == () and ctx.shape(cached) == ()
    y = ctx.add("Gather", ["x", index], "pick", axis=1)
    assert ctx.shape(y) == (None, 8, 8)
