"""The reversal pass: time reversals (Slice step -1) around a Scan become its direction,
two in a row cancel, a pick of a reversed axis moves; every graph is run by the numpy
evaluator before and after the default passes."""

from __future__ import annotations

import numpy as np

from mmconv.ir import Graph, infer_shapes
from mmconv.ir.passes import fold_reversals, run_default_passes
from mmconv.ir.scan import run_graph
from mmconv.verify.compare import assert_close

REV = {"starts": (-1,), "ends": (-(2**63),), "axes": (1,), "steps": (-1,)}


def _loop(g: Graph, x: str, name: str = "scan") -> tuple[str, str]:
    """A running sum over ``x`` [N, T, 3] (state 0): (final state, stacked sums)."""
    b = Graph("step")
    b.add_input("s", "float32", [None, 3])
    b.add_input("x_t", "float32", [None, 3])
    b.add_node("Mul", ["s", "half"], "decay")
    b.add_node("Add", ["decay", "x_t"], "s_new")
    b.outputs = ["s_new", "s_new"]
    outs = [f"{name}/last", f"{name}/all"]
    g.add_node("Scan", ["s0", x], name, outputs=outs, body=b, num_states=1)
    return outs[0], outs[1]


def _graph() -> Graph:
    g = Graph("reversals")
    g.add_input("x", "float32", [None, None, 3])
    g.add_weight("s0", np.zeros((1, 3), np.float32))
    g.add_weight("half", np.array(0.5, np.float32))
    return g


def _same(build: callable) -> Graph:  # type: ignore[valid-type]
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    want = run_graph(infer_shapes(build()), {"x": x})
    after = run_default_passes(infer_shapes(build()))
    got = run_graph(after, {"x": x})
    for w, h in zip(want, got, strict=True):
        assert w.shape == h.shape
        assert_close(w, h, name="after the passes")
    return after


def test_backward_loop_between_reversals_is_a_reverse_scan() -> None:
    def build() -> Graph:
        g = _graph()
        g.add_node("Slice", ["x"], "x_rev", **REV)
        last, seq = _loop(g, "x_rev")
        g.add_node("Slice", [seq], "seq_back", **REV)
        g.outputs = [last, "seq_back"]
        return g
    after = _same(build)
    assert [n.op for n in after.nodes] == ["Scan"]
    assert after.nodes[0].attr("reverse") == 1 and after.nodes[0].inputs[1] == "x"


def test_go_backwards_last_step_becomes_the_first_of_a_reverse_scan() -> None:
    """Keras go_backwards with return_sequences=False: y[:, -1:] of the loop over the
    reversed sequence is y[:, :1] of the backward loop."""
    def build() -> Graph:
        g = _graph()
        g.add_node("Slice", ["x"], "x_rev", **REV)
        _, seq = _loop(g, "x_rev")
        g.add_node("Slice", [seq], "last", starts=(-1,), ends=(2**31 - 1,), axes=(1,))
        g.outputs = ["last"]
        return g
    after = _same(build)
    assert [n.op for n in after.nodes] == ["Scan", "Slice"]
    assert after.nodes[0].attr("reverse") == 1
    assert after.nodes[1].attr("starts") == (0,) and after.nodes[1].attr("ends") == (1,)


def test_reversed_input_read_elsewhere_is_left() -> None:
    """The reversed input is also an output: moving the reversal onto the Scan's output
    would add one without removing any."""
    def build() -> Graph:
        g = _graph()
        g.add_node("Slice", ["x"], "x_rev", **REV)
        _, seq = _loop(g, "x_rev")
        g.outputs = [seq, "x_rev"]
        return g
    after = _same(build)
    scan = next(n for n in after.nodes if n.op == "Scan")
    assert scan.attr("reverse") == 0 and scan.inputs[1] == "x_rev"
    assert sum(n.op == "Slice" for n in after.nodes) == 1


def test_two_reversals_cancel_and_other_slices_stay() -> None:
    g = _graph()
    g.add_node("Slice", ["x"], "r1", **REV)
    g.add_node("Slice", ["r1"], "r2", **REV)
    g.add_node("Slice", ["r2"], "part", starts=(1,), ends=(3,), axes=(1,))
    g.add_node("Slice", ["x"], "r3", **REV)
    g.add_node("Slice", ["r3"], "middle", starts=(1,), ends=(3,), axes=(1,))
    g.outputs = ["part", "middle"]
    infer_shapes(g)
    assert fold_reversals(g) == 1
    part = next(n for n in g.nodes if n.name == "part")
    assert part.inputs == ["x"]
    middle = next(n for n in g.nodes if n.name == "middle")
    assert middle.inputs == ["r3"]


def _lstm(g: Graph, x: str, name: str, direction: str, hidden: int = 4) -> list[str]:
    """An LSTM over ``x`` [N, T, 3 or hidden] with random weights: [Y, Y_h, Y_c]."""
    rng = np.random.default_rng(len(name))
    width = 3 if x in ("x", "r1") else hidden
    for key, shape in (("W", (1, 4 * hidden, width)), ("R", (1, 4 * hidden, hidden)),
                       ("B", (1, 8 * hidden))):
        g.add_weight(f"{name}/{key}", rng.uniform(-0.5, 0.5, shape).astype(np.float32))
    outs = [f"{name}/Y", f"{name}/Y_h", f"{name}/Y_c"]
    g.add_node("LSTM", [x, f"{name}/W", f"{name}/R", f"{name}/B"], name, outputs=outs,
               hidden_size=hidden, direction=direction)
    return outs


def test_stacked_go_backwards_sequences_lose_their_reversals() -> None:
    """Keras LSTM(go_backwards, return_sequences) twice, then a ReLU and an LSTM's last
    output: the second backward run over the first's flipped outputs is a forward run
    over them, whose own reversal moves through the Reshape and cancels with the first's."""
    def build() -> Graph:
        g = _graph()
        seq = "x"
        for k in range(2):
            y = _lstm(g, seq, f"back{k}", "reverse")[0]
            g.add_node("Reshape", [y], f"back{k}/sequence", shape=(0, 0, 4))
            g.add_node("Slice", [f"back{k}/sequence"], f"back{k}/flipped", **REV)
            seq = f"back{k}/flipped"
        g.add_node("Relu", [seq], "relu")
        _, h, _ = _lstm(g, "relu", "last", "forward")
        g.outputs = [h]
        return g
    after = _same(build)
    assert "Slice" not in [n.op for n in after.nodes]
    directions = {n.name: n.attr("direction") for n in after.nodes if n.op == "LSTM"}
    assert directions == {"back0": "reverse", "back1": "forward", "last": "forward"}


def test_reversal_moves_through_per_step_ops_and_cancels() -> None:
    """reverse -> Dense -> tanh -> softmax(features) -> reverse is the ops alone; a
    softmax over time or a bias varying along time keeps its reversal."""
    def build(blocker: str = "") -> Graph:
        g = _graph()
        g.add_weight("W", np.random.default_rng(1).standard_normal((3, 2)).astype(np.float32))
        g.add_weight("b", np.array([0.5, -1.0], np.float32))
        g.add_weight("per_time", np.arange(5, dtype=np.float32).reshape(5, 1))
        g.add_node("Slice", ["x"], "r1", **REV)
        g.add_node("MatMul", ["r1", "W"], "dense")
        g.add_node("Add", ["dense", "per_time" if blocker == "bias" else "b"], "biased")
        g.add_node("Tanh", ["biased"], "act")
        g.add_node("Softmax", ["act"], "soft", axis=1 if blocker == "softmax" else -1)
        g.add_node("Slice", ["soft"], "r2", **REV)
        g.outputs = ["r2"]
        return g
    after = _same(build)
    assert [n.op for n in after.nodes] == ["MatMul", "Add", "Tanh", "Softmax"]
    for blocker in ("bias", "softmax"):
        after = _same(lambda b=blocker: build(b))
        assert sum(n.op == "Slice" for n in after.nodes) == 2, blocker


def test_forward_lstm_last_output_after_a_reversal_is_a_backward_run() -> None:
    """Keras LSTM(go_backwards, return_sequences) -> LSTM (last output only): the
    reversal goes, the second LSTM runs backwards."""
    def build() -> Graph:
        g = _graph()
        g.add_node("Slice", ["x"], "r1", **REV)
        _, h, c = _lstm(g, "r1", "fwd", "forward")
        g.outputs = [h, c]
        return g
    after = _same(build)
    assert [n.op for n in after.nodes] == ["LSTM"]
    assert after.nodes[0].attr("direction") == "reverse" and after.nodes[0].inputs[0] == "x"


def test_reversed_sequence_that_is_an_output_stays() -> None:
    def build() -> Graph:
        g = _graph()
        g.add_node("Slice", ["x"], "r1", **REV)
        _lstm(g, "r1", "fwd", "forward")
        g.outputs = ["r1", "fwd/Y"]
        return g
    after = _same(build)
    assert next(n for n in after.nodes if n.op == "LSTM").attr("direction") == "forward"
