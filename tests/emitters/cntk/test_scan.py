"""IR ``Scan`` on the CNTK target: the body as a recurrence closed by past_value /
future_value, run by real CNTK 2.7 and compared with direct numpy loops (float64),
which are first checked against the IR evaluator (:mod:`mmconv.ir.scan`).

Each loop is built with batch and time dynamic (a CNTK sequence input) and with a
static time axis (``to_sequence``/``unpack`` inside), saved as v2 and reloaded (one
CNTK start for all); four dynamic ones also as legacy v1 (v1 has no ToSequence, and
keeps neither output names nor order: each reference must match a distinct output).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import mmconv.emitters.cntk as cntk_emitter
from mmconv.emitters.cntk.builder import build_code
from mmconv.errors import UnsupportedError
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.scan import run_graph
from mmconv.runtimes.cntk import RunRequest, run_models, run_script
from mmconv.verify.compare import assert_close

RUN_CODE = Path(__file__).with_name("run_code.py")
RNG = np.random.default_rng(11)
N, T, D, H = 3, 5, 4, 6


def _rand(*shape: int) -> np.ndarray:
    return RNG.uniform(-1.0, 1.0, size=shape).astype(np.float32)


W, U, B = _rand(D, H), _rand(H, H), _rand(H)
S0 = _rand(1, H)  # a non-zero constant initial state
V = _rand(H, H)

Arrays = dict[str, np.ndarray]


def _outer(name: str, dynamic_t: bool, width: int = D) -> Graph:
    g = Graph(name)
    g.add_input("x", "float32", [None, None if dynamic_t else T, width])
    return g


def _elman(dynamic_t: bool) -> tuple[Graph, Arrays, list[np.ndarray]]:
    """h_t = tanh(x_t W + h_{t-1} U + b) from a computed [N, H] h0; outputs y, h_T."""
    body = Graph("elman_step")
    body.add_input("h", "float32", [None, H])
    body.add_input("x", "float32", [None, D])  # the same name as the outer input
    body.add_node("MatMul", ["x", "W"], "xw")
    body.add_node("MatMul", ["h", "U"], "hu")
    body.add_node("Add", ["xw", "hu"], "pre")
    body.add_node("Add", ["pre", "b"], "pre_b")
    body.add_node("Tanh", ["pre_b"], "h_new")
    body.outputs = ["h_new", "h_new"]
    g = _outer("elman", dynamic_t)
    g.add_input("h0", "float32", [None, H])
    g.add_weight("W", W)
    g.add_weight("U", U)
    g.add_weight("b", B)
    g.add_node("Scan", ["h0", "x"], "scan", outputs=["h_last", "y"], body=body, num_states=1)
    g.outputs = ["y", "h_last"]
    x, h0 = _rand(N, T, D), _rand(N, H)
    h, ys = h0.astype(np.float64), []
    for t in range(T):
        h = np.tanh(x[:, t] @ W + h @ U + B)
        ys.append(h)
    return g, {"x": x, "h0": h0}, [np.stack(ys, 1), h]


def _running_sum(dynamic_t: bool) -> tuple[Graph, Arrays, list[np.ndarray]]:
    """s_t = s_{t-1} + x_t from a [1, H] weight (CNTK's constant initial_state)."""
    body = Graph("sum_step")
    body.add_input("s", "float32", [None, H])
    body.add_input("xt", "float32", [None, H])
    body.add_node("Add", ["s", "xt"], "s_new")
    body.outputs = ["s_new", "s_new"]
    g = _outer("running_sum", dynamic_t, H)
    g.add_weight("s0", S0)
    g.add_node("Scan", ["s0", "x"], "scan", outputs=["s_last", "y"], body=body, num_states=1)
    g.outputs = ["y", "s_last"]
    x = _rand(N, T, H)
    y = S0.astype(np.float64) + np.cumsum(x.astype(np.float64), axis=1)
    return g, {"x": x}, [y, y[:, -1]]


def _reverse_shift(dynamic_t: bool) -> tuple[Graph, Arrays, list[np.ndarray]]:
    """reverse=1, the state is the step input: y_t = x_{t+1} (y_{T-1} = s0), final x_0.
    The step output is the body's state input and the new state its step input, so
    both ends of the loop are bare values."""
    body = Graph("shift_step")
    body.add_input("s", "float32", [None, H])
    body.add_input("xt", "float32", [None, H])
    body.outputs = ["xt", "s"]
    g = _outer("reverse_shift", dynamic_t, H)
    g.add_weight("s0", S0)
    g.add_node("Scan", ["s0", "x"], "scan", outputs=["first", "y"], body=body, num_states=1,
               reverse=1)
    g.outputs = ["y", "first"]
    x = _rand(N, T, H)
    y = np.concatenate([x[:, 1:], np.broadcast_to(S0[:, None], (N, 1, H))], axis=1)
    return g, {"x": x}, [y, x[:, 0]]


def _two_states(dynamic_t: bool) -> tuple[Graph, Arrays, list[np.ndarray]]:
    """a_t = tanh(a_{t-1} V + x_t), b_t = b_{t-1} + a_t * b_{t-1}; a from a computed
    [N, H] input, b from a [1, H] weight; two step outputs (a_t * b_{t-1},
    sigmoid(b_t)) and both final states."""
    body = Graph("two_step")
    body.add_input("a", "float32", [None, H])
    body.add_input("b", "float32", [None, H])
    body.add_input("xt", "float32", [None, H])
    body.add_node("MatMul", ["a", "V"], "av")
    body.add_node("Add", ["av", "xt"], "pre")
    body.add_node("Tanh", ["pre"], "a_new")
    body.add_node("Mul", ["a_new", "b"], "ab")
    body.add_node("Add", ["b", "ab"], "b_new")
    body.add_node("Sigmoid", ["b_new"], "gate")
    body.outputs = ["a_new", "b_new", "ab", "gate"]
    g = _outer("two_states", dynamic_t, H)
    g.add_input("a0", "float32", [None, H])
    g.add_weight("V", V)
    g.add_weight("s0", S0)
    g.add_node("Scan", ["a0", "s0", "x"], "scan", outputs=["a_last", "b_last", "ab", "gate"],
               body=body, num_states=2)
    g.outputs = ["ab", "gate", "a_last", "b_last"]
    x, a0 = _rand(N, T, H), _rand(N, H)
    a, b = a0.astype(np.float64), np.broadcast_to(S0.astype(np.float64), (N, H))
    abs_, gates = [], []
    for t in range(T):
        a = np.tanh(a @ V + x[:, t])
        ab = a * b
        b = b + ab
        abs_.append(ab)
        gates.append(1 / (1 + np.exp(-b)))
    return g, {"x": x, "a0": a0}, [np.stack(abs_, 1), np.stack(gates, 1), a, b]


def _two_inputs(dynamic_t: bool) -> tuple[Graph, Arrays, list[np.ndarray]]:
    """Two scan inputs (``to_sequence`` then ``to_sequence_like`` it when T is static):
    s_t = s_{t-1} * sigmoid(g_t) + x_t from a [1, H] weight; only the final state."""
    body = Graph("gated_step")
    body.add_input("s", "float32", [None, H])
    body.add_input("xt", "float32", [None, H])
    body.add_input("gt", "float32", [None, H])
    body.add_node("Sigmoid", ["gt"], "keep")
    body.add_node("Mul", ["s", "keep"], "kept")
    body.add_node("Add", ["kept", "xt"], "s_new")
    body.outputs = ["s_new"]
    g = _outer("two_inputs", dynamic_t, H)
    g.add_input("g", "float32", [None, None if dynamic_t else T, H])
    g.add_weight("s0", S0)
    g.add_node("Scan", ["s0", "x", "g"], "scan", outputs=["s_last"], body=body, num_states=1)
    g.outputs = ["s_last"]
    x, gate = _rand(N, T, H), _rand(N, T, H)
    s_ = np.broadcast_to(S0.astype(np.float64), (N, H))
    for t in range(T):
        s_ = s_ / (1 + np.exp(-gate[:, t])) + x[:, t]
    return g, {"x": x, "g": gate}, [s_]


def _unchanged_states(dynamic_t: bool) -> tuple[Graph, Arrays, list[np.ndarray]]:
    """Outer values read at every step, passed in as states the body returns unchanged
    (the contract's way): a computed [N, H] ``c`` and a [1, H] weight ``k``;
    h_t = tanh(h_{t-1} V + x_t + c) * k.  No delay of itself: CNTK refuses one."""
    body = Graph("context_step")
    for name in ("c", "k", "h", "xt"):
        body.add_input(name, "float32", [None, H])
    body.add_node("MatMul", ["h", "V"], "hv")
    body.add_node("Add", ["hv", "xt"], "pre")
    body.add_node("Add", ["pre", "c"], "pre_c")
    body.add_node("Tanh", ["pre_c"], "act")
    body.add_node("Mul", ["act", "k"], "h_new")
    body.outputs = ["c", "k", "h_new", "h_new", "c"]
    g = _outer("unchanged_states", dynamic_t, H)
    g.add_input("c0", "float32", [None, H])
    g.add_input("h0", "float32", [None, H])
    g.add_weight("V", V)
    g.add_weight("s0", S0)
    g.add_node("Scan", ["c0", "s0", "h0", "x"], "scan",
               outputs=["c_last", "k_last", "h_last", "y", "c_steps"], body=body,
               num_states=3)
    g.outputs = ["y", "c_steps", "c_last", "k_last", "h_last"]
    x, c0, h0 = _rand(N, T, H), _rand(N, H), _rand(N, H)
    h, ys = h0.astype(np.float64), []
    for t in range(T):
        h = np.tanh(h @ V + x[:, t] + c0) * S0
        ys.append(h)
    k = np.broadcast_to(S0, (N, H))
    return g, {"x": x, "c0": c0, "h0": h0}, [np.stack(ys, 1), np.stack([c0] * T, 1), c0,
                                             k, h]


def _scalar_steps(dynamic_t: bool) -> tuple[Graph, Arrays, list[np.ndarray]]:
    """A scalar per step: X [N, T] (CNTK's to_sequence wants rank >= 2: reshaped around
    it), a state [N] from a [1] weight, and no-state outputs: s_t = s_{t-1} * 0.5 + x_t."""
    body = Graph("scalar_step")
    body.add_input("s", "float32", [None])
    body.add_input("xt", "float32", [None])
    body.add_node("Mul", ["s", "half"], "decayed")
    body.add_node("Add", ["decayed", "xt"], "s_new")
    body.outputs = ["s_new", "s_new"]
    g = Graph("scalar_steps")
    g.add_input("x", "float32", [None, None if dynamic_t else T])
    g.add_weight("half", np.array(0.5, np.float32))
    g.add_weight("s0", S0[:, 0])
    g.add_node("Scan", ["s0", "x"], "scan", outputs=["s_last", "y"], body=body, num_states=1)
    g.outputs = ["y", "s_last"]
    x = _rand(N, T)
    s_, ys = np.broadcast_to(S0[:, 0].astype(np.float64), (N,)), []
    for t in range(T):
        s_ = s_ * 0.5 + x[:, t]
        ys.append(s_)
    return g, {"x": x}, [np.stack(ys, 1), s_]


LOOPS: dict[str, Callable[[bool], tuple[Graph, Arrays, list[np.ndarray]]]] = {
    "elman": _elman, "running_sum": _running_sum, "reverse_shift": _reverse_shift,
    "two_states": _two_states, "two_inputs": _two_inputs,
    "unchanged_states": _unchanged_states, "scalar_steps": _scalar_steps,
}
#: (loop, dynamic time axis, model format)
#: v1 files (a CNTK start each to save): dynamic T only (v1 has no ToSequence), no
#: scalar sequence input (CNTK loads none from v1: "This version only supports a single
#: dynamic axis"); the loops with a computed initial state, a reverse run and a state
#: returned unchanged
V1_LOOPS = ("elman", "reverse_shift", "two_states", "unchanged_states")
RUNS = [(name, dyn, fmt) for name in LOOPS for dyn in (True, False)
        for fmt in (("v2", "v1") if dyn and name in V1_LOOPS else ("v2",))]


@pytest.fixture(scope="module")
def results(cntk_python: str, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[tuple[str, bool, str], tuple[list[np.ndarray], list[np.ndarray]]]:
    """v2: the generated code run, saved, reloaded and evaluated in one CNTK process
    (run_code.py; outputs in graph order, names checked); v1: ``.dnn`` files from
    emit_model (a CNTK start each), evaluated together."""
    tmp = tmp_path_factory.mktemp("cntk_scan")
    jobs, v1_requests, wants, outs = [], [], {}, {}
    for i, run in enumerate(RUNS):
        name, dyn, fmt = run
        graph, feeds, want = LOOPS[name](dyn)
        # the numpy loops above and the IR's own evaluator agree first
        infer_shapes(graph)
        for ref, ir in zip(want, run_graph(graph, feeds), strict=True):
            assert_close(ref.astype(np.float32), ir, name=f"{name}: IR evaluator")
        wants[run] = want
        if fmt == "v1":  # the output names are lost in v1: model.outputs
            path = tmp / f"{name}{i}.dnn"
            cntk_emitter.emit_model(graph, path)
            v1_requests.append((run, RunRequest(path, feeds, None)))
            continue
        code, weights = tmp / f"{name}{i}.py", tmp / f"{name}{i}.npy"
        cntk_emitter.emit_code(graph, code, weights)
        inputs, out = tmp / f"{name}{i}.in.npz", tmp / f"{name}{i}.out.npz"
        np.savez(inputs, **{f"in_{k}": v for k, v in feeds.items()})
        jobs.append({"code": str(code), "weights": str(weights), "inputs_npz": str(inputs),
                     "out_npz": str(out), "save": str(tmp / f"{name}{i}.model")})
        outs[run] = (out, list(graph.outputs))
    request = tmp / "jobs.json"
    request.write_text(json.dumps(jobs))
    run_script(RUN_CODE, [str(request)], isolated=True, what="CNTK Scan jobs")
    got: dict[tuple[str, bool, str], list[np.ndarray]] = {}
    for run, (out, names) in outs.items():
        with np.load(out, allow_pickle=False) as data:
            assert "error" not in data.files, f"{run}: {data['error']}"
            assert [str(n) for n in data["output_names"]] == names
            got[run] = [data[f"out_{k}"] for k in range(len(names))]
    v1_got = run_models([req for _, req in v1_requests])
    got.update({run: arrays for (run, _), arrays in zip(v1_requests, v1_got, strict=True)})
    return {run: (wants[run], got[run]) for run in RUNS}


@pytest.mark.cntk
@pytest.mark.parametrize("run", RUNS, ids=[f"{n}-{'dynT' if d else 'staticT'}-{f}"
                                          for n, d, f in RUNS])
def test_scan_matches_numpy(run: tuple[str, bool, str], results: dict) -> None:
    want, got = results[run]
    assert len(got) == len(want)
    if run[2] == "v1":
        # v1 files keep neither the output names nor their order: each reference must
        # match a distinct output
        pool = list(got)
        got = [_take_match(ref, pool) for ref in want]
    for i, (ref, have) in enumerate(zip(want, got, strict=True)):
        # CNTK hands a scalar sample back as (1,)
        assert have.shape in (ref.shape, (*ref.shape, 1)), (i, have.shape, ref.shape)
        assert_close(ref.astype(np.float32), have, name=f"{run[0]} output {i}")


def _take_match(ref: np.ndarray, pool: list[np.ndarray]) -> np.ndarray:
    """The first array in ``pool`` of ref's shape within tolerance, removed from it."""
    scale = max(1.0, float(np.abs(ref).max()))
    for i, have in enumerate(pool):
        if have.size == ref.size and \
                float(np.abs(have.reshape(ref.shape) - ref).max()) <= 1e-4 * scale:
            return pool.pop(i)
    raise AssertionError(f"no output matches the reference of shape {ref.shape}")


def test_loop_is_one_delay_per_state() -> None:
    """Not unrolled: one past_value per state (future_value when reverse), and the
    body's nodes written once, by the same handlers as the top graph."""
    graph = _two_states(True)[0]
    text, _ = build_code(graph)
    assert build_code(graph)[0] == text  # the same bytes for the same graph
    assert text.count("C.sequence.past_value(") == 2
    assert "future_value" not in text
    assert text.count("C.tanh(") == 1 and text.count("C.times(") == 1
    text, _ = build_code(_reverse_shift(False)[0])
    assert text.count("C.sequence.future_value(") == 1
    assert "C.sequence.first(" in text and "C.sequence.unpack(" in text


def test_body_node_refused_names_scan_and_body_node() -> None:
    """A body op CNTK cannot run per step is one line naming the Scan and the body node."""
    graph = _running_sum(True)[0]
    body = graph.nodes[0].attr("body")
    body.add_node("ArgMax", ["s_new"], "last_max", axis=1, select_last_index=True)
    body.outputs = ["s_new", "last_max"]
    with pytest.raises(UnsupportedError) as err:
        build_code(graph)
    text = str(err.value)
    assert "node 'scan' (Scan): its body: node 'last_max' (ArgMax)" in text
    assert "\n" not in text
