"""LSTM/GRU/RNN forms nn.LSTM/nn.GRU/nn.RNN cannot compute, through the generated
``_Recurrent`` loop (eager and TorchScript), against numpy: the emitter tests' own oracle
(reference.py, via ir_cases' recurrent case builder) where it covers the form, else the
IR's numpy implementation (mmconv.ir.recurrent, itself checked against onnxruntime in
tests/ir/test_recurrent.py) for clip, input_forget and activation alpha/beta."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.ir import Graph
from mmconv.ir.recurrent import run
from mmconv.verify.compare import assert_close

from ..ir_cases import _rnn_case, rand
from ._common import assert_runs_as

#: name -> keyword arguments of ir_cases' recurrent case (reference.py's oracle)
REFERENCE_FORMS: dict[str, dict[str, object]] = {
    # CNTK RNNStep's default activation
    "rnn_sigmoid": {"cell": "RNN", "states": True, "activations": ("Sigmoid",)},
    "rnn_bidirectional_mixed": {"cell": "RNN", "direction": "bidirectional",
                                "activations": ("Tanh", "Sigmoid")},
    "lstm_relu": {"cell": "LSTM", "states": True, "activations": ("Sigmoid", "Relu", "Relu")},
    "gru_hard_sigmoid_lbr": {"cell": "GRU", "direction": "bidirectional",
                             "linear_before_reset": 1,
                             "activations": ("HardSigmoid", "Tanh", "HardSigmoid", "Softplus")},
    "lstm_reverse_sequence_lens": {"cell": "LSTM", "direction": "reverse", "seq_lens": True,
                                   "states": True},
    "gru_reset_before_sequence_lens": {"cell": "GRU", "direction": "bidirectional",
                                       "seq_lens": True},
    "lstm_peepholes_sequence_lens": {"cell": "LSTM", "peepholes": True, "seq_lens": True},
}


@pytest.mark.parametrize("name", sorted(REFERENCE_FORMS))
def test_loop_against_reference(name: str) -> None:
    c = _rnn_case(**REFERENCE_FORMS[name])  # type: ignore[arg-type]
    source = assert_runs_as(c.graph, c.feeds, c.expected, name)
    cell = REFERENCE_FORMS[name]["cell"]
    assert f" = Onnx{cell}(" in source and f"class Onnx{cell}(_OnnxLoop, nn.{cell})" in source
    assert "nn.LSTM(" not in source and "nn.GRU(" not in source and "nn.RNN(" not in source


def _ir_case(cell: str, direction: str = "forward", runtime_w: bool = False,
             **attrs: object) -> tuple[Graph, dict[str, np.ndarray], list[np.ndarray]]:
    """One node with non-trivial weights and initial states; the IR's numpy run is the
    oracle.  ``runtime_w``: W is a graph input (a weight computed at run time)."""
    nd, hidden, size, gates = (2 if direction == "bidirectional" else 1), 5, 4, \
        {"LSTM": 4, "GRU": 3, "RNN": 1}[cell]
    x, w = rand(3, 6, size), rand(nd, gates * hidden, size, low=-1, high=1)
    r, b = rand(nd, gates * hidden, hidden, low=-1, high=1), rand(nd, 2 * gates * hidden)
    h0 = rand(3, nd, hidden, low=-1, high=1)
    g = Graph(f"{cell}_ir")
    g.add_input("x", "float32", [None, None, size])
    g.add_input("h0", "float32", [None, nd, hidden])
    feeds = {"x": x, "h0": h0}
    if runtime_w:
        g.add_input("W", "float32", list(w.shape))
        feeds["W"] = w
    else:
        g.add_weight("W", w)
    g.add_weight("R", r)
    g.add_weight("B", b)
    names = ["y", "y_h", "y_c"] if cell == "LSTM" else ["y", "y_h"]
    g.add_node(cell, ["x", "W", "R", "B", "", "h0"], "cell", outputs=names,
               hidden_size=hidden, direction=direction, **attrs)
    g.outputs = names
    arrays = [x, w, r, b, None, h0]
    return g, feeds, run(g.nodes[0], arrays)


IR_FORMS: dict[str, dict[str, object]] = {
    "lstm_clip": {"cell": "LSTM", "clip": 0.7},
    "lstm_input_forget": {"cell": "LSTM", "direction": "bidirectional", "input_forget": 1},
    "gru_clip_reset_before": {"cell": "GRU", "clip": 1.1, "linear_before_reset": 0},
    "rnn_leaky_relu_alpha": {"cell": "RNN", "direction": "bidirectional",
                             "activations": ("LeakyRelu", "ScaledTanh"),
                             "activation_alpha": (0.3, 0.8), "activation_beta": (1.5,)},
    "lstm_alpha_beta": {"cell": "LSTM",
                        "activations": ("HardSigmoid", "Affine", "Elu"),
                        "activation_alpha": (0.25, 0.6, 0.9),
                        "activation_beta": (0.4, -0.2)},
    "gru_thresholded_softsign": {"cell": "GRU", "linear_before_reset": 1,
                                 "activations": ("Sigmoid", "ThresholdedRelu"),
                                 "activation_alpha": (0.2,)},
    "lstm_runtime_weight": {"cell": "LSTM", "runtime_w": True},
    "rnn_runtime_weight_sigmoid": {"cell": "RNN", "runtime_w": True,
                                   "activations": ("Sigmoid",)},
}


@pytest.mark.parametrize("name", sorted(IR_FORMS))
def test_loop_against_ir_numpy(name: str) -> None:
    graph, feeds, expected = _ir_case(**IR_FORMS[name])  # type: ignore[arg-type]
    source = assert_runs_as(graph, feeds, expected, name)
    runtime = bool(IR_FORMS[name].get("runtime_w"))
    # a runtime weight calls the loop function in forward; constants make a submodule
    model = source.split("class KitModel(")[1]
    assert (" = _recurrent(" in model) == runtime
    assert (f" = Onnx{IR_FORMS[name]['cell']}(" in source) != runtime


def test_expressible_forms_stay_nn_modules() -> None:
    """Default activations, tanh/relu RNNs and GRU(linear_before_reset=1) keep nn.*."""
    for kw, module in (({"cell": "LSTM", "activations": ("Sigmoid", "Tanh", "Tanh")}, "nn.LSTM("),
                       ({"cell": "RNN", "activations": ("Relu",)}, "nn.RNN("),
                       ({"cell": "GRU", "linear_before_reset": 1}, "nn.GRU(")):
        from mmconv.emitters.pytorch import emit

        source = emit(_rnn_case(**kw).graph).source  # type: ignore[arg-type]
        assert module in source and "_recurrent" not in source and "Onnx" not in source, kw


def test_float64_loop_loads_its_weight_file(tmp_path: Path) -> None:
    """mmtocode's KitModel(weight_file) copies the state_dict into the module's own
    parameters: the loop's parameters take the model's float64 (no float32 downcast)."""
    import torch

    from mmconv.emitters.pytorch import emit_code
    from mmconv.emitters.pytorch.script import import_code

    rng = np.random.default_rng(3)
    g = Graph("rnn64")
    g.add_input("x", "float64", [None, None, 3])
    w, r = rng.uniform(-1, 1, (1, 5, 3)), rng.uniform(-1, 1, (1, 5, 5))
    g.add_weight("W", w)
    g.add_weight("R", r)
    g.add_node("RNN", ["x", "W", "R"], "cell", outputs=["y", "y_h"], hidden_size=5,
               activations=("Sigmoid",))
    g.outputs = ["y"]
    emit_code(g, tmp_path / "m.py", tmp_path / "m.pth")
    x = rng.standard_normal((2, 4, 3))
    with import_code(tmp_path / "m.py") as module:
        got = module.KitModel(str(tmp_path / "m.pth"))(torch.from_numpy(x))
    assert got.dtype == torch.float64
    assert_close(run(g.nodes[0], [x, w, r])[0], got.detach().numpy(), name="float64 RNN")
