"""Constant folding: the numpy evaluator (mmconv.ir.evaluate) and the fold_constants pass.

The evaluator is checked against the independent numpy oracle of the emitter op
catalogue (tests/emitters/ir_cases.py): every case whose nodes are all foldable is
run with its inputs as weights, and must give the case's expected outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.ir.core import Graph
from mmconv.ir.evaluate import FOLDABLE, evaluate
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import fold_constants, folded_for_emit, run_default_passes
from mmconv.ir.registry import all_schemas
from mmconv.verify.compare import assert_close
from tests.emitters.ir_cases import CASES

#: Ops the evaluator leaves to the runtime on purpose (accumulation order, or a
#: kernel of their own): the node stays and its emitter computes it.
NOT_FOLDED = {
    "AveragePool", "BatchNormalization", "Conv", "ConvTranspose", "Dense",
    "GlobalAveragePool", "GlobalMaxPool", "InstanceNormalization", "LRN",
    "LayerNormalization", "MatMul", "MaxPool", "MaxRoiPool", "Resize",
    "LSTM", "GRU", "RNN",  # time loops: mmconv.ir.recurrent computes them, no folding
    "Scan",  # likewise (mmconv.ir.scan)
}


def test_foldable_ops_are_the_documented_set() -> None:
    assert {s.name for s in all_schemas()} - set(FOLDABLE) == NOT_FOLDED


def _foldable_cases() -> list[str]:
    names = []
    for name, build in sorted(CASES.items()):
        if all(n.op in FOLDABLE for n in build().graph.nodes):
            names.append(name)
    return names


def test_catalogue_covers_every_foldable_op() -> None:
    covered = {n.op for name in _foldable_cases() for n in CASES[name]().graph.nodes}
    assert set(FOLDABLE) - covered == set()


@pytest.mark.parametrize("name", _foldable_cases())
def test_evaluate_matches_the_oracle(name: str) -> None:
    case = CASES[name]()
    infer_shapes(case.graph)
    env = {**case.graph.weights, **case.feeds}
    for node in case.graph.nodes:
        got = evaluate(node, [env[i] for i in node.inputs])
        if got is None:  # an integer variant the evaluator leaves to the runtime
            assert any(env[i].dtype.kind != "f" for i in node.inputs), name
            return
        env.update(zip(node.outputs, got, strict=True))
    for out, want in zip(case.graph.outputs, case.expected, strict=True):
        have, want = env[out], np.asarray(want)
        assert have.shape == want.shape, (name, have.shape, want.shape)
        if want.dtype == bool or want.dtype.kind in "iu":
            np.testing.assert_array_equal(have, want)
            assert have.dtype == case.graph.value(out).dtype
        else:
            assert_close(want.astype(have.dtype), have, name=name)


def test_evaluate_refuses_what_it_cannot_compute_exactly() -> None:
    g = Graph()
    g.add_weight("a", np.arange(6, dtype=np.int32).reshape(2, 3))
    g.add_weight("b", np.full((2, 3), 4, dtype=np.int32))
    div = g.add_node("Div", ["a", "b"], "div")  # ONNX truncates, numpy floors negatives
    conv = g.add_node("Conv", ["a", "b"], "conv")
    assert evaluate(div, [g.weights["a"], g.weights["b"]]) is None
    assert evaluate(conv, [g.weights["a"], g.weights["b"]]) is None


def _gate_graph() -> Graph:
    """x * sigmoid(gate) + (p + c), the shape of CNTK's ``C.sigmoid(param)`` gating."""
    g = Graph()
    g.add_input("x", "float32", (None, 3, 4, 4))
    g.add_weight("gate", np.linspace(-3, 3, 3, dtype=np.float32).reshape(3, 1, 1))
    g.add_weight("p", np.ones((3, 1, 1), np.float32))
    g.add_weight("c", np.full((1,), 0.5, np.float32))
    g.add_node("Sigmoid", ["gate"], "gate_sig")
    g.add_node("Mul", ["x", "gate_sig"], "gated")
    g.add_node("Add", ["p", "c"], "shift")
    g.add_node("Reshape", ["shift"], "shift3", shape=(1, 3, 1, 1))
    g.add_node("Add", ["gated", "shift3"], "out")
    g.outputs = ["out"]
    return infer_shapes(g)


def test_fold_constants_replaces_weight_only_chains() -> None:
    g = _gate_graph()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    gate = g.weights["gate"].astype(np.float64)
    want = x / (1 + np.exp(-gate)) + 1.5
    assert fold_constants(g) == 3
    assert [n.op for n in g.nodes] == ["Mul", "Add"]
    assert g.weights["gate_sig"].dtype == np.float32
    np.testing.assert_allclose(g.weights["gate_sig"], 1 / (1 + np.exp(-gate)), rtol=1e-7)
    assert g.weights["shift3"].shape == (1, 3, 1, 1)
    infer_shapes(g)
    got = x * g.weights["gate_sig"] + g.weights["shift3"]
    assert_close(want.astype(np.float32), got)


def test_default_passes_fold_then_fuse_and_drop_the_sources() -> None:
    g = Graph()
    g.add_input("x", "float32", (None, 3, 5, 5))
    g.add_weight("W", np.ones((2, 3, 1, 1), np.float32))
    g.add_weight("b", np.ones((2, 1, 1), np.float32))
    g.add_weight("db", np.full((1,), 2.0, np.float32))
    g.add_node("Conv", ["x", "W"], "conv")
    g.add_node("Add", ["b", "db"], "bias")  # a computed bias: foldable, then fusable
    g.add_node("Add", ["conv", "bias"], "out")
    g.outputs = ["out"]
    run_default_passes(infer_shapes(g))
    assert [n.op for n in g.nodes] == ["Conv"]
    conv = g.nodes[0]
    np.testing.assert_array_equal(g.weights[conv.inputs[2]], [3.0, 3.0])
    assert set(g.weights) == {"W", conv.inputs[2]}


def test_fold_keeps_graph_outputs_and_unfoldable_nodes() -> None:
    g = Graph()
    g.add_input("x", "float32", (None, 2))
    g.add_weight("a", np.ones((2, 2), np.float32))
    g.add_node("MatMul", ["a", "a"], "aa")  # left to the runtime
    g.add_node("Tanh", ["aa"], "t")
    g.add_node("Add", ["x", "t"], "y")
    g.add_node("Exp", ["a"], "e")  # a graph output: stays a node
    g.outputs = ["y", "e"]
    assert fold_constants(infer_shapes(g)) == 0
    assert [n.op for n in g.nodes] == ["MatMul", "Tanh", "Add", "Exp"]


def test_fold_does_not_blow_weights_up() -> None:
    g = Graph()
    g.add_input("x", "float32", (None, 2048, 1024))
    g.add_weight("r", np.ones((2048, 1), np.float32))
    g.add_weight("c", np.ones((1, 1024), np.float32))
    g.add_node("Add", ["r", "c"], "table")  # 2M elements from 3K
    g.add_node("Mul", ["x", "table"], "y")
    g.outputs = ["y"]
    assert fold_constants(infer_shapes(g)) == 0


def test_folded_for_emit_leaves_the_callers_graph_alone() -> None:
    g = _gate_graph()
    before = [(n.name, list(n.inputs)) for n in g.nodes], set(g.weights)
    folded = folded_for_emit(g)
    assert folded is not g
    assert [(n.name, list(n.inputs)) for n in g.nodes] == before[0]
    assert set(g.weights) == before[1]
    assert [n.op for n in folded.nodes] == ["Mul", "Add"]
    assert set(folded.weights) == {"gate_sig", "shift3"}
    infer_shapes(folded)
    plain = Graph()
    plain.add_input("x", "float32", (None, 2))
    plain.add_node("Relu", ["x"], "y")
    plain.outputs = ["y"]
    assert folded_for_emit(plain) is plain
