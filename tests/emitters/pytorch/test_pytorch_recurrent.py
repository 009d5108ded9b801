"""LSTM/GRU/RNN forms nn.LSTM/nn.GRU/nn.RNN cannot compute, through the generated
subclasses OnnxLSTM(nn.LSTM)/OnnxGRU(nn.GRU)/OnnxRNN(nn.RNN) and their time loop (eager
and TorchScript), against numpy: the emitter tests' own oracle (reference.py, via
ir_cases' recurrent case builder) where it covers the form, else the IR's numpy
implementation (mmconv.ir.recurrent, itself checked against onnxruntime in
tests/ir/test_recurrent.py) for clip, input_forget and activation alpha/beta; and CNTK
fixtures: one nn.*-derived module per IR cell, scripted, saved, run at a new length,
trained."""

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
    "gru_runtime_weight_bidirectional": {"cell": "GRU", "runtime_w": True,
                                         "direction": "bidirectional"},
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


CNTK_RNN = Path(__file__).resolve().parents[2] / "fixtures" / "cntk_rnn"

#: CNTK fixture -> the class of each IR cell's module, in node order (CNTK's GRU is
#: reset-before, its peephole LSTMs and RNNStep's sigmoid need the loop; bi_stack's
#: second layer is a bidirectional reset-before GRU)
CNTK_CELLS = {
    "gru_fwd": ["OnnxGRU"],
    "lstm_peephole": ["OnnxLSTM"],
    "rnnstep": ["OnnxRNN"],
    "bi_stack": ["OnnxLSTM", "OnnxGRU"],
    "lstm_fwd": ["LSTM"],
}


def _cntk_model(name: str, tmp_path: Path) -> tuple[Graph, object, dict[str, np.ndarray]]:
    """The CNTK fixture's IR, its mmtocode KitModel (eager, weight file loaded) and the
    fixture's inputs."""
    from mmconv.emitters.pytorch import emit_code
    from mmconv.emitters.pytorch.script import import_code
    from mmconv.frontends.cntk import convert

    graph = convert(None, str(CNTK_RNN / f"{name}.v2.model"))
    emit_code(graph, tmp_path / "m.py", tmp_path / "m.pth")
    io = np.load(CNTK_RNN / f"{name}.io.npz", allow_pickle=False)
    feeds = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
    with import_code(tmp_path / "m.py") as module:
        model = module.KitModel(str(tmp_path / "m.pth"))
    return graph, model, feeds


@pytest.mark.parametrize("name", sorted(CNTK_CELLS))
def test_cntk_cells_are_one_nn_module_each(name: str, tmp_path: Path) -> None:
    """Every IR cell is exactly one module that IS-A nn.LSTM/GRU/RNN (a subclass only
    for what nn.* cannot compute), holding nn.*'s parameter names plus, for peepholes,
    weight_peephole_l0[_reverse] alone."""
    from torch import nn

    graph, model, _ = _cntk_model(name, tmp_path)
    cells = [n for n in graph.nodes if n.op in ("LSTM", "GRU", "RNN")]
    layers = [m for m in model.modules() if isinstance(m, nn.RNNBase)]  # type: ignore[attr-defined]
    assert [type(m).__name__ for m in layers] == CNTK_CELLS[name]
    for node, layer in zip(cells, layers, strict=True):
        assert isinstance(layer, getattr(nn, node.op)), (node.op, type(layer))
        sfx = ["_l0", "_l0_reverse"][: 2 if node.attr("direction") == "bidirectional" else 1]
        want = {f"{k}{s}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                for s in sfx}
        if len(node.inputs) > 7 and node.inputs[7]:
            want |= {f"weight_peephole{s}" for s in sfx}
        assert {k for k, _ in layer.named_parameters()} == want


@pytest.mark.parametrize("name", ["bi_stack", "rnnstep"])
def test_cntk_cells_script_save_and_train(name: str, tmp_path: Path) -> None:
    """torch.jit.script of the KitModel (no trace), saved and loaded: the recurrent
    submodules keep their class names and run at a new number of steps like the IR's
    numpy oracle; the state_dict loads with weights_only=True; gradients reach every
    parameter of the eager model."""
    import warnings

    import torch

    from mmconv.ir.scan import run_graph

    graph, model, feeds = _cntk_model(name, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(tmp_path / "m.pt"))
        loaded = torch.jit.load(str(tmp_path / "m.pt"))
    names = [m.original_name for m in loaded.modules()]
    assert [n for n in names if n in ("OnnxLSTM", "OnnxGRU", "OnnxRNN", "LSTM")] == \
        CNTK_CELLS[name]
    x = rand(3, 7, feeds["x"].shape[2])  # the fixture has 5 steps
    want = run_graph(graph, {"x": x})[0]
    with torch.no_grad():
        got = loaded(torch.from_numpy(x))
    assert_close(want, got.numpy(), name=f"{name} TorchScript at T=7")

    state = torch.load(tmp_path / "m.pth", weights_only=True)
    model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
    model.zero_grad()  # type: ignore[attr-defined]
    model(torch.from_numpy(x)).square().sum().backward()  # type: ignore[operator]
    for key, param in model.named_parameters():  # type: ignore[attr-defined]
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), key


def test_subclass_defaults_compute_what_nn_computes() -> None:
    """OnnxLSTM/OnnxGRU/OnnxRNN with only nn.*'s constructor arguments and nn.*'s
    state_dict give nn.*'s outputs and states (batch_first either way, given hx, relu,
    bidirectional): the parameters really are nn.*'s, names, layouts and gate orders."""
    import torch
    from torch import nn

    from mmconv.emitters.pytorch import emit
    from mmconv.emitters.pytorch.script import code_module

    source = emit(_rnn_case(cell="RNN", activations=("Sigmoid",)).graph).source
    torch.manual_seed(0)
    with code_module(source) as module:
        for op, kw in (("LSTM", {"bidirectional": True, "batch_first": True}),
                       ("GRU", {"batch_first": False}),
                       ("RNN", {"nonlinearity": "relu", "bidirectional": True})):
            ref = getattr(nn, op)(3, 4, **kw)
            sub = getattr(module, f"Onnx{op}")(3, 4, **kw)
            assert isinstance(sub, getattr(nn, op))
            sub.load_state_dict(ref.state_dict(), strict=True)
            x = torch.randn(5, 2, 3)  # [T, N, I] or [N, T, I]
            h = torch.randn(2 if kw.get("bidirectional") else 1,
                            5 if kw.get("batch_first") else 2, 4)
            hx = (h, torch.randn_like(h)) if op == "LSTM" else h
            want, got = ref(x, hx), sub(x, hx)
            want_h = want[1] if op != "LSTM" else torch.cat(want[1])
            got_h = got[1] if op != "LSTM" else torch.cat(got[1])
            assert_close(want[0].detach().numpy(), got[0].detach().numpy(), name=op)
            assert_close(want_h.detach().numpy(), got_h.detach().numpy(), name=f"{op} h_n")
