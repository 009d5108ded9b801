"""Graph building: names, registry checks at construction time, topological order."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.errors import IRError
from mmconv.ir import Graph, infer_shapes
from mmconv.ir.core import Node, toposort


def small_graph() -> Graph:
    g = Graph("small")
    g.add_input("x", "float32", (None, 3, 8, 8))
    g.add_weight("conv/W", np.ones((4, 3, 3, 3), np.float32))
    g.add_node("Conv", ["x", "conv/W"], "conv", pads=(1, 1, 1, 1))
    g.add_node("Relu", ["conv"], "relu")
    g.outputs = ["relu"]
    return g


def test_single_output_node_value_takes_node_name() -> None:
    g = infer_shapes(small_graph())
    assert g.value("relu").shape == (None, 4, 8, 8)
    assert g.nodes[-1].outputs == ["relu"]


def test_unknown_op_rejected_when_added() -> None:
    with pytest.raises(IRError, match="unknown IR op 'Frobnicate'"):
        small_graph().add_node("Frobnicate", ["x"], "f")


def test_unknown_attribute_rejected_with_known_list() -> None:
    with pytest.raises(IRError, match=r"unknown attribute 'padding' \(known: dilations, group"):
        small_graph().add_node("Conv", ["x", "conv/W"], "c2", padding=(1, 1))


def test_attribute_type_checked() -> None:
    with pytest.raises(IRError, match="must be ints"):
        small_graph().add_node("Conv", ["x", "conv/W"], "c2", strides=2)
    with pytest.raises(IRError, match="must be bool"):
        small_graph().add_node("MaxPool", ["x"], "p", kernel_shape=(2, 2), ceil_mode=1)


def test_required_attribute_and_input_count() -> None:
    g = small_graph()
    with pytest.raises(IRError, match="required attribute 'kernel_shape'"):
        g.add_node("MaxPool", ["x"], "p")
    with pytest.raises(IRError, match="1 inputs given"):
        g.add_node("Conv", ["x"], "c3")


def test_duplicate_names_rejected_and_unique_name() -> None:
    g = small_graph()
    with pytest.raises(IRError, match="duplicate value name 'relu'"):
        g.add_node("Relu", ["conv"], "relu")
    assert g.unique_name("relu") == "relu_1"
    assert g.unique_name("fresh") == "fresh"


def test_defaults_come_from_registry() -> None:
    node = small_graph().nodes[0]
    assert node.attr("group") == 1
    assert node.attr("pads") == (1, 1, 1, 1)


def test_toposort_orders_and_detects_problems() -> None:
    a = Node("a", "Relu", ["x"], ["a"])
    b = Node("b", "Relu", ["a"], ["b"])
    assert [n.name for n in toposort([b, a], ["x"])] == ["a", "b"]
    with pytest.raises(IRError, match="input 'nowhere' is not defined"):
        toposort([Node("c", "Relu", ["nowhere"], ["c"])], ["x"])
    loop1 = Node("l1", "Relu", ["l2"], ["l1"])
    loop2 = Node("l2", "Relu", ["l1"], ["l2"])
    with pytest.raises(IRError, match="cycle"):
        toposort([loop1, loop2], [])


def test_graph_output_must_exist() -> None:
    g = small_graph()
    g.outputs = ["missing"]
    with pytest.raises(IRError, match="graph output 'missing'"):
        infer_shapes(g)
