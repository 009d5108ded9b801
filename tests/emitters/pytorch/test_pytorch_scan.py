"""Scan beyond the shared catalogue (ir_cases' scan_* cases run in test_pytorch_ops):
bodies with layers that own parameters, a per-step convolution, a reverse loop from a
broadcast [1, ...] state, a new time length, and the mmconvert path (TorchScript file)
-- eager and TorchScript against the IR's numpy evaluator (mmconv.ir.scan)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mmconv.emitters.pytorch import emit, emit_model
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.scan import run_graph
from mmconv.verify.compare import assert_close

from .. import reference as ref
from ..ir_cases import rand, scan_edge_forms
from ._common import assert_runs_as


def _dense_loop(reverse: int) -> Graph:
    """h = tanh(Dense(concat(x_t, h))) from a [1, H] weight state; y = Dense2(h)
    (each Dense an nn.Linear inside the step); the outer graph uses a Dense too, with
    a node named like one of the body's."""
    n_in, h, o = 3, 5, 2
    g = Graph("dense_loop")
    g.add_input("x", "float32", [None, None, n_in])
    g.add_weight("h0", rand(1, h, low=-1, high=1))
    g.add_weight("cell/W", rand(h, n_in + h, low=-0.6, high=0.6))
    g.add_weight("cell/b", rand(h, low=-0.5, high=0.5))
    g.add_weight("out/W", rand(o, h, low=-1, high=1))
    g.add_weight("head/W", rand(4, h, low=-1, high=1))
    b = Graph("step")
    b.add_input("h", "float32", [None, h])
    b.add_input("x_t", "float32", [None, n_in])
    b.add_node("Concat", ["x_t", "h"], "xh", axis=1)
    b.add_node("Dense", ["xh", "cell/W", "cell/b"], "pre")
    b.add_node("Tanh", ["pre"], "h_new")
    b.add_node("Dense", ["h_new", "out/W"], "y_t")
    b.outputs = ["h_new", "y_t"]
    g.add_node("Scan", ["h0", "x"], "scan", outputs=["h_last", "ys"], body=b,
               num_states=1, reverse=reverse)
    g.add_node("Dense", ["h_last", "head/W"], "pre")  # "pre" is a body name too
    g.outputs = ["pre", "ys"]
    return infer_shapes(g)


def _conv_loop() -> tuple[Graph, dict[str, np.ndarray], list[np.ndarray]]:
    """A per-step 3x3 convolution on [N, T, C, H, W] frames added to a running state
    (the IR evaluator runs no Conv: reference.py's conv inside reference.py's scan)."""
    w, bias = rand(3, 2, 3, 3, low=-0.5, high=0.5), rand(3, low=-0.5, high=0.5)
    g = Graph("conv_loop")
    g.add_input("frames", "float32", [None, None, 2, 6, 6])
    g.add_input("acc0", "float32", [None, 3, 6, 6])
    g.add_weight("conv/W", w)
    g.add_weight("conv/b", bias)
    b = Graph("step")
    b.add_input("acc", "float32", [None, 3, 6, 6])
    b.add_input("f_t", "float32", [None, 2, 6, 6])
    b.add_node("Conv", ["f_t", "conv/W", "conv/b"], "c", pads=(1, 1, 1, 1))
    b.add_node("Relu", ["c"], "r")
    b.add_node("Add", ["acc", "r"], "acc_new")
    b.add_node("Sigmoid", ["acc_new"], "y_t")
    b.outputs = ["acc_new", "y_t"]
    g.add_node("Scan", ["acc0", "frames"], "scan", outputs=["acc_last", "ys"], body=b,
               num_states=1)
    g.outputs = ["acc_last", "ys"]
    feeds = {"frames": rand(2, 4, 2, 6, 6), "acc0": rand(2, 3, 6, 6)}

    def step(hs: list, xt: list) -> tuple:
        acc = hs[0] + np.maximum(ref.conv(xt[0], w, bias, pads=(1, 1, 1, 1)), 0.0)
        return [acc], [1.0 / (1.0 + np.exp(-acc))]
    return infer_shapes(g), feeds, ref.scan(step, [feeds["acc0"]], [feeds["frames"]])


def _evaluated(graph: Graph, feeds: dict[str, np.ndarray]
               ) -> tuple[Graph, dict[str, np.ndarray], list[np.ndarray]]:
    return graph, feeds, run_graph(graph, feeds)


FORMS = {
    "dense_forward": lambda: _evaluated(_dense_loop(0), {"x": rand(3, 6, 3)}),
    "dense_reverse": lambda: _evaluated(_dense_loop(1), {"x": rand(3, 6, 3)}),
    "dense_reverse_new_length": lambda: _evaluated(_dense_loop(1), {"x": rand(2, 9, 3)}),
    "conv_per_step": _conv_loop,
}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_scan_against_numpy(name: str) -> None:
    graph, feeds, want = FORMS[name]()
    source = assert_runs_as(graph, feeds, want, name)
    # the loop is a for-loop in forward over a generated step method, no trace
    assert "def scan_step(self" in source and "self.scan_step(" in source
    assert "for " in source.split("def forward(", 1)[1]


def _shadowing() -> Graph:
    """A body value named like an outer weight the outer graph reads too ("k"): inside
    the body the name is the body's (the IR's scoping), outside it is the weight."""
    g = Graph("shadow")
    g.add_input("x", "float32", [None, None, 4])
    g.add_weight("k", rand(1, 4, low=-1, high=1))
    b = Graph("step")
    b.add_input("s", "float32", [None, 4])
    b.add_input("x_t", "float32", [None, 4])
    b.add_node("Add", ["s", "x_t"], "pre")
    b.add_node("Tanh", ["pre"], "k")
    b.add_node("Mul", ["k", "k"], "y")
    b.outputs = ["k", "y"]
    g.add_node("Scan", ["k", "x"], "scan", outputs=["s_last", "ys"], body=b, num_states=1)
    g.add_node("Add", ["s_last", "k"], "out")
    g.outputs = ["out", "ys"]
    return infer_shapes(g)


@pytest.mark.parametrize("name", ["shadowing", "map_only", "states_only"])
def test_scan_edge_forms(name: str) -> None:
    graph, feeds = (_shadowing(), {"x": rand(2, 5, 4)}) if name == "shadowing" \
        else scan_edge_forms()[name]
    assert_runs_as(graph, feeds, run_graph(infer_shapes(graph), feeds), name)


def test_step_layers_are_model_parameters() -> None:
    """The body's Dense layers are KitModel's submodules beside the outer one of the same
    node name: one state_dict (each layer's own weights), trainable."""
    graph = _dense_loop(0)
    state = emit(graph).state
    weights = [k for k in state if k.endswith(".weight")]
    assert len(weights) == 3 and len(set(weights)) == 3, list(state)
    for w in ("cell/W", "out/W", "head/W"):
        assert sum(np.array_equal(state[k], graph.weights[w]) for k in weights) == 1, w


def test_mmconvert_writes_a_torchscript_loop(tmp_path: Path) -> None:
    """emit_model scripts (never traces) the loop: a new time length runs in the file."""
    graph = _dense_loop(0)
    out = tmp_path / "loop.pt"
    emit_model(graph, out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what we write
        model = torch.jit.load(str(out))
    assert isinstance(model, torch.jit.RecursiveScriptModule)
    for t in (4, 11):
        x = rand(2, t, 3)
        got = model(torch.from_numpy(x))
        for w, have in zip(run_graph(graph, {"x": x}), got, strict=True):
            assert_close(w, have.detach().numpy(), name=f"T={t}")


def test_long_step_call_is_wrapped() -> None:
    """A step call with many states keeps forward within the project's 100 columns."""
    from ..ir_cases import CASES

    source = emit(CASES["scan_two_states_two_inputs"]().graph).source
    forward = source.split("def forward(", 1)[1].split("def scan_step(", 1)[0]
    assert "self.scan_step(\n" in forward
    assert max(len(line) for line in forward.splitlines()) <= 100
