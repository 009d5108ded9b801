"""The IR Scan op: files (nested bodies, hostile bodies), shape inference, passes that
must keep a body's weights, and the numpy evaluator against hand-written loops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.errors import IRError
from mmconv.ir import Graph, graph_pb2, infer_shapes, serde
from mmconv.ir.passes import eliminate_dead, fuse_bias, run_default_passes
from mmconv.ir.scan import run_graph
from mmconv.ir.usedef import consumers, replace_all_uses
from mmconv.verify.compare import assert_close
from tests.emitters.ir_cases import CASES, SCAN_CASES


def elman(t: int | None = None, n: int | None = None) -> Graph:
    """h = tanh(x W + h R) over x [N, T, 3], h0 [N, 4]; outputs the last h and all."""
    rng = np.random.default_rng(3)
    g = Graph("elman")
    g.add_input("x", "float32", [n, t, 3])
    g.add_input("h0", "float32", [n, 4])
    g.add_weight("W", rng.standard_normal((3, 4)).astype(np.float32))
    g.add_weight("R", (rng.standard_normal((4, 4)) * 0.5).astype(np.float32))
    b = Graph("step")
    b.add_input("h", "float32", [None, 4])
    b.add_input("x_t", "float32", [None, 3])
    b.add_node("MatMul", ["x_t", "W"], "xw")
    b.add_node("MatMul", ["h", "R"], "hr")
    b.add_node("Add", ["xw", "hr"], "pre")
    b.add_node("Tanh", ["pre"], "h_new")
    b.outputs = ["h_new", "h_new"]
    g.add_node("Scan", ["h0", "x"], "scan", outputs=["h_last", "h_all"], body=b,
               num_states=1)
    g.outputs = ["h_last", "h_all"]
    return g


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# -- the evaluator ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SCAN_CASES))
def test_evaluator_matches_the_hand_written_loops(name: str) -> None:
    """Forward, reverse, a [1, H] state broadcast, 2 states, 2 scan inputs (the cases'
    expected outputs are plain numpy loops, tests/emitters/reference.py: scan)."""
    c = CASES[name]()
    infer_shapes(c.graph)
    got = run_graph(c.graph, c.feeds)
    assert len(got) == len(c.expected)
    for i, (want, have) in enumerate(zip(c.expected, got, strict=True)):
        assert have.shape == want.shape and have.dtype == np.float32
        assert_close(want, have, name=f"{name} output {i}")


@pytest.mark.parametrize("t", [1, 7])
def test_evaluator_dynamic_time(t: int) -> None:
    g = infer_shapes(elman())
    rng = np.random.default_rng(t)
    x = rng.standard_normal((2, t, 3)).astype(np.float32)
    h = rng.standard_normal((2, 4)).astype(np.float32)
    h_last, h_all = run_graph(g, {"x": x, "h0": h})
    w, r = g.weights["W"].astype(np.float64), g.weights["R"].astype(np.float64)
    want, hh = [], h.astype(np.float64)
    for step in range(t):
        hh = np.tanh(x[:, step] @ w + hh @ r)
        want.append(hh)
    assert h_all.shape == (2, t, 4)
    assert_close(np.stack(want, axis=1).astype(np.float32), h_all)
    assert_close(hh.astype(np.float32), h_last)


def test_evaluator_empty_sequence_keeps_the_states() -> None:
    g = infer_shapes(elman())
    h = np.ones((2, 4), np.float32)
    h_last, h_all = run_graph(g, {"x": np.zeros((2, 0, 3), np.float32), "h0": h})
    np.testing.assert_array_equal(h_last, h)
    assert h_all.shape == (2, 0, 4)


# -- shape inference ------------------------------------------------------------------
def test_infer_shapes_dynamic_and_static() -> None:
    g = infer_shapes(elman())
    assert g.value("h_last").shape == (None, 4)
    assert g.value("h_all").shape == (None, None, 4)
    body = g.nodes[0].attrs["body"]
    assert body.value("h_new").shape == (None, 4)
    assert body.value("W").shape == (3, 4)  # the outer weights the body reads
    g = infer_shapes(elman(t=6, n=2))
    assert g.value("h_all").shape == (2, 6, 4)


def test_infer_broadcast_state_takes_the_batch() -> None:
    c = CASES["scan_running_sum"]()
    infer_shapes(c.graph)
    assert c.graph.value("sum/init").shape == (1, 5)
    assert c.graph.value("sum_last").shape == (None, 5)
    assert c.graph.value("sums").shape == (None, None, 5)


def _mutated(change: str) -> Graph:
    g = elman()
    body = g.nodes[0].attrs["body"]
    if change == "state":
        g.inputs[1] = type(g.inputs[1])("h0", "float32", (None, 5))
    elif change == "outer_activation":
        g.add_node("Relu", ["h0"], "relu_h0")
        body.nodes[3].inputs = ["relu_h0"]
    elif change == "outputs":
        g.nodes[0].outputs = ["h_last"]
        g.outputs = ["h_last"]
    elif change == "recurrent":
        body.nodes.append(type(body.nodes[0])("inner", "Scan", ["h", "x_t"], ["i1", "i2"],
                                              {"body": Graph("b"), "num_states": 1}))
    elif change == "lstm":
        body.nodes.append(type(body.nodes[0])("cell", "LSTM", ["x_t", "W", "R"], ["y"],
                                              {"hidden_size": 1}))
    elif change == "weights":
        body.add_weight("own", np.zeros(4, np.float32))
    elif change == "step_shape":
        g.inputs[0] = type(g.inputs[0])("x", "float32", (None, None, 5))
    return g


@pytest.mark.parametrize("change, message", [
    ("state", r"state 0 is float32\[\?, 5\] but body input 'h'"),
    ("outer_activation", r"body: reads 'relu_h0', which is neither"),
    ("outputs", r"1 outputs, the body has 2"),
    ("recurrent", r"body: node 'inner' is a Scan; a loop body holds no recurrent ops"),
    ("lstm", r"body: node 'cell' is a LSTM; a loop body holds no recurrent ops"),
    ("weights", r"body: a body holds no weights"),
    ("step_shape", r"scan input 0 .* but body input 'x_t'"),
])
def test_infer_refuses_bad_scans_in_one_line(change: str, message: str) -> None:
    with pytest.raises(IRError, match=message) as exc:
        infer_shapes(_mutated(change))
    assert "node 'scan' (Scan)" in _one_line(exc)


# -- use-def and passes -----------------------------------------------------------------
def test_body_reads_of_weights_are_uses_by_the_scan() -> None:
    g = infer_shapes(elman())
    uses = consumers(g)
    assert [n.name for n in uses["W"]] == ["scan"]
    assert [n.name for n in uses["R"]] == ["scan"]


def test_dead_code_keeps_body_weights() -> None:
    g = infer_shapes(elman())
    g.add_weight("unused", np.zeros(3, np.float32))
    assert eliminate_dead(g) == 1
    assert sorted(g.weights) == ["R", "W"]
    counts_before = {k: v.copy() for k, v in g.weights.items()}
    run_default_passes(g)
    assert sorted(g.weights) == ["R", "W"]
    for k, v in counts_before.items():
        np.testing.assert_array_equal(g.weights[k], v)
    infer_shapes(g)  # the body still reads what exists


def test_bias_fusion_does_not_reshape_a_weight_a_body_reads() -> None:
    """fuse_bias rewrites a [1, C] bias to [C] in place when nothing else reads it; a
    body reading it counts, so the weight stays as the body needs it."""
    g = elman()
    g.add_weight("bias", np.arange(4, dtype=np.float32).reshape(1, 4))
    g.add_weight("fc/W", np.ones((4, 3), np.float32))
    g.add_input("z", "float32", [None, 3])
    g.add_node("Dense", ["z", "fc/W"], "fc")
    g.add_node("Add", ["fc", "bias"], "fc_b")
    body = g.nodes[0].attrs["body"]
    body.nodes[2].inputs = ["xw", "bias"]
    body.add_node("Add", ["pre", "hr"], "pre2")
    body.nodes[3].inputs = ["pre2"]  # (inference puts the body's nodes in order)
    g.outputs.append("fc_b")
    infer_shapes(g)
    assert fuse_bias(g) == 1
    assert g.weights["bias"].shape == (1, 4)
    infer_shapes(g)


def test_new_names_avoid_body_names() -> None:
    g = infer_shapes(elman())
    assert g.unique_name("xw") == "xw_1"
    assert g.unique_name("h_new") == "h_new_1"


def test_a_body_value_shadows_an_outer_weight_of_its_name() -> None:
    """The body's names are its own: an outer weight of the same name (a pass may fold an
    outer value into one) is not what the body reads, and is not a use by the Scan."""
    g = elman()
    body = g.nodes[0].attrs["body"]
    body.nodes[0].outputs = ["R2"]  # xw = x_t W, now named like an outer weight
    body.nodes[2].inputs = ["R2", "hr"]
    g.add_weight("R2", np.full((1, 1), 100.0, np.float32))
    infer_shapes(g)
    assert body.value("R2").shape == (None, 4)
    assert "R2" not in consumers(g)
    eliminate_dead(g)
    assert "R2" not in g.weights
    x = np.ones((2, 3, 3), np.float32)
    h = np.zeros((2, 4), np.float32)
    want = run_graph(infer_shapes(elman()), {"x": x, "h0": h})
    for w, have in zip(want, run_graph(g, {"x": x, "h0": h}), strict=True):
        np.testing.assert_array_equal(w, have)


def test_renaming_a_weight_renames_the_body_reads() -> None:
    g = infer_shapes(elman())
    g.add_weight("W2", g.weights["W"] * 2)
    assert replace_all_uses(g, "W", "W2") == 1
    assert g.nodes[0].attrs["body"].nodes[0].inputs == ["x_t", "W2"]


# -- files ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SCAN_CASES))
def test_round_trip_runs_the_same(name: str, tmp_path: Path) -> None:
    c = CASES[name]()
    pb_path, json_path, npy_path = serde.save(c.graph, tmp_path / "m")
    back = serde.load(pb_path, npy_path)
    node = back.nodes[0]
    assert node.op == "Scan" and isinstance(node.attrs["body"], Graph)
    assert not node.attrs["body"].weights
    assert '"g": {' in json_path.read_text()
    assert serde.to_proto(back).SerializeToString(deterministic=True) == pb_path.read_bytes()
    for want, have in zip(c.expected, run_graph(back, c.feeds), strict=True):
        assert_close(want, have, name=name)


def _saved(tmp_path: Path) -> tuple[graph_pb2.Graph, Path]:
    _, _, npy = serde.save(elman(), tmp_path / "m")
    msg = graph_pb2.Graph()
    msg.ParseFromString((tmp_path / "m.pb").read_bytes())
    return msg, npy


def _load(tmp_path: Path, msg: graph_pb2.Graph, npy: Path) -> str:
    bad = tmp_path / "bad.pb"
    bad.write_bytes(msg.SerializeToString())
    with pytest.raises(IRError) as exc:
        serde.load(bad, npy)
    return _one_line(exc)


def _body_msg(msg: graph_pb2.Graph) -> graph_pb2.Graph:
    return msg.nodes[0].attrs["body"].g


def test_hostile_body_with_weights(tmp_path: Path) -> None:
    msg, npy = _saved(tmp_path)
    w = _body_msg(msg).weights.add(name="W", dtype=graph_pb2.FLOAT32)
    w.shape.dims.extend([3, 4])
    assert "a loop body holds no weights" in _load(tmp_path, msg, npy)


def test_hostile_body_nesting(tmp_path: Path) -> None:
    msg, npy = _saved(tmp_path)
    inner = _body_msg(msg)
    for _ in range(6):  # Scan nodes nested in bodies, deeper than the limit
        node = inner.nodes.add(name="deeper", op="Scan")
        node.attrs["num_states"].i = 0
        inner = node.attrs["body"].g
    assert "nest deeper than 4 levels" in _load(tmp_path, msg, npy)


def test_hostile_nested_scan(tmp_path: Path) -> None:
    msg, npy = _saved(tmp_path)
    body = _body_msg(msg)
    copy = graph_pb2.Graph()
    copy.CopyFrom(body)
    node = body.nodes.add(name="inner", op="Scan", inputs=["h", "x_t"], outputs=["a", "b"])
    node.attrs["num_states"].i = 1
    node.attrs["body"].g.CopyFrom(copy)
    assert "a loop body holds no recurrent ops" in _load(tmp_path, msg, npy)


def test_hostile_body_attribute_kind(tmp_path: Path) -> None:
    msg, npy = _saved(tmp_path)
    msg.nodes[0].attrs["body"].i = 3
    assert "attribute 'body' should be graph, file has i" in _load(tmp_path, msg, npy)
    msg, npy = _saved(tmp_path)
    msg.nodes[0].attrs["num_states"].g.name = "x"
    assert "attribute 'num_states' should be int, file has g" in _load(tmp_path, msg, npy)


def test_hostile_body_reads_an_undefined_value(tmp_path: Path) -> None:
    msg, npy = _saved(tmp_path)
    _body_msg(msg).nodes[0].inputs[1] = "nowhere"
    assert "reads 'nowhere'" in _load(tmp_path, msg, npy)


def test_hostile_body_unknown_op_and_wrong_values(tmp_path: Path) -> None:
    msg, npy = _saved(tmp_path)
    _body_msg(msg).nodes[0].op = "Bogus"
    assert "unknown IR op 'Bogus'" in _load(tmp_path, msg, npy)
    msg, npy = _saved(tmp_path)
    _body_msg(msg).values[0].shape.dims[1] = 9
    assert "loop body 'step': value 'xw' is recorded as float32[-1, 9]" in \
        _load(tmp_path, msg, npy).replace("None", "-1")


def test_hostile_body_missing_outputs(tmp_path: Path) -> None:
    msg, npy = _saved(tmp_path)
    del _body_msg(msg).outputs[:]
    assert "graph has no outputs" in _load(tmp_path, msg, npy)


def test_fuzzed_scan_files_give_one_line_errors(tmp_path: Path) -> None:
    """Flipped bytes anywhere in a graph file holding a Scan and its body: it loads (and
    re-infers) or fails with one mmconv error line, never another exception."""
    import random

    from mmconv.errors import MmconvError

    c = CASES["scan_two_states_two_inputs"]()
    pb_path, _, npy = serde.save(c.graph, tmp_path / "m")
    base = pb_path.read_bytes()
    rng = random.Random(11)
    bad = tmp_path / "bad.pb"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        bad.write_bytes(bytes(data))
        try:
            serde.load(bad, npy)
        except MmconvError as exc:
            assert "\n" not in str(exc), str(exc)
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 100, outcomes
