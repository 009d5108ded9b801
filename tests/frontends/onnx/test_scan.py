"""ONNX Scan and Loop as a source: our own ONNX emitter's Scans read back (IR -> ONNX ->
IR -> ONNX / PyTorch, each checked with onnxruntime on the first ONNX file), hand-made
Scans in ONNX's default time-major form (onnx.helper) and tf2onnx's for-loop Loop form
against onnxruntime (ONNX, PyTorch, Keras; the Loop also CNTK), and the forms mmconv
refuses (mixed directions, opset 8, a [1, H] state, other Loops) in one line each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from mmconv.emitters import get_emitter
from mmconv.emitters.onnx import build_model
from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx import convert
from mmconv.ir import Graph
from mmconv.verify.conversion import verify_conversion
from tests.emitters.ir_cases import CASES, SCAN_CASES, scan_edge_forms
from tests.frontends.onnx._common import FLOAT, model, rand, save

pytest.importorskip("onnxruntime")


def _forms() -> dict[str, tuple[Graph, dict[str, np.ndarray]]]:
    forms = {}
    for name in sorted(SCAN_CASES):
        c = CASES[name]()
        forms[name] = (c.graph, c.feeds)
    return {**forms, **scan_edge_forms()}


def _check(graph: Graph, source: Path, targets: tuple[str, ...], tmp: Path,
           feeds: dict[str, np.ndarray]) -> None:
    """Each target of ``graph`` against onnxruntime on ``source``, on ``feeds``."""
    for target in targets:
        out = tmp / f"{source.stem}.converted.{target}"
        get_emitter(target).emit_model(graph, out)
        result = verify_conversion(graph, ("onnx", source), (target, out), inputs=feeds)
        for r in result.outputs:
            assert r.passed, f"{source.name} -> {target}: {r}"


#: (form, opset, targets): every form through ONNX at opsets 9 and 21, PyTorch at 13
RUNS = [(n, o, ("onnx",)) for n in sorted(_forms()) for o in (9, 21)] + \
    [(n, 13, ("pytorch",)) for n in sorted(_forms())]


@pytest.mark.parametrize(("name", "opset", "targets"), RUNS,
                         ids=[f"{n}-{o}-{t[0]}" for n, o, t in RUNS])
def test_own_scan_round_trip(name: str, opset: int, targets: tuple[str, ...],
                             tmp_path: Path) -> None:
    """What mmconv's ONNX emitter writes for an IR Scan reads back as one IR Scan (no
    Transpose: the emitter scans axis 1), and runs as the first file does."""
    graph, feeds = _forms()[name]
    source = save(build_model(graph, opset=opset), tmp_path / f"{name}.onnx")
    back = convert(str(source), None)
    ops = [n.op for n in back.nodes]
    assert ops.count("Scan") == 1 and "Transpose" not in ops, ops
    scan = next(n for n in back.nodes if n.op == "Scan")
    want = next(n for n in graph.nodes if n.op == "Scan")
    assert scan.attr("num_states") == want.attr("num_states")
    assert scan.attr("reverse") == want.attr("reverse")
    assert not scan.attr("body").weights
    _check(back, source, targets, tmp_path, feeds)


def _elman(reverse: bool = False, axes: tuple[int, int] = (0, 0), capture: bool = False
           ) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """h = tanh(x_t W + h R + b [+ relu(z)]): W, R outer initializers, b a body
    initializer, z an outer activation the body reads (``capture``).  ``axes`` are the
    scan input and output axes (0: ONNX's default, time-major)."""
    n, t, i, h = 3, 5, 4, 6
    body_nodes = [
        helper.make_node("MatMul", ["x_t", "W"], ["xw"]),
        helper.make_node("MatMul", ["h", "R"], ["hr"]),
        helper.make_node("Add", ["xw", "hr"], ["pre"]),
        helper.make_node("Add", ["pre", "b"], ["pre_b"]),
    ]
    last = "pre_b"
    if capture:
        body_nodes.append(helper.make_node("Add", ["pre_b", "z_relu"], ["pre_z"]))
        last = "pre_z"
    body_nodes += [helper.make_node("Tanh", [last], ["h_new"]),
                   helper.make_node("Identity", ["h_new"], ["y_t"])]
    body = helper.make_graph(
        body_nodes, "step",
        [helper.make_tensor_value_info("h", FLOAT, ["N", h]),
         helper.make_tensor_value_info("x_t", FLOAT, ["N", i])],
        [helper.make_tensor_value_info("h_new", FLOAT, ["N", h]),
         helper.make_tensor_value_info("y_t", FLOAT, ["N", h])],
        [numpy_helper.from_array(rand(h, seed=3) * 0.5, "b")])
    attrs: dict = {"num_scan_inputs": 1}
    if axes != (0, 0):
        attrs.update(scan_input_axes=[axes[0]], scan_output_axes=[axes[1]])
    if reverse:
        attrs.update(scan_input_directions=[1], scan_output_directions=[1])
    outer = []
    if capture:
        outer.append(helper.make_node("Relu", ["z"], ["z_relu"]))
    outer.append(helper.make_node("Scan", ["h0", "x"], ["h_last", "ys"], body=body, **attrs))
    x_shape = ["T", "N", i] if axes[0] == 0 else ["N", "T", i]
    inputs = [("h0", ["N", h]), ("x", x_shape)] + ([("z", ["N", h])] if capture else [])
    proto = model(outer, inputs, ["h_last", "ys"],
                  {"W": rand(i, h, seed=1) * 0.5, "R": rand(h, h, seed=2) * 0.5}, opset=13)
    x = rand(t, n, i, seed=4) if axes[0] == 0 else rand(n, t, i, seed=4)
    feeds = {"h0": rand(n, h, seed=5), "x": x}
    if capture:
        feeds["z"] = rand(n, h, seed=6)
    return proto, feeds


HAND = {
    "time_major": {},
    "time_major_reverse": {"reverse": True},
    "batch_in_time_major_out": {"axes": (1, 0)},
    "reads_outer_activation": {"capture": True},
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_made_scan(name: str, tmp_path: Path) -> None:
    """A Scan as onnx.helper writes it (default axes 0: time-major), converted to one IR
    Scan with one Transpose on each time-major side, checked on ONNX and PyTorch."""
    proto, feeds = _elman(**HAND[name])
    source = save(proto, tmp_path / f"{name}.onnx")
    graph = convert(str(source), None)
    ops = [n.op for n in graph.nodes]
    axes = HAND[name].get("axes", (0, 0))
    assert ops.count("Scan") == 1
    assert ops.count("Transpose") == sum(a == 0 for a in axes), ops
    scan = next(n for n in graph.nodes if n.op == "Scan")
    assert scan.attr("reverse") == int(HAND[name].get("reverse", False))
    # the outer activation is passed in as a second state, returned unchanged
    assert scan.attr("num_states") == (2 if HAND[name].get("capture") else 1)
    # (CNTK refuses these by name: their time-major interface moves its batch axis)
    _check(graph, source, ("onnx", "pytorch", "keras"), tmp_path, feeds)


def _refused(proto: onnx.ModelProto, tmp: Path) -> str:
    with pytest.raises(UnsupportedError) as info:
        convert(str(save(proto, tmp / "m.onnx")), None)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_mixed_directions_refused(tmp_path: Path) -> None:
    proto, _ = _elman(reverse=True)
    scan = proto.graph.node[0]
    direction = next(a for a in scan.attribute if a.name == "scan_output_directions")
    direction.ints[:] = [0]
    message = _refused(proto, tmp_path)
    assert "Scan" in message and "mix directions" in message


def test_broadcast_constant_state_refused(tmp_path: Path) -> None:
    """A [1, H] initial state with a batch of N: ONNX carries it as [1, H], the IR would
    broadcast it, so mmconv refuses rather than change the final state's shape."""
    proto, _ = _elman()
    proto.graph.input.remove(proto.graph.input[0])
    proto.graph.initializer.append(numpy_helper.from_array(rand(1, 6, seed=9), "h0"))
    assert "state 'h0' is [1, 6]" in _refused(proto, tmp_path)


def test_opset8_scan_refused(tmp_path: Path) -> None:
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x_t"], ["s_new"]),
         helper.make_node("Identity", ["s_new"], ["y"])], "step",
        [helper.make_tensor_value_info(n, FLOAT, [3]) for n in ("s", "x_t")],
        [helper.make_tensor_value_info(n, FLOAT, [3]) for n in ("s_new", "y")])
    scan = helper.make_node("Scan", ["", "s0", "x"], ["s_last", "ys"], body=body,
                            num_scan_inputs=1)
    proto = model([scan], [("s0", [2, 3]), ("x", [2, 4, 3])],
                  [("s_last", [2, 3]), ("ys", [2, 4, 3])], opset=8)
    assert "Scan (opset 8; mmconv has it from opset 9) x1" in _refused(proto, tmp_path)


def _for_loop(trips: int = 5, limit: float = 5.0, counter_as_value: bool = False,
              dynamic_trips: bool = False, flatten_condition: bool = False
              ) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The Loop tf2onnx writes for a TensorFlow while_loop over time (Keras GRU and
    SimpleRNN): trip count T, a time counter t (+1 per step) that indexes the time-major
    sequence with Gather, the state h, the weight W carried unchanged, and a continue
    condition ``t + 1 < limit and iteration < limit``; h stacked as the scan output."""
    n, i, h = 3, 4, 6
    i64, i32 = onnx.TensorProto.INT64, onnx.TensorProto.INT32
    body_nodes = [
        helper.make_node("Add", ["t", "one"], ["t_next"]),
        helper.make_node("Gather", ["x_tm", "t"], ["x_t"]),
        helper.make_node("MatMul", ["x_t", "w_in"], ["xw"]),
        helper.make_node("MatMul", ["h", "R"], ["hr"]),
        helper.make_node("Add", ["xw", "hr"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["h_new"]),
        helper.make_node("Identity", ["h_new"], ["h_seq"]),
        helper.make_node("Cast", ["t_next"], ["t_f"], to=FLOAT),
        helper.make_node("Cast", ["iteration"], ["i_f"], to=FLOAT),
        helper.make_node("Less", ["t_f", "limit"], ["more_t"]),
        helper.make_node("Less", ["i_f", "limit"], ["more_i"]),
        helper.make_node("And", ["more_t", "more_i"], ["cond_out"]),
    ]
    if flatten_condition:  # a condition not all elementwise: checked step by step
        body_nodes[-1:] = [
            helper.make_node("And", ["more_t", "more_i"], ["cond_and"]),
            helper.make_node("Cast", ["cond_and"], ["cond_f"], to=FLOAT),
            helper.make_node("Flatten", ["cond_f"], ["cond_flat"], axis=0),
            helper.make_node("ReduceMin", ["cond_flat"], ["cond_min"], keepdims=0),
            helper.make_node("Cast", ["cond_min"], ["cond_out"], to=onnx.TensorProto.BOOL)]
    if counter_as_value:
        body_nodes[5] = helper.make_node("Tanh", ["pre"], ["h_pre"])
        body_nodes.insert(6, helper.make_node("Cast", ["t"], ["t_value"], to=FLOAT))
        body_nodes.insert(7, helper.make_node("Add", ["h_pre", "t_value"], ["h_new"]))
    body = helper.make_graph(
        body_nodes, "while_body",
        [helper.make_tensor_value_info("iteration", i64, []),
         helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("t", i32, []),
         helper.make_tensor_value_info("h", FLOAT, ["N", h]),
         helper.make_tensor_value_info("w_in", FLOAT, [i, h])],
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("t_next", i32, []),
         helper.make_tensor_value_info("h_new", FLOAT, ["N", h]),
         helper.make_tensor_value_info("w_in", FLOAT, [i, h]),
         helper.make_tensor_value_info("h_seq", FLOAT, ["N", h])],
        [numpy_helper.from_array(np.array(1, np.int32), "one"),
         numpy_helper.from_array(np.array(limit, np.float32), "limit")])
    nodes = [helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2])]
    if dynamic_trips:
        nodes += [helper.make_node("Shape", ["x"], ["x_shape"]),
                  helper.make_node("Gather", ["x_shape", "one64"], ["trips"], axis=0)]
    nodes.append(helper.make_node("Loop", ["trips", "", "t0", "h0", "W"],
                                  ["t_last", "h_last", "w_out", "h_seq_tm"], body=body,
                                  name="while_loop"))
    nodes.append(helper.make_node("Transpose", ["h_seq_tm"], ["ys"], perm=[1, 0, 2]))
    inits = {"W": rand(i, h, seed=1) * 0.5, "R": rand(h, h, seed=2) * 0.5,
             "t0": np.array(0, np.int32), "one64": np.array(1, np.int64)}
    if not dynamic_trips:
        inits["trips"] = np.array(trips, np.int64)
    x_shape: list = ["N", "T" if dynamic_trips else trips, i]
    proto = model(nodes, [("h0", ["N", h]), ("x", x_shape)],
                  [("h_last", ["N", h]), ("ys", ["N", x_shape[1], h])], inits)
    feeds = {"h0": rand(n, h, seed=5), "x": rand(n, trips, i, seed=4)}
    return proto, feeds


def test_for_loop_over_a_sequence(tmp_path: Path) -> None:
    """tf2onnx's while_loop form: one IR Scan (counter, condition and Gather gone, the
    carried weight read as an outer weight), the time-major Transposes cancelled."""
    proto, feeds = _for_loop()
    source = save(proto, tmp_path / "for_loop.onnx")
    graph = convert(str(source), None)
    assert [n.op for n in graph.nodes] == ["Scan"]
    scan = graph.nodes[0]
    assert scan.attr("num_states") == 1 and scan.attr("reverse") == 0
    assert {n.op for n in scan.attr("body").nodes} <= {"Dense", "MatMul", "Add", "Tanh"}
    _check(graph, source, ("onnx", "pytorch", "keras"), tmp_path, feeds)


@pytest.mark.cntk
def test_for_loop_to_cntk(tmp_path: Path, cntk_python: str) -> None:
    proto, feeds = _for_loop()
    source = save(proto, tmp_path / "for_loop.onnx")
    _check(convert(str(source), None), source, ("cntk",), tmp_path, feeds)


@pytest.mark.parametrize("kw", [{"trips": 20000, "limit": 20000.0},
                                {"flatten_condition": True}], ids=["long", "per_step"])
def test_loop_condition_checked(kw: dict, tmp_path: Path) -> None:
    """An elementwise condition is evaluated for all 20000 steps at once; one with a
    Flatten and a ReduceMin step by step (and found true at each)."""
    graph = convert(str(save(_for_loop(**kw)[0], tmp_path / "m.onnx")), None)
    assert [n.op for n in graph.nodes] == ["Scan"]


@pytest.mark.parametrize(("kw", "says"), [
    ({"limit": 3.0}, "its continue condition is false after step 2, before its trip count 5"),
    ({"counter_as_value": True}, "its body uses the loop counter 't' as a value"),
    ({"dynamic_trips": True}, "its trip count is not a positive number known at conversion"),
])
def test_other_loops_refused_in_one_line(kw: dict, says: str, tmp_path: Path) -> None:
    message = _refused(_for_loop(**kw)[0], tmp_path)
    assert "Loop 'while_loop': not converted: " + says in message, message
    assert "'for t in range(T) over a sequence' form" in message


def test_loop_without_a_sequence_refused(tmp_path: Path) -> None:
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]),
         helper.make_node("Add", ["s", "s"], ["s_new"])], "body",
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("s", FLOAT, [2, 3])],
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_new", FLOAT, [2, 3])])
    loop = helper.make_node("Loop", ["trips", "", "s0"], ["s_last"], body=body,
                            name="doubling")
    proto = model([loop], [("s0", [2, 3])], [("s_last", [2, 3])],
                  {"trips": np.array(3, np.int64)})
    assert "Loop 'doubling': not converted: its body reads no sequence as x[t]" in \
        _refused(proto, tmp_path)


def test_mmconvert_verify_time_major_scan(tmp_path: Path) -> None:
    """The command line: a time-major ONNX Scan to PyTorch with --verify."""
    from mmconv.cli import mmconvert

    source = save(_elman(reverse=True)[0], tmp_path / "elman.onnx")
    assert mmconvert.main(["-sf", "onnx", "-iw", str(source), "-df", "pytorch", "-om",
                           str(tmp_path / "elman.pt"), "--verify"]) == 0
