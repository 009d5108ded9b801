"""torch nn.LSTM/GRU/RNN exported by the real torch.onnx at test time (batch_first,
stacked, bidirectional), converted by the ONNX frontend and checked on every target
against onnxruntime on the exported file; the structure of the result is pinned: one IR
node (one ONNX node, one nn.LSTM ...) per layer and direction pair, no Transposes on the
batch-first path."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mmconv.errors import UnsupportedError  # noqa: E402
from tests.frontends.onnx._common import convert_and_check  # noqa: E402

nn = torch.nn
ALL = ("onnx", "pytorch", "keras", "cntk")


class Tagger(nn.Module):
    """A recurrent stack returning its sequence, and with ``states`` its final states as
    torch gives them ([layers*dirs, N, H]: the batch on axis 1, which CNTK cannot output)."""

    def __init__(self, cell: str, states: bool = True, **kw: object) -> None:
        super().__init__()
        self.rnn = getattr(nn, cell)(4, 5, batch_first=True, **kw)
        self.states = states

    def forward(self, x: torch.Tensor) -> tuple:
        y, state = self.rnn(x)
        if not self.states:
            return y
        return (y, *state) if isinstance(state, tuple) else (y, state)


class Classifier(nn.Module):
    """LSTM, its last step, a Linear head: what a sequence classifier exports."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 6, num_layers=2, batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)
        return torch.softmax(self.fc(y[:, -1]), dim=-1)


class DynamicTime(nn.Module):
    """A bidirectional 2-layer LSTM tagger with a per-step Linear, exported with the time
    axis dynamic too: the IR keeps [N, T, 4]."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 5, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0])


class WithState(nn.Module):
    """A GRU given its initial state as a second model input."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 5, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        return self.rnn(x, h0)[0]


NO_CNTK = ("onnx", "pytorch", "keras")
#: name -> (module factory, targets, ops expected in the IR).  CNTK is left out where the
#: model returns torch's [layers*dirs, N, H] states (CNTK cannot move its batch axis)
NETS = {
    "lstm_2layer_bidirectional_states": (
        lambda: Tagger("LSTM", num_layers=2, bidirectional=True), NO_CNTK, {"LSTM": 2}),
    "lstm_2layer_bidirectional": (
        lambda: Tagger("LSTM", False, num_layers=2, bidirectional=True), ALL, {"LSTM": 2}),
    "gru_2layer_bidirectional": (lambda: Tagger("GRU", num_layers=2, bidirectional=True),
                                 NO_CNTK, {"GRU": 2}),
    "gru_2layer_bidirectional_sequence": (
        lambda: Tagger("GRU", False, num_layers=2, bidirectional=True), ALL, {"GRU": 2}),
    "rnn_relu_2layer": (lambda: Tagger("RNN", False, num_layers=2, nonlinearity="relu"),
                        ALL, {"RNN": 2}),
    "rnn_tanh_bidirectional_states": (lambda: Tagger("RNN", bidirectional=True), NO_CNTK,
                                      {"RNN": 1}),
    "lstm_classifier": (Classifier, ALL, {"LSTM": 2}),
    "gru_initial_state": (WithState, NO_CNTK, {"GRU": 1}),
    "lstm_dynamic_time": (DynamicTime, ALL, {"LSTM": 2}),
}
#: (net, opset): every net at opset 14 (the layout attribute exists), two at 11
RUNS = [(n, 14) for n in sorted(NETS)] + [("lstm_2layer_bidirectional", 11),
                                          ("gru_2layer_bidirectional", 11)]


def _export(name: str, path: Path, opset: int) -> Path:
    torch.manual_seed(sum(map(ord, name)))
    model = NETS[name][0]().eval()
    x = torch.randn(2, 7, 4)
    args: tuple = (x,)
    names = ["x"]
    if name == "gru_initial_state":
        args = (x, torch.randn(2, 2, 5))
        names.append("h0")
    # torch's state input is [layers*dirs, N, H]: its batch is not axis 0, which the ONNX
    # frontend wants dynamic alone, so that model is exported with a fixed batch
    axes = {"x": {0: "batch"}} if len(args) == 1 else {}
    if name == "lstm_dynamic_time":
        axes = {"x": {0: "batch", 1: "time"}}
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), \
            redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), input_names=names, dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
    return path


@pytest.mark.parametrize(("name", "opset"), RUNS, ids=[f"{n}-{o}" for n, o in RUNS])
def test_torch_recurrent_model_converts(name: str, opset: int, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    _, targets, ops = NETS[name]
    if "cntk" in targets:
        request.getfixturevalue("cntk_python")
    (tmp_path / "source").mkdir()
    path = _export(name, tmp_path / "source" / f"{name}.onnx", opset)
    graph = convert_and_check(path, targets, tmp_path)
    counts = {op: sum(1 for n in graph.nodes if n.op == op) for op in ops}
    assert counts == ops
    # the batch-first path has no transposes: only the [layers*dirs, N, H] state outputs
    # (torch's time-major convention) keep one at the model boundary
    first = next(n for n in graph.nodes if n.op in ops)
    assert first.inputs[0] == graph.inputs[0].name
    transposes = [n for n in graph.nodes if n.op == "Transpose"]
    assert all(n.outputs[0] in graph.outputs or n.inputs[0] in {v.name for v in graph.inputs}
               for n in transposes), [(n.inputs, n.outputs) for n in transposes]


def test_targets_write_one_layer_per_ir_node(tmp_path: Path) -> None:
    """In the ONNX output each IR LSTM is one LSTM node; in PyTorch one nn.LSTM."""
    import onnx

    from mmconv.emitters import get_emitter
    from mmconv.emitters.pytorch import emit
    from mmconv.frontends.onnx import convert

    graph = convert(str(_export("lstm_2layer_bidirectional", tmp_path / "m.onnx", 14)), None)
    get_emitter("onnx").emit_model(graph, tmp_path / "out.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "out.onnx")).graph.node]
    assert ops.count("LSTM") == 2 and "Loop" not in ops and "Scan" not in ops
    source = emit(graph).source
    assert source.count("nn.LSTM(") == 2
    assert "bidirectional=True" in source and "batch_first=True" in source


def test_cntk_refuses_torch_state_outputs_by_node(tmp_path: Path) -> None:
    """torch's final states are [layers*dirs, N, H]: CNTK cannot put its batch axis there;
    one error names the nodes, nothing is written."""
    from mmconv.emitters import get_emitter
    from mmconv.frontends.onnx import convert

    path = _export("lstm_2layer_bidirectional_states", tmp_path / "s.onnx", 14)
    graph = convert(str(path), None)
    with pytest.raises(UnsupportedError, match=r"\(Transpose\): perm \[1, 0, 2\] moves the batch"):
        get_emitter("cntk").emit_model(graph, tmp_path / "s.model")
    assert not list(tmp_path.glob("s.model*"))


def test_dynamic_time_stays_dynamic(tmp_path: Path) -> None:
    """Exported with a dynamic time axis, the IR input is [N, T, 4] with no Transpose or
    time-fixing Reshape, and the PyTorch target matches onnxruntime at a new length."""
    import numpy as np

    from mmconv.emitters.pytorch import emit
    from mmconv.frontends.onnx import convert
    from mmconv.verify.compare import assert_close
    from mmconv.verify.onnx_runner import OnnxRunner
    from tests.emitters.pytorch._common import run_both

    path = _export("lstm_dynamic_time", tmp_path / "d.onnx", 14)
    graph = convert(str(path), None)
    assert graph.inputs[0].shape == (None, None, 4)
    assert [n.op for n in graph.nodes] == ["LSTM", "Reshape", "LSTM", "Reshape", "MatMul",
                                           "Add"]
    x = np.random.default_rng(3).standard_normal((3, 11, 4)).astype(np.float32)
    want = OnnxRunner(path).run({"x": x})[0]
    eager, script, _ = run_both(graph, {graph.inputs[0].name: x})
    assert_close(want, eager[0], name="eager")
    assert_close(want, script[0], name="TorchScript")
    assert "nn.LSTM(" in emit(graph).source


def test_layout1_node_and_shape_made_lengths(tmp_path: Path) -> None:
    """An opset-14 LSTM with layout=1 (batch-major, which onnxruntime refuses to run)
    becomes the IR node with no Transpose; sequence_lens computed from the input's shape
    (all equal to T, as tf2onnx writes them) are dropped.  Checked against the numpy
    implementation through the PyTorch target."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from mmconv.frontends.onnx import convert
    from mmconv.ir.recurrent import run
    from mmconv.verify.compare import assert_close
    from tests.emitters.pytorch._common import run_both

    rng = np.random.default_rng(5)
    w = rng.uniform(-1, 1, (2, 20, 4)).astype(np.float32)
    r = rng.uniform(-1, 1, (2, 20, 5)).astype(np.float32)
    b = rng.uniform(-1, 1, (2, 40)).astype(np.float32)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("ConstantOfShape", ["n"], ["lens64"],
                         value=helper.make_tensor("v", TensorProto.INT64, [1], [6])),
        helper.make_node("Cast", ["lens64"], ["lens"], to=TensorProto.INT32),
        helper.make_node("LSTM", ["x", "W", "R", "B", "lens"], ["y", "yh"], hidden_size=5,
                         direction="bidirectional", layout=1),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 2, 5]),
         helper.make_tensor_value_info("yh", TensorProto.FLOAT, ["N", 2, 5])],
        [onnx.numpy_helper.from_array(a, n) for n, a in
         (("W", w), ("R", r), ("B", b), ("zero", np.array([0], np.int64)))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "layout1.onnx"
    onnx.save(model, str(path))
    ir = convert(str(path), None)
    assert [n.op for n in ir.nodes] == ["LSTM"]
    lstm = ir.nodes[0]
    assert len(lstm.inputs) == 4  # no sequence_lens, no states
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    want = run(lstm, [x, w, r, b])
    eager, script, _ = run_both(ir, {ir.inputs[0].name: x})
    for i in range(2):
        assert_close(want[i], eager[i], name=f"eager {i}")
        assert_close(want[i], script[i], name=f"TorchScript {i}")
