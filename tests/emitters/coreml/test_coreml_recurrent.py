"""LSTM, GRU and RNN on the Core ML target: MIL lstm/gru/rnn with a fixed number of steps.

Every recurrent IR case (tests/emitters/ir_cases.py) gets its time axis fixed
(what ``--inputShape T,D`` does) and is written as an ML Program and a
NeuralNetwork.  The ML Program read back from the file is computed in numpy
(:mod:`mmconv.emitters.coreml.evaluate`, written from the MIL op definitions,
not from the IR's numpy) and compared with the case's independent oracle
(tests/emitters/reference.py).  The CNTK fixtures made by real CNTK 2.7 go
through ``mmconvert -sf cntk -df coreml --inputShape T,D`` and must give
CNTK's stored outputs.  What MIL cannot compute exactly is refused by name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mmconv.cli import mmconvert
from mmconv.emitters.coreml import emit_model
from mmconv.emitters.coreml.check import check_model
from mmconv.emitters.coreml.evaluate import run_saved_program
from mmconv.errors import UnsupportedError
from mmconv.frontends.cntk import convert
from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.verify.compare import compare
from tests.conftest import CNTK_FIXTURES_DIR

from ..ir_cases import CASES, RECURRENT_CASES

RNN_FIXTURES = CNTK_FIXTURES_DIR.parent / "cntk_rnn"

#: case -> part of its one-line refusal
REFUSED = {
    "lstm_sequence_lens": "sequence_lens has no MIL form",
    "gru_linear_before_reset": "MIL's gru has only the reset-before form",
    "gru_bidirectional_lbr": "MIL's gru has only the reset-before form",
}

#: IR op -> the MIL op it becomes (one per IR node; GRU/RNN: one per direction)
MIL_OP = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
STEPS = 6


def _fixed_time(graph: Graph, steps: int = STEPS) -> Graph:
    """The case graph with X's time axis fixed, as --inputShape T,D fixes it."""
    graph.inputs = [dataclasses.replace(v, shape=(v.shape[0], steps, *v.shape[2:]))
                    if v.name == "x" else v for v in graph.inputs]
    for value in graph.inputs:
        graph.values[value.name] = value
    infer_shapes(graph)
    return graph


@pytest.mark.parametrize("name", sorted(RECURRENT_CASES))
def test_recurrent_case_ml_program(ct, name: str, tmp_path: Path) -> None:
    case = CASES[name]()
    graph = _fixed_time(case.graph)
    path = tmp_path / "m.mlpackage"
    if name in REFUSED:
        with pytest.raises(UnsupportedError, match=REFUSED[name]) as info:
            emit_model(graph, path)
        assert repr(case.node) in str(info.value) and "\n" not in str(info.value)
        assert list(tmp_path.iterdir()) == []
        return
    emitted = emit_model(graph, path)
    check_model(path, emitted)
    node = next(n for n in graph.nodes if n.name == case.node)
    runs = 1 if node.op == "LSTM" or node.attr("direction") != "bidirectional" else 2
    ops = [op for op, _ in emitted.ops]
    assert ops.count(MIL_OP[node.op]) == runs, ops
    # the reversed run's sequence is put back at the input positions
    assert ops.count("reverse") == (node.attr("direction") != "forward"
                                    and not (node.op == "LSTM"
                                             and node.attr("direction") == "bidirectional"))
    got, notice = run_saved_program(path, graph, case.feeds)  # batch 3 in slices of 1
    assert MIL_OP[node.op] in notice  # computed by mmconv's numpy of the MIL op
    for out, ref, array in zip(graph.outputs, case.expected, got, strict=True):
        result = compare(out, np.asarray(ref), array, rtol=1e-4)
        assert result.passed, str(result)


@pytest.mark.parametrize("name", sorted(set(RECURRENT_CASES) - set(REFUSED)))
def test_recurrent_case_neural_network(ct, name: str, tmp_path: Path) -> None:
    """The same program as a NeuralNetwork: coremltools splits the gates into one weight
    array each; the check finds every weight's values among the layer's arrays."""
    case = CASES[name]()
    path = tmp_path / "m.mlmodel"
    report = check_model(path, emit_model(_fixed_time(case.graph), path))
    kinds = set(report.op_types)
    assert kinds & {"uniDirectionalLSTM", "biDirectionalLSTM", "gru", "simpleRecurrent"}, kinds


def test_lstm_with_a_fixed_batch_of_three(ct, tmp_path: Path) -> None:
    case = CASES["lstm_bidirectional"]()
    graph = _fixed_time(case.graph)
    path = tmp_path / "m.mlpackage"
    check_model(path, emit_model(graph, path, batch=3))
    got, _ = run_saved_program(path, graph, case.feeds)
    for out, ref, array in zip(graph.outputs, case.expected, got, strict=True):
        assert compare(out, np.asarray(ref), array, rtol=1e-4).passed


def test_dynamic_time_axis_says_to_pass_input_shape(ct, tmp_path: Path) -> None:
    case = CASES["lstm_forward_states"]()  # x is [None, None, 4]
    with pytest.raises(UnsupportedError) as info:
        emit_model(case.graph, tmp_path / "m.mlpackage")
    message = str(info.value)
    assert "input 'x' has a dynamic time axis" in message and "--inputShape T,4" in message
    assert list(tmp_path.iterdir()) == []


def _variant(name: str, **attrs: object) -> Graph:
    case = CASES[name]()
    graph = _fixed_time(case.graph)
    node = next(n for n in graph.nodes if n.name == case.node)
    node.attrs.update(attrs)
    return graph


@pytest.mark.parametrize(("name", "attrs", "batch", "message"), [
    ("lstm_forward_states", {"clip": 3.0}, 1, "MIL's lstm clips the cell state"),
    ("lstm_forward_states", {"input_forget": 1}, 1, "input_forget=1"),
    ("lstm_forward_states", {"activations": ["HardSigmoid", "Tanh", "Tanh"]}, 1,
     "activation HardSigmoid has no exact MIL recurrent activation"),
    ("lstm_bidirectional", {"activations": ["Sigmoid", "Tanh", "Tanh",
                                            "Sigmoid", "Relu", "Tanh"]}, 1,
     "different activations per direction"),
    ("rnn_tanh_states", {"activations": ["Affine"]}, 1, "activation Affine"),
    ("gru_reset_before", {}, 2, "the batch is 2: Apple tests MIL's gru with batch 1 only"),
])
def test_refused_by_name(ct, name: str, attrs: dict, batch: int, message: str,
                         tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match=message) as info:
        emit_model(_variant(name, **attrs), tmp_path / "m.mlpackage", batch=batch)
    assert "node 'cell'" in str(info.value)


def test_weights_computed_at_run_time_refused(ct, tmp_path: Path) -> None:
    case = CASES["rnn_tanh_states"]()
    graph = _fixed_time(case.graph)
    graph.add_node("Identity", ["W"], "w_copy", outputs=["w_run"])
    graph.nodes.insert(0, graph.nodes.pop())
    node = next(n for n in graph.nodes if n.name == case.node)
    node.inputs[1] = "w_run"
    graph.rebuild_names()
    infer_shapes(graph)
    with pytest.raises(UnsupportedError, match="W is computed at run time"):
        emit_model(graph, tmp_path / "m.mlpackage")


# -- CNTK fixtures (real CNTK 2.7 outputs) through mmconvert --inputShape ----------------
#: Cell fixtures the Core ML target refuses, and what its one-line error says.
CNTK_REFUSED = {"lstm_float64": "input 'x' is float64; Core ML model inputs hold float32"}


def _cntk_cell_fixtures() -> list[str]:
    from tests.frontends.cntk.test_recurrent import CELL_FIXTURES

    return [n for n in CELL_FIXTURES if n not in CNTK_REFUSED]


@pytest.mark.parametrize("name", sorted(CNTK_REFUSED))
def test_cntk_fixture_refused(name: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"{name}.mlpackage"
    assert mmconvert.main(["-sf", "cntk", "-iw", str(RNN_FIXTURES / f"{name}.v2.model"),
                           "-df", "coreml", "-om", str(out), "--inputShape", "5,4"]) != 0
    err = capsys.readouterr().err
    assert CNTK_REFUSED[name] in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize("name", _cntk_cell_fixtures())
def test_cntk_fixture_through_mmconvert(ct, name: str, tmp_path: Path) -> None:
    model = str(RNN_FIXTURES / f"{name}.v2.model")
    with np.load(RNN_FIXTURES / f"{name}.io.npz", allow_pickle=False) as io:
        feeds = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
        want = io["out_0"]
    graph = convert(None, model)
    # the shape without the batch: a sequence input's steps first, then its sample shape
    shapes = [",".join(str(d) for d in feeds[v.name].shape[1:]) for v in graph.inputs]
    out = tmp_path / f"{name}.mlpackage"
    assert mmconvert.main(["-sf", "cntk", "-iw", model, "-df", "coreml", "-om", str(out),
                           "--inputShape", *shapes]) == 0
    fixed = convert(None, model, input_shapes=[tuple(int(d) for d in s.split(","))
                                               for s in shapes])
    assert all(d is not None for v in fixed.inputs for d in v.shape[1:])
    got, _ = run_saved_program(out, fixed, {v.name: feeds[v.name] for v in fixed.inputs})
    result = compare(fixed.outputs[0], want, got[0].reshape(want.shape))
    assert result.passed, str(result)


def test_cntk_fixture_without_input_shape_names_the_flag(
        ct, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = mmconvert.main(["-sf", "cntk", "-iw", str(RNN_FIXTURES / "bilstm.v2.model"),
                           "-df", "coreml", "-om", str(tmp_path / "m.mlpackage")])
    err = capsys.readouterr().err
    assert code != 0 and "pass --inputShape with it first" in err and "T,4" in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cntk
def test_verify_against_real_cntk(ct, tmp_path: Path, cntk_python: str) -> None:
    """``mmconvert -df coreml --inputShape 5,4 --verify``: the BiLSTM tagger run by real
    CNTK 2.7 against the saved ML Program computed in numpy (said so in the output)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "mmconv", "mmconvert", "-sf", "cntk", "-iw",
         str(RNN_FIXTURES / "bilstm.v2.model"), "-df", "coreml", "-om",
         str(tmp_path / "bi.mlpackage"), "--inputShape", "5,4", "--verify"],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "NOT by Core ML" in out and ": ok max|a-b|=" in out, out


# -- torch nn.LSTM/RNN exported by the real torch.onnx, against onnxruntime ---------------
#: NETS of the ONNX frontend's tests -> the refusal, or None (converted)
TORCH_NETS = {
    "lstm_2layer_bidirectional": None,
    "rnn_relu_2layer": None,
    "lstm_classifier": None,
    "lstm_dynamic_time": None,  # T fixed by input_shapes, as --inputShape 7,4
    "gru_2layer_bidirectional_sequence": "MIL's gru has only the reset-before form",
}


@pytest.mark.parametrize("name", sorted(TORCH_NETS))
def test_torch_exported_net(ct, name: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from mmconv.frontends.onnx import convert as convert_onnx
    from mmconv.verify.onnx_runner import run_onnx
    from tests.frontends.onnx.test_recurrent import _export

    source = _export(name, tmp_path / f"{name}.onnx", 14)
    graph = convert_onnx(str(source), None, input_shapes=[(7, 4)])
    path = tmp_path / "m.mlpackage"
    refusal = TORCH_NETS[name]
    if refusal is not None:
        with pytest.raises(UnsupportedError, match=refusal):
            emit_model(graph, path)
        return
    check_model(path, emit_model(graph, path))
    x = np.random.default_rng(7).standard_normal((2, 7, 4)).astype(np.float32)
    want = run_onnx(str(source), {"x": x})
    got, _ = run_saved_program(path, graph, {graph.inputs[0].name: x})
    assert len(got) == len(want)
    for out, ref, array in zip(graph.outputs, want, got, strict=True):
        result = compare(out, ref, array.reshape(ref.shape))
        assert result.passed, str(result)
