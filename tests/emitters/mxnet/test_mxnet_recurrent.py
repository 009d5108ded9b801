"""LSTM/GRU/RNN as MXNet's fused ``RNN`` operator, beyond the shared IR cases.

The IR cases (test_mxnet_ops.py) check the numbers; here: the symbol's shape (one
``RNN`` node, ``SwapAxis`` only at the edges), the flat parameter vector's layout
read back against MXNet's documented order, float16/float64 layers, and the CNTK
recurrent fixtures (tests/fixtures/cntk_rnn, made by real CNTK 2.7; the loops the
frontend makes IR Scan of too) through ``mmconvert -df mxnet``, run in mxnet 1.9.1
against CNTK's outputs, and the
torch nn.LSTM/GRU/RNN nets of tests/frontends/onnx/test_recurrent.py (exported by the
real torch.onnx) against onnxruntime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.cli import mmconvert
from mmconv.emitters.mxnet import build, emit_model
from mmconv.frontends.cntk import convert
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close

from .. import reference as ref
from ..ir_cases import CASES
from .conftest import run_all

RNN_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk_rnn"

#: The CNTK cell fixtures: every one runs (the GRU, peephole, relu-LSTM and sigmoid-RNNStep
#: cells through the _foreach loop, the others the fused RNN), and the time reductions.
#: The Scan fixtures (the frontend's SCAN_FIXTURES) run too, each Scan as a _foreach.
CNTK_RUN = ["bi_rnnstep_norms", "bi_stack", "bilstm", "elman_loop", "first_classifier", "fold_lstm",
            "gru_bwd", "gru_from_state", "gru_fwd", "last_classifier", "lstm_bwd",
            "lstm_float64", "lstm_fwd", "lstm_peephole", "lstm_relu", "lstm_stack2", "rnnstep",
            "rnnstep_tanh", "seq_reduce_max", "seq_reduce_sum", "tagger"]


def test_symbol_is_one_fused_rnn() -> None:
    """One RNN node; the only layout changes are one SwapAxis per value crossing it."""
    case = CASES["lstm_bidirectional"]()  # no initial states: Y, Y_h, Y_c out
    built = build(case.graph)
    ops = [n.op for n in built.symbol.nodes]
    (rnn,) = [n for n in built.symbol.nodes if n.op == "RNN"]
    assert rnn.attrs == {"mode": "lstm", "state_size": 5, "num_layers": 1,
                         "bidirectional": True, "state_outputs": True}
    assert ops.count("SwapAxis") == 1 + 3
    assert not {"transpose", "Transpose", "FullyConnected", "Activation"} & set(ops)
    assert [n.attrs["shape"] for n in built.symbol.nodes if n.op == "_zeros"] == [(2, 0, 5)] * 2


def test_parameter_layout() -> None:
    """The flat vector in MXNet's order (Gluon's rnn_layer: weights of l0 then r0, each
    i2h then h2h, then the biases alike), gates LSTM i, f, g, o from the IR's i, o, f, c."""
    case = CASES["lstm_bidirectional"]()
    w, r, b = (case.graph.weights[k] for k in ("W", "R", "B"))
    (flat,) = build(case.graph).args.values()
    h, size = 5, 4
    gate = {"i": 0, "o": 1, "f": 2, "c": 3}  # IR blocks
    pos = 0
    for d in range(2):
        for m, cols in ((w, size), (r, h)):
            for name in "ifco":  # MXNet's i, f, g, o
                k = gate[name]
                block = flat[pos:pos + h * cols].reshape(h, cols)
                np.testing.assert_array_equal(block, m[d, k * h:(k + 1) * h])
                pos += h * cols
    for d in range(2):
        for half in range(2):
            for name in "ifco":
                k = gate[name] + 4 * half
                np.testing.assert_array_equal(flat[pos:pos + h], b[d, k * h:(k + 1) * h])
                pos += h
    assert pos == flat.size


def _graph(op: str, dtype: str, direction: str, bias: bool, states: bool,
           lens: bool | tuple[int, ...] = False, n_out: int = 3, act: str = ""
           ) -> tuple[Graph, dict[str, np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(11)
    nd, g_, h, size, n, t = (2 if direction == "bidirectional" else 1), \
        {"LSTM": 4, "GRU": 3, "RNN": 1}[op], 4, 3, 3, 5
    x = rng.standard_normal((n, t, size)).astype(dtype)
    w = rng.uniform(-1, 1, (nd, g_ * h, size)).astype(dtype)
    r = rng.uniform(-1, 1, (nd, g_ * h, h)).astype(dtype)
    b = rng.uniform(-1, 1, (nd, 2 * g_ * h)).astype(dtype) if bias else None
    g = Graph(f"{op}_{dtype}")
    g.add_input("x", dtype, [None, None, size])
    g.add_weight("W", w)
    g.add_weight("R", r)
    inputs = ["x", "W", "R", ""]
    feeds = {"x": x}
    if b is not None:
        g.add_weight("B", b)
        inputs[3] = "B"
    h0 = c0 = seq_lens = None
    if lens or states:
        inputs.append("")
    if lens:
        seq_lens = np.array((5, 1, 3) if lens is True else lens, np.int32)
        g.add_input("lens", "int32", [None])
        feeds["lens"] = seq_lens
        inputs[4] = "lens"
    if states:
        h0 = rng.uniform(-1, 1, (n, nd, h)).astype(dtype)
        g.add_input("h0", dtype, [None, nd, h])
        feeds["h0"] = h0
        inputs.append("h0")
        if op == "LSTM":
            c0 = rng.uniform(-1, 1, (n, nd, h)).astype(dtype)
            g.add_input("c0", dtype, [None, nd, h])
            feeds["c0"] = c0
            inputs.append("c0")
    outs = ["y", "y_h", "y_c"][:3 if op == "LSTM" else 2]
    attrs: dict[str, Any] = {"linear_before_reset": 1} if op == "GRU" else {}
    if act:
        attrs["activations"] = (act,) * nd
    g.add_node(op, inputs, "cell", outputs=outs, hidden_size=h, direction=direction, **attrs)
    g.outputs = outs[:n_out]
    want = ref.recurrent(op, x, w, r, b, h0, c0, direction=direction,
                         activations=attrs.get("activations", ()),
                         linear_before_reset=1 if op == "GRU" else 0, sequence_lens=seq_lens)
    return g, feeds, [a.astype(dtype) for a in want[:n_out]]


DTYPE_CASES: list[tuple[Any, ...]] = [
    ("LSTM", "float16", "bidirectional", True, True),
    ("GRU", "float64", "reverse", False, True),
    ("RNN", "float64", "forward", True, False),
    ("LSTM", "float32", "reverse", False, False),
    # sequence_lens: one RNN per direction, SequenceReverse/Mask/Last around it
    ("GRU", "float32", "bidirectional", True, True, True),
    ("LSTM", "float32", "forward", True, True, True, 2),  # Y_c unused
    ("LSTM", "float64", "bidirectional", False, False, True, 2),
    ("RNN", "float32", "reverse", True, True, True, 2, "Relu"),
    ("RNN", "float16", "bidirectional", True, False, True),
    ("GRU", "float32", "bidirectional", True, True, (0, 5, 2)),  # a row without steps
    ("LSTM", "float64", "reverse", True, False, (2, 0, 5), 2),
]


def _loop_graph(op: str, dtype: str, direction: str, peepholes: bool = False,
                states: bool = True, lens: tuple[int, ...] = (), **attrs: Any
                ) -> tuple[Graph, dict[str, np.ndarray], list[np.ndarray]]:
    """A node only the _foreach loop computes; the oracle is the IR's numpy semantics
    (mmconv.ir.recurrent, checked against onnxruntime in tests/ir/test_recurrent.py)."""
    from mmconv.ir.recurrent import run

    rng = np.random.default_rng(17)
    nd = 2 if direction == "bidirectional" else 1
    g_, h, size, n, t = {"LSTM": 4, "GRU": 3, "RNN": 1}[op], 4, 3, 3, 6
    arrays: dict[str, np.ndarray] = {
        "W": rng.uniform(-1, 1, (nd, g_ * h, size)), "R": rng.uniform(-1, 1, (nd, g_ * h, h)),
        "B": rng.uniform(-1, 1, (nd, 2 * g_ * h))}
    if peepholes:
        arrays["P"] = rng.uniform(-1, 1, (nd, 3 * h))
    g = Graph(f"{op}_loop")
    g.add_input("x", dtype, [None, None, size])
    for k, v in arrays.items():
        g.add_weight(k, v.astype(dtype))
    feeds = {"x": rng.standard_normal((n, t, size)).astype(dtype)}
    inputs = ["x", "W", "R", "B", "", "", "", ""]
    if lens:
        g.add_input("lens", "int32", [None])
        feeds["lens"] = np.array(lens, np.int32)
        inputs[4] = "lens"
    if states:
        for i, name in enumerate(["h0", "c0"][:2 if op == "LSTM" else 1]):
            g.add_input(name, dtype, [None, nd, h])
            feeds[name] = rng.uniform(-1, 1, (n, nd, h)).astype(dtype)
            inputs[5 + i] = name
    if peepholes:
        inputs[7] = "P"
    while not inputs[-1]:
        inputs.pop()
    outs = ["y", "y_h", "y_c"][:3 if op == "LSTM" else 2]
    node = g.add_node(op, inputs, "cell", outputs=outs, hidden_size=h, direction=direction,
                      **attrs)
    g.outputs = outs
    values = {**{k: v.astype(dtype) for k, v in arrays.items()}, **feeds}
    want = run(node, [values[i] if i else None for i in inputs])
    return g, feeds, [np.asarray(a, dtype) for a in want]


#: What only the loop computes: (op, dtype, direction, peepholes, states, attrs).
LOOP_CASES: list[tuple[Any, ...]] = [
    ("LSTM", "float32", "bidirectional", True, True, {"clip": 0.8}),
    ("LSTM", "float64", "reverse", False, False, {"input_forget": 1}),
    ("LSTM", "float32", "forward", False, True, {
        "activations": ("HardSigmoid", "LeakyRelu", "ScaledTanh"),
        "activation_alpha": (0.3, 0.05, 0.9), "activation_beta": (0.4, 1.2)}),
    ("GRU", "float32", "bidirectional", False, True, {
        "activations": ("Sigmoid", "Elu", "Softsign", "Softplus"),
        "activation_alpha": (0.7,)}),
    ("GRU", "float16", "reverse", False, True, {}),  # reset before the product
    ("RNN", "float32", "bidirectional", False, False, {
        "activations": ("Affine", "ThresholdedRelu"), "activation_alpha": (0.5, 0.2),
        "activation_beta": (0.1,)}),
    ("RNN", "float64", "forward", False, True, {"activations": ("Sigmoid",)}),
    # sequence_lens through the loop: a reset-before GRU; an LSTM whose Y_c is read
    # (the fused op has no per-step cell state); rows of length 0
    ("GRU", "float32", "bidirectional", False, True, {"lens": (0, 6, 2)}),
    ("LSTM", "float32", "reverse", True, True, {"lens": (3, 0, 6)}),
    ("LSTM", "float64", "bidirectional", False, False, {"lens": (6, 2, 4)}),
]


def test_loop_symbol() -> None:
    """A form the fused op lacks: one _foreach per direction, its body inline."""
    g, _, _ = _loop_graph(*LOOP_CASES[0][:5], **LOOP_CASES[0][5])
    built = build(g)
    ops = [n.op for n in built.symbol.nodes]
    assert ops.count("_foreach") == 2 and "RNN" not in ops
    loop = next(n for n in built.symbol.nodes if n.op == "_foreach")
    (body,) = loop.subgraphs
    assert {"FullyConnected", "clip", "broadcast_mul"} <= {n.op for n in body.nodes}
    assert loop.attrs["num_out_data"] == 1 and loop.attrs["num_outputs"] == 3
    assert '"subgraphs": [{"nodes": [' in built.symbol.to_json()


@pytest.mark.mxnet
@pytest.mark.parametrize("path", ["model", "code"])
def test_dtypes_and_forms(path: str, tmp_path: Path, mxnet_python: str) -> None:
    """float16 (run in float32: MXNet's CPU RNN has none), float64, no bias, reverse-only
    (between two reverse(axis=0)), initial states, sequence_lens: in one mxnet process;
    written by emit_model, or as mmtocode's code saved by MXNet (one more process)."""
    from mmconv.emitters.mxnet import emit_code
    from mmconv.runtimes.mxnet import save_many_from_code

    jobs, wants, saves = [], [], []
    made = [(str(spec), _graph(*spec)) for spec in DTYPE_CASES]
    made += [(str(spec), _loop_graph(*spec[:5], **spec[5])) for spec in LOOP_CASES]
    for i, (_, (g, feeds, want)) in enumerate(made):
        prefix = tmp_path / f"c{i}"
        if path == "model":
            emit_model(g, prefix)
        else:
            emit_code(g, tmp_path / f"c{i}.py", tmp_path / f"c{i}.params")
            saves.append((tmp_path / f"c{i}.py", tmp_path / f"c{i}.params", prefix, 0))
        jobs.append((prefix, g, feeds))
        wants.append(want)
    save_many_from_code(saves, python=mxnet_python)
    for (spec, _), want, got in zip(made, wants, run_all(jobs, mxnet_python), strict=True):
        assert len(got) == len(want)
        for a, b in zip(want, got, strict=True):
            assert b.dtype == a.dtype and b.shape == a.shape, spec
            assert_close(a, b, name=spec)


def _io(name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    with np.load(RNN_FIXTURES / f"{name}.io.npz", allow_pickle=False) as io:
        names = [str(n) for n in io["input_names"]]
        return {n: io[f"in_{i}"] for i, n in enumerate(names)}, io["out_0"]


def _scan_fixtures() -> list[str]:
    from tests.frontends.cntk.test_recurrent import SCAN_FIXTURES

    return SCAN_FIXTURES


@pytest.fixture(scope="module")
def cntk_results(tmp_path_factory: pytest.TempPathFactory, mxnet_python: str
                 ) -> dict[str, np.ndarray]:
    """Each CNTK fixture (cells, and the loops the frontend makes IR Scan of) through
    ``mmconvert -df mxnet``, all run in one process."""
    tmp = tmp_path_factory.mktemp("mxnet_cntk_rnn")
    jobs = []
    names = CNTK_RUN + _scan_fixtures()
    for name in names:
        model = str(RNN_FIXTURES / f"{name}.v2.model")
        assert mmconvert.main(["-sf", "cntk", "-iw", model, "-df", "mxnet",
                               "-om", str(tmp / name)]) == 0
        graph = convert(None, model)
        feeds, _ = _io(name)
        jobs.append((tmp / name, graph, {v.name: feeds[v.name] for v in graph.inputs}))
    return {name: got[0] for name, got in zip(names, run_all(jobs, mxnet_python),
                                              strict=True)}


@pytest.mark.mxnet
@pytest.mark.parametrize("name", CNTK_RUN + _scan_fixtures())
def test_cntk_fixture_matches_cntk(name: str, cntk_results: dict[str, np.ndarray]) -> None:
    _, want = _io(name)
    assert_close(want, cntk_results[name], name=name)


@pytest.mark.mxnet
@pytest.mark.cntk
def test_verify_against_real_cntk(tmp_path: Path, mxnet_python: str, cntk_python: str) -> None:
    """``mmconvert -df mxnet --verify``: the legacy-v1 BiLSTM fed sequences in real CNTK
    2.7 and the checkpoint run in mxnet 1.9.1."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "mmconv", "mmconvert", "-sf", "cntk", "-iw",
         str(RNN_FIXTURES / "bilstm.v1.model"), "-df", "mxnet", "-om", str(tmp_path / "bi"),
         "--verify"], cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert ": ok max|a-b|=" in proc.stdout + proc.stderr


def test_every_converted_cntk_fixture_is_classified() -> None:
    from tests.frontends.cntk.test_recurrent import CONVERTED, SCAN_FIXTURES

    assert set(CNTK_RUN) | set(SCAN_FIXTURES) == set(CONVERTED)
    assert not set(CNTK_RUN) & set(SCAN_FIXTURES)


@pytest.fixture(scope="module")
def torch_results(tmp_path_factory: pytest.TempPathFactory, mxnet_python: str
                  ) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """The torch nn.LSTM/GRU/RNN nets of the ONNX frontend's tests, exported by the real
    torch.onnx, converted and run in one mxnet process: name -> (onnxruntime, mxnet)."""
    pytest.importorskip("torch")
    from mmconv.frontends.onnx import convert as convert_onnx
    from mmconv.verify.onnx_runner import run_onnx
    from tests.frontends.onnx.test_recurrent import NETS, _export

    tmp = tmp_path_factory.mktemp("mxnet_torch_rnn")
    rng = np.random.default_rng(5)
    jobs, refs = [], []
    for name in sorted(NETS):
        path = _export(name, tmp / f"{name}.onnx", 14)
        graph = convert_onnx(str(path), None)
        feeds = {v.name: rng.standard_normal(  # batch 2; a dynamic time axis 9 (not 7)
            [int(d) if d is not None else 2 if i == 0 else 9 for i, d in enumerate(v.shape)]
        ).astype(np.float32) for v in graph.inputs}
        emit_model(graph, tmp / name)
        jobs.append((tmp / name, graph, feeds))
        refs.append(run_onnx(path.read_bytes(), feeds))
    got = run_all(jobs, mxnet_python)
    return {name: (ref_, have) for name, ref_, have in zip(sorted(NETS), refs, got, strict=True)}


TORCH_NETS = ["gru_2layer_bidirectional", "gru_2layer_bidirectional_sequence",
              "gru_initial_state", "lstm_2layer_bidirectional",
              "lstm_2layer_bidirectional_states", "lstm_classifier", "lstm_dynamic_time",
              "rnn_relu_2layer", "rnn_tanh_bidirectional_states"]


@pytest.mark.mxnet
@pytest.mark.parametrize("name", TORCH_NETS)
def test_torch_onnx_net_matches_onnxruntime(name: str, torch_results: dict[str, Any]) -> None:
    want, got = torch_results[name]
    assert len(want) == len(got)
    for a, b in zip(want, got, strict=True):
        assert_close(np.asarray(a), b, name=name)


def test_torch_nets_are_those_of_the_onnx_tests() -> None:
    pytest.importorskip("torch")
    from tests.frontends.onnx.test_recurrent import NETS

    assert sorted(NETS) == TORCH_NETS
