"""IR clean-up passes: identity removal, bias fusion, dead-code elimination."""

from __future__ import annotations

import numpy as np

from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import (
    eliminate_dead,
    fuse_bias,
    fuse_lrn,
    remove_identities,
    run_default_passes,
)
from mmconv.ir.passes.manager import PassManager
from mmconv.ir.usedef import UseDef, replace_all_uses


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


# -- fuse_lrn: LRN in primitives (CNTK v1) -> one LRN node ----------------------------
def _lrn_primitives(size: int = 5, before: int = 2, value: float = 0.02,
                    divide: bool = False) -> Graph:
    """x / exp(beta*log(bias + conv(x*x viewed [N, 1, C, H*W]))) as CNTK's v1 files hold it."""
    g = Graph("lrn")
    g.add_input("x", "float32", [None, 6, 4, 5])
    g.add_node("Mul", ["x", "x"], "sq")
    g.add_node("Reshape", ["sq"], "sq5", shape=(0, 1, 6, 4, 5))
    g.add_node("Reshape", ["sq5"], "view", shape=(0, 1, 6, 20))
    g.add_weight("k", np.full((1, 1, size, 1), value, dtype=np.float32))
    g.add_node("Conv", ["view", "k"], "conv", pads=(before, 0, size - 1 - before, 0))
    g.add_node("Reshape", ["conv"], "back", shape=(0, 6, 4, 5))
    g.add_weight("bias", np.asarray(2.0, dtype=np.float32))
    g.add_weight("beta", np.asarray(0.75, dtype=np.float32))
    g.add_node("Add", ["bias", "back"], "a")
    g.add_node("Log", ["a"], "log")
    g.add_node("Mul", ["beta", "log"], "scaled")
    g.add_node("Exp", ["scaled"], "den")
    if divide:
        g.add_node("Div", ["x", "den"], "y")
    else:
        g.add_node("Reciprocal", ["den"], "inv")
        g.add_node("Mul", ["x", "inv"], "y")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def test_fuse_lrn_turns_primitives_into_one_lrn() -> None:
    for divide in (False, True):
        g = _lrn_primitives(divide=divide)
        assert fuse_lrn(g) == 1
        assert [(n.op, n.inputs, n.outputs) for n in g.nodes] == [("LRN", ["x"], ["y"])]
        attrs = g.nodes[0].attrs
        assert attrs["size"] == 5 and attrs["beta"] == 0.75 and attrs["bias"] == 2.0
        assert abs(float(attrs["alpha"]) - 0.1) < 1e-7  # value * size
        assert set(g.weights) == set()


def test_fuse_lrn_leaves_other_windows_alone() -> None:
    # a window not centred like ONNX LRN's, or a kernel of unequal values, is not an LRN
    g = _lrn_primitives(before=1)
    assert fuse_lrn(g) == 0 and len(g.nodes) == 11
    g = _lrn_primitives()
    g.weights["k"] = np.arange(5, dtype=np.float32).reshape(1, 1, 5, 1)
    assert fuse_lrn(g) == 0
    g = _lrn_primitives()
    g.outputs = ["y", "back"]  # an intermediate is needed elsewhere
    assert fuse_lrn(g) == 0


def test_pass_manager_reaches_the_fixed_point_whatever_the_order() -> None:
    """Bias fusion only sees the Add once the Identity before it is gone: listed first,
    it fuses in the second round."""
    g = Graph()
    g.add_input("x", "float32", (None, 3, 8, 8))
    g.add_weight("w", np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype("f4"))
    g.add_weight("b", np.arange(4, dtype=np.float32).reshape(4, 1, 1))
    g.add_node("Conv", ["x", "w"], "conv")
    g.add_node("Identity", ["conv"], "alias")
    g.add_node("Add", ["alias", "b"], "biased")
    g.add_node("Relu", ["biased"], "out")
    g.outputs = ["out"]
    infer_shapes(g)
    counts = PassManager([fuse_bias, remove_identities]).run(g)
    assert counts == {"fuse_bias": 1, "remove_identities": 1}
    assert [n.op for n in g.nodes] == ["Conv", "Relu"]
    assert g.nodes[0].inputs[2] == "b" and g.value("out").shape == (None, 4, 6, 6)


def test_pass_manager_rounds_are_bounded() -> None:
    calls = []

    def restless(graph: Graph) -> int:
        calls.append(1)
        return 1

    g = _conv_graph()
    assert PassManager([restless], max_rounds=3, infer=False).run(g) == {"restless": 3}
    assert len(calls) == 3


def test_usedef_and_replace_all_uses() -> None:
    g = _conv_graph()
    uses = UseDef(g)
    assert uses.producer("relu").op == "Relu" and uses.producer("x") is None
    assert [n.name for n in uses.users("x")] == ["conv1/Convolution", "unused"]
    assert uses.only_user("drop").name == "relu" and uses.only_user("out") is None
    assert uses.uses("out") == 1
    assert replace_all_uses(g, "x", "y") == 2
    assert replace_all_uses(g, "out", "z") == 0 and g.outputs == ["out"]
    assert replace_all_uses(g, "out", "z", outputs=True) == 1 and g.outputs == ["z"]
