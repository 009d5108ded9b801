"""IR clean-up passes: identity removal, bias fusion, dead-code elimination."""

from __future__ import annotations

import numpy as np

from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import eliminate_dead, fuse_bias, remove_identities, run_default_passes


def _conv_graph() -> Graph:
    g = Graph()
    g.add_input("x", "float32", (None, 3, 8, 8))
    g.add_weight("conv1/W", np.ones((4, 3, 3, 3), np.float32))
    g.add_weight("conv1/b", np.arange(4, dtype=np.float32).reshape(4, 1, 1))
    g.add_node("Conv", ["x", "conv1/W"], "conv1/Convolution")
    g.add_node("Add", ["conv1/Convolution", "conv1/b"], "conv1")
    g.add_node("Identity", ["conv1"], "drop")
    g.add_node("Relu", ["drop"], "relu")
    g.add_node("Identity", ["relu"], "out")
    g.add_node("Sigmoid", ["x"], "unused")
    g.outputs = ["out"]
    return infer_shapes(g)


def test_identity_removed_and_output_name_kept() -> None:
    g = _conv_graph()
    assert remove_identities(g) == 2
    assert [n.op for n in g.nodes].count("Identity") == 0
    assert g.outputs == ["out"]
    relu = next(n for n in g.nodes if n.op == "Relu")
    assert relu.inputs == ["conv1"] and relu.outputs == ["out"]
    infer_shapes(g)


def test_bias_fused_into_conv() -> None:
    g = _conv_graph()
    assert fuse_bias(g) == 1
    conv = next(n for n in g.nodes if n.op == "Conv")
    assert conv.name == "conv1" and conv.outputs == ["conv1"]
    assert g.weights[conv.inputs[2]].shape == (4,)
    infer_shapes(g)


def test_bias_not_fused_when_it_is_not_per_channel() -> None:
    g = Graph()
    g.add_input("x", "float32", (None, 3, 4, 4))
    g.add_weight("w", np.ones((2, 3, 1, 1), np.float32))
    g.add_weight("b", np.ones((2, 4, 4), np.float32))
    g.add_node("Conv", ["x", "w"], "c")
    g.add_node("Add", ["c", "b"], "y")
    g.outputs = ["y"]
    infer_shapes(g)
    assert fuse_bias(g) == 0


def test_dead_nodes_and_weights_removed() -> None:
    g = _conv_graph()
    g.add_weight("orphan", np.zeros(3, np.float32))
    eliminate_dead(g)
    assert "unused" not in {n.name for n in g.nodes}
    assert "orphan" not in g.weights


def test_default_passes_preserve_numbers() -> None:
    g = run_default_passes(_conv_graph())
    infer_shapes(g)
    assert [n.op for n in g.nodes] == ["Conv", "Relu"]
