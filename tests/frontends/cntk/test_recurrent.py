"""CNTK recurrences (tests/fixtures/cntk_rnn, made by real CNTK 2.7 with
scripts/make_cntk_rnn_fixtures.py) converted by ``mmconvert`` and run in each target's
own runtime, against the outputs CNTK computed for the same batch of sequences
(2 sequences of 5 steps), v2 and legacy v1 files alike."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from mmconv.cli import mmconvert
from mmconv.errors import UnsupportedError
from mmconv.frontends.cntk import convert, read_model
from mmconv.ir.scan import run_graph
from mmconv.verify.compare import assert_close
from mmconv.verify.runners import RUNNERS, TARGET_RUNNERS

RNN_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk_rnn"
ROOT = Path(__file__).resolve().parents[3]

#: Fixtures that convert: (fixture, the IR recurrent ops: cells, and Scan for the other
#: loops and delays).
CONVERTED = {
    "lstm_fwd": ["LSTM"], "lstm_bwd": ["LSTM"], "lstm_peephole": ["LSTM"],
    "gru_fwd": ["GRU"], "gru_bwd": ["GRU"], "rnnstep": ["RNN"], "rnnstep_tanh": ["RNN"],
    "lstm_stack2": ["LSTM", "LSTM"], "bilstm": ["LSTM"], "bi_stack": ["LSTM", "GRU"],
    "fold_lstm": ["LSTM"],
    "tagger": ["LSTM"], "last_classifier": ["GRU"], "first_classifier": ["LSTM"],
    "elman_loop": ["RNN"], "lstm_relu": ["LSTM", "GRU"], "gru_from_state": ["GRU"],
    # BatchNormalization on a sequence, a bidirectional RNNStep, LayerNormalization;
    # a float64 model (a float32 LSTM between Casts in ONNX, float64 cells in CNTK)
    "bi_rnnstep_norms": ["RNN"], "lstm_float64": ["LSTM"],
    # loops that are no cntk.layers cell, and lone delays: IR Scan
    "lstm_projection": ["Scan"], "lstm_stabilized": ["Scan"], "gru_initial_state": ["Scan"],
    "cumsum_loop": ["Scan"], "future_feature": ["Scan", "GRU"],
    "handwritten_future": ["Scan", "Scan"], "loop_reductions": ["Scan", "Scan"],
    "loop_conditioned": ["Scan"], "loop_prev_output": ["Scan"],
    # delays of 2 and 3 steps (time_step=k): Scans whose states hold the last k values
    "delay2_feature": ["Scan", "Scan"], "delay2_loop": ["Scan"], "delay2_from_state": ["Scan"],
    # sequence.broadcast_as: a per-sequence value repeated at every step (a small Scan)
    "broadcast_feature": ["Scan"],
    # CNTK 2.7's sequence.reduce_sum/max: an unpack and a reduction, no loop (v2 only)
    "seq_reduce_sum": [], "seq_reduce_max": [],
    # per-step ops the IR cannot apply to [batch, time, ...] (Convolution, Pooling): a
    # state-less Scan over the steps, one per run of such ops
    "conv_on_sequence": ["Scan"],
    # a per-frame CNN (Convolution+ReLU, MaxPooling, Dense: one Scan) feeding an LSTM
    "frame_cnn_lstm": ["Scan", "LSTM"],
    # AveragePooling, TransposeAxes, Hardmax per step, the run added to a Dense of the
    # raw frames (v2: a second scan input; v1: an Add after the Scan)
    "pool_on_sequence": ["Scan"],
}
#: Fixtures the frontend refuses: none left (conv_on_sequence converts since per-step ops
#: run as a Scan); what it still refuses (offset 0, mixed delays, ...) is checked
#: on changed models by test_loops_a_scan_cannot_say_are_refused.
REFUSED: dict[str, str] = {}
#: Fixtures the IR's numpy evaluator cannot run (it has no Conv/Pooling): the targets'
#: runtimes check them against CNTK instead.
NO_NUMPY_EVAL = {"conv_on_sequence", "frame_cnn_lstm", "pool_on_sequence"}
RECURRENT_OPS = ("LSTM", "GRU", "RNN", "Scan")
SCAN_FIXTURES = sorted(n for n, ops in CONVERTED.items() if "Scan" in ops)
#: Fixtures whose loops are all cells (or that have none): no Scan to run.
CELL_FIXTURES = sorted(n for n, ops in CONVERTED.items() if "Scan" not in ops)
#: What a target cannot express (its emitter refuses the node by name).
TARGET_REFUSED: dict[str, dict[str, str]] = {
    # nothing: what nn.LSTM/GRU/RNN cannot compute (RNNStep's sigmoid, other activations,
    # peepholes, CNTK's reset-before GRU) goes through the emitter's own recurrent loop;
    # what stock Keras layers cannot (peepholes ...) through its custom cell
    "pytorch": {},
    "keras": {},
    # loops as recurrences closed by past_value/future_value, time reductions as
    # sequence.reduce_sum/max
    "cntk": {},
    "onnx": {},
}
FORMATS = ("v2", "v1")
MANIFEST = json.loads((RNN_FIXTURES / "MANIFEST.json").read_text())["fixtures"]
#: The formats each fixture has (CNTK cannot save sequence.reduce_* as v1: UnpackSequence).
FIXTURE_FORMATS = {e["name"]: tuple(e["formats"]) for e in MANIFEST}


def _cases(names: Iterable[str], formats: Iterable[str] = FORMATS) -> list[tuple[str, str]]:
    """(fixture, format) pairs for the formats the fixture was saved in."""
    return [(n, f) for n in sorted(names) for f in formats if f in FIXTURE_FORMATS[n]]


def _io(name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """CNTK's inputs by name (the IR inputs keep CNTK's names) and its output."""
    io = np.load(RNN_FIXTURES / f"{name}.io.npz", allow_pickle=False)
    names = [str(n) for n in io["input_names"]]
    return {n: io[f"in_{i}"] for i, n in enumerate(names)}, io["out_0"]


def _model(name: str, fmt: str) -> str:
    return str(RNN_FIXTURES / f"{name}.{fmt}.model")


def test_every_fixture_is_classified() -> None:
    names = {p.name[: -len(".v2.model")] for p in RNN_FIXTURES.glob("*.v2.model")}
    assert names == set(CONVERTED) | set(REFUSED) == set(FIXTURE_FORMATS)
    for name in names:
        assert (RNN_FIXTURES / f"{name}.v1.model").exists() == ("v1" in FIXTURE_FORMATS[name])
    assert sum("v1" not in f for f in FIXTURE_FORMATS.values()) == 2  # the reduce_* ones


@pytest.mark.parametrize(("name", "fmt"), _cases(CONVERTED))
def test_cells_become_ir_recurrent_ops(name: str, fmt: str) -> None:
    graph = convert(None, _model(name, fmt))
    ops = [n.op for n in graph.nodes]
    assert [o for o in ops if o in RECURRENT_OPS] == CONVERTED[name]
    feeds = _io(name)[0]
    sequences = {i["name"] for e in MANIFEST if e["name"] == name for i in e["inputs"]
                 if len(i["dynamic_axes"]) == 2}
    for x in graph.inputs:  # a sequence is [batch, time, ...] with time dynamic
        lead = (None, None) if x.name in sequences else (None,)
        assert x.shape == (*lead, *feeds[x.name].shape[len(lead):])
    assert sequences
    if CONVERTED[name] and "Scan" not in CONVERTED[name]:
        # nothing of the cell's arithmetic is left around the recurrent node
        assert not {"Sigmoid", "Tanh"} & set(ops)
    if name.startswith("bi"):  # a spliced forward/backward pair is one bidirectional node
        assert {n.attrs.get("direction") for n in graph.nodes
                if n.op in ("LSTM", "GRU", "RNN")} == {"bidirectional"}
        assert "Concat" not in ops


@pytest.mark.parametrize(("name", "fmt"), _cases(set(CONVERTED) - NO_NUMPY_EVAL))
def test_ir_matches_cntk(name: str, fmt: str) -> None:
    """The IR graph run by the IR's own numpy evaluator (Scan exactly) against CNTK."""
    graph = convert(None, _model(name, fmt))
    feeds, ref = _io(name)
    got = run_graph(graph, {v.name: feeds[v.name] for v in graph.inputs})[0]
    assert_close(ref, got, name=f"{name}.{fmt}")


@pytest.mark.parametrize(("name", "fmt"), _cases(SCAN_FIXTURES))
def test_loops_become_scans(name: str, fmt: str) -> None:
    """Each Scan body holds no weight of its own and reads only its inputs, its own values
    and the outer graph's weights; states are [N, ...] or constant [1, ...] initial states."""
    graph = convert(None, _model(name, fmt))
    scans = [n for n in graph.nodes if n.op == "Scan"]
    for node in scans:
        body = node.attrs["body"]
        assert not body.weights and not any(n.op in RECURRENT_OPS for n in body.nodes)
        own = {v.name for v in body.inputs} | {o for n in body.nodes for o in n.outputs}
        reads = {i for n in body.nodes for i in n.inputs if i} - own
        assert reads <= set(graph.weights), reads - set(graph.weights)
        assert set(body.outputs) <= own
        for state in node.inputs[: node.attrs["num_states"]]:
            shape = graph.values[state].shape
            assert shape[0] is None or (shape[0] == 1 and state in graph.weights)
    loops = {"gru_initial_state": [(0, 1)], "handwritten_future": [(1, 1), (0, 1)],
             "lstm_stabilized": [(0, 2)], "lstm_projection": [(0, 2)],
             "loop_conditioned": [(0, 2)],  # h, and the per-sequence c passed on
             # per-step ops: state-less, forward
             "conv_on_sequence": [(0, 0)], "frame_cnn_lstm": [(0, 0)],
             "pool_on_sequence": [(0, 0)]}
    if name in loops:  # (reverse, number of states) per Scan, in graph order
        assert [(n.attrs.get("reverse", 0), n.attrs["num_states"]) for n in scans] == \
            loops[name]


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_frame_cnn_is_one_scan(fmt: str) -> None:
    """The per-frame feature extractor (Convolution+ReLU, MaxPooling, Dense+ReLU) is one
    state-less Scan whose body runs on [batch, C, H, W] steps; the LSTM reads its output
    sequence with time still dynamic."""
    graph = convert(None, _model("frame_cnn_lstm", fmt))
    scan = next(n for n in graph.nodes if n.op == "Scan")
    body = scan.attrs["body"]
    assert [n.op for n in body.nodes if n.op in ("Conv", "MaxPool", "Dense", "Relu")] == \
        ["Conv", "Relu", "MaxPool", "Dense", "Relu"]
    assert body.inputs[0].shape == (None, 2, 6, 6)
    assert graph.values[scan.outputs[0]].shape == (None, None, 6)
    lstm = next(n for n in graph.nodes if n.op == "LSTM")
    assert lstm.inputs[0] == scan.outputs[0]


def test_per_step_op_reading_a_run_time_kernel_is_refused() -> None:
    """A per-step Convolution whose kernel is an input without a batch axis (neither a
    sequence nor a weight: no scan input, and a Scan body reads only outer weights by
    name) is refused in one line naming the op."""
    from mmconv.frontends.cntk.builder import convert_model

    model = read_model(_model("conv_on_sequence", "v1"))
    conv = next(f for f in model.functions if f.op == "Convolution")
    kernel = model.variables[conv.inputs[0]]
    kernel.kind, kernel.value = "input", None
    with pytest.raises(UnsupportedError) as err:
        convert_model(model)
    text = str(err.value)
    assert "\n" not in text and "ops on a sequence" in text and "Convolution x1" in text
    assert "may read sequences and weights only" in text


@pytest.mark.parametrize(("name", "fmt"), _cases(CONVERTED))
def test_onnx_cli_matches_cntk(name: str, fmt: str, tmp_path: Path) -> None:
    """``python -m mmconv mmconvert -sf cntk -iw M -df onnx``, run by onnxruntime."""
    import onnx

    from mmconv.verify.onnx_runner import run_onnx

    out = tmp_path / f"{name}.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "mmconv", "mmconvert", "-sf", "cntk", "-iw", _model(name, fmt),
         "-df", "onnx", "-om", str(out)], cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    refused = TARGET_REFUSED["onnx"].get(name)
    if refused is not None:
        assert proc.returncode != 0 and refused in proc.stderr, proc.stderr
        assert not out.exists()
        return
    assert proc.returncode == 0, proc.stderr
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert sum(o in RECURRENT_OPS for o in ops) == len(CONVERTED[name]), ops
    assert "Loop" not in ops
    feeds, ref = _io(name)
    got = run_onnx(out.read_bytes(), {i.name: feeds[i.name] for i in model.graph.input})
    # a float64 recurrent node runs in float32 between Casts (onnxruntime has no double
    # LSTM/GRU/RNN): the project's tolerance, not float64's
    rtol = 1e-4 if ref.dtype == np.float64 else None
    assert_close(ref, got[0], rtol=rtol, name=f"{name}.{fmt}")


def _convert_to(target: str, name: str, fmt: str, tmp_path: Path) -> tuple[int, Path]:
    """``mmconvert`` in this process (one framework import for all the cases)."""
    suffix = {"pytorch": ".pt", "keras": ".keras", "cntk": ".model"}[target]
    out = tmp_path / f"{name}{suffix}"
    code = mmconvert.main(["-sf", "cntk", "-iw", _model(name, fmt), "-df", target,
                           "-om", str(out)])
    return code, out


def _run(target: str, path: Path, name: str, fmt: str) -> np.ndarray:
    graph = convert(None, _model(name, fmt))
    feeds, _ = _io(name)
    runner = TARGET_RUNNERS.get(target) if target in TARGET_RUNNERS else RUNNERS.get(target)
    return runner(path, graph, {v.name: feeds[v.name] for v in graph.inputs})[0]


@pytest.mark.parametrize(("name", "fmt"), _cases(CONVERTED))
def test_pytorch_matches_cntk(name: str, fmt: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    _check_target("pytorch", name, fmt, tmp_path, capsys)


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_keras_matches_cntk(name: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("keras")
    _check_target("keras", name, "v2", tmp_path, capsys)


@pytest.mark.cntk
@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_cntk_roundtrip_matches_cntk(name: str, tmp_path: Path, cntk_python: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """v1 in (v2 where CNTK cannot write v1), the CNTK emitter's model out, run by real
    CNTK 2.7."""
    _check_target("cntk", name, FIXTURE_FORMATS[name][-1], tmp_path, capsys)


def _check_target(target: str, name: str, fmt: str, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    refused = TARGET_REFUSED[target].get(name)
    code, path = _convert_to(target, name, fmt, tmp_path)
    err = capsys.readouterr().err
    if refused is not None:
        assert code != 0 and refused in err, err
        assert not path.exists()
        return
    assert code == 0, err
    _, ref = _io(name)
    assert_close(ref, _run(target, path, name, fmt), name=f"{name}.{fmt}->{target}")


@pytest.mark.parametrize(("name", "change", "message"), [
    ("future_feature", "offset", "FutureValue5 ... : a delay of 0 steps (offset < 1)"),
    ("lstm_projection", "mixed", ": a loop mixing PastValue and FutureValue"),
])
def test_loops_a_scan_cannot_say_are_refused(name: str, change: str, message: str) -> None:
    """A delay of no step (offset 0: no file CNTK writes has one), and a loop with both
    delays (CNTK itself cannot run one), are refused in one line naming the loop."""
    from mmconv.frontends.cntk.builder import convert_model

    model = read_model(_model(name, "v1"))
    delay = next(f for f in model.functions if f.op in ("PastValue", "FutureValue"))
    if change == "offset":
        delay.attrs["offset"] = 0
    else:
        delay.op = "FutureValue" if delay.op == "PastValue" else "PastValue"
    with pytest.raises(UnsupportedError) as err:
        convert_model(model)
    text = str(err.value)
    assert "\n" not in text and "PastValue/FutureValue loop x1" in text
    assert message.split(" ... ")[-1] in text and message.split(" ... ")[0] in text


def test_state_shape_found_when_the_first_guess_fails() -> None:
    """A state that reaches its product through a Reshape gives no shape hint: the first
    guess (a scalar) cannot be reshaped to [5], and the candidate shapes find [5]."""
    from mmconv.frontends.cntk.builder import convert_model
    from mmconv.frontends.cntk.model import Function, Variable

    model = read_model(_model("elman_loop", "v1"))  # zero initial state: no hint either
    times = next(f for f in model.functions if f.op == "Times"
                 and any(i.startswith("PastValue") for i in f.inputs))
    state = times.inputs[1]
    model.variables["R_out"] = Variable("R_out", "", "output", "float32", ())
    model.functions.insert(model.functions.index(times), Function(
        "R", "", "Reshape", [state], ["R_out"], {"newShape": (5,)}))
    times.inputs[1] = "R_out"
    graph = convert_model(model)
    feeds, ref = _io("elman_loop")
    assert [n.op for n in graph.nodes].count("Scan") == 1  # no RNN cell any more
    assert_close(ref, run_graph(graph, {v.name: feeds[v.name] for v in graph.inputs})[0])


def test_reader_keeps_loops_without_calling_them_invalid() -> None:
    """The v2 reader used to call a valid recurrent model "not a valid CNTK v2 model"."""
    model = read_model(_model("lstm_fwd", "v2"))
    assert sum(f.op == "PastValue" for f in model.functions) == 2


def test_fixed_time_steps_from_input_shape(tmp_path: Path) -> None:
    """--inputShape T,D fixes the time axis; D alone leaves it dynamic."""
    import onnx

    from mmconv.verify.onnx_runner import run_onnx

    for given, dims in (("5,4", ["N", 5, 4]), ("4", None)):
        out = tmp_path / "m.onnx"
        assert mmconvert.main(["-sf", "cntk", "-iw", _model("fold_lstm", "v1"), "-df", "onnx",
                               "-om", str(out), "--inputShape", given]) == 0
        model = onnx.load(str(out))
        got = [d.dim_value or d.dim_param for d in
               model.graph.input[0].type.tensor_type.shape.dim]
        if dims is not None:
            assert got == dims
        else:
            assert got[0] == "N" and isinstance(got[1], str) and got[2] == 4
        feeds, ref = _io("fold_lstm")
        assert_close(ref, run_onnx(out.read_bytes(), feeds)[0])
    assert mmconvert.main(["-sf", "cntk", "-iw", _model("fold_lstm", "v1"), "-df", "onnx",
                           "-om", str(tmp_path / "bad.onnx"), "--inputShape", "5,3"]) != 0


@pytest.mark.cntk
@pytest.mark.parametrize(("name", "fmt", "target", "shape"), [
    ("bilstm", "v1", "onnx", None),
    ("last_classifier", "v2", "cntk", "7,4"),
    ("lstm_float64", "v1", "onnx", None),  # judged at float32's tolerance: see the emitter
])
def test_verify_against_real_cntk(name: str, fmt: str, target: str, shape: str | None,
                                  tmp_path: Path, cntk_python: str) -> None:
    """``mmconvert --verify`` feeds the source model sequences in real CNTK 2.7."""
    out = tmp_path / f"{name}.{'onnx' if target == 'onnx' else 'model'}"
    cmd = [sys.executable, "-m", "mmconv", "mmconvert", "-sf", "cntk", "-iw", _model(name, fmt),
           "-df", target, "-om", str(out), "--verify"]
    if shape:
        cmd += ["--inputShape", shape]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert ": ok max|a-b|=" in proc.stdout + proc.stderr


def test_fuzz_recurrent_attributes_and_bytes(tmp_path: Path) -> None:
    """Odd attribute values inside the loops (offsets, slice bounds, axes) and flipped bytes
    of recurrent files give MmconvError only: a refused loop or a bad file, never a crash."""
    import random

    from mmconv.errors import MmconvError
    from mmconv.frontends.cntk.model import Axis
    from tests.frontends.cntk._common import converts_scrambled

    odd: list[object] = [None, -1, 0, 2, 2**40, 1.5, "x", [], [0], Axis(99), {"a": 1}]
    rng = random.Random(4321)
    outcomes = {"ok": 0, "error": 0}
    for name in ("lstm_peephole", "gru_fwd", "first_classifier", "rnnstep"):
        for fmt in FORMATS:
            for _ in range(15):
                model = read_model(_model(name, fmt))
                # rewire: now and then an input from elsewhere
                ok = converts_scrambled(model, rng, odd, rewire=0.05)
                outcomes["ok" if ok else "error"] += 1
    data = Path(_model("lstm_fwd", "v1")).read_bytes()
    path = tmp_path / "fuzz.model"
    for i in range(60):
        blob = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            pos = rng.randrange(len(blob))
            blob[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(blob if i % 2 else blob[: rng.randrange(len(blob))]))
        try:
            convert(None, str(path))
            outcomes["ok"] += 1
        except MmconvError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0
