"""Recurrent nodes no stock Keras layer computes, through the custom OnnxRecurrentCell.

Oracle: ``mmconv.ir.recurrent.run`` (the IR's numpy semantics, itself checked against
onnxruntime's LSTM/GRU/RNN in tests/ir/test_recurrent.py).  The stock-layer forms are
in test_keras_ops (the shared RECURRENT_CASES); here: peepholes with sequence lengths,
clip, input_forget, parameterised ONNX activations, LSTM g != h, directions with
different activations -- and that the ``.keras`` file loads in a fresh interpreter once
the generated model.py is imported (the one documented exception to "no file needs
mmconv": it needs that code, still not mmconv).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.emitters.keras import build_model, code_to_model, emit_code
from mmconv.ir import Graph
from mmconv.ir.recurrent import run
from mmconv.verify.compare import assert_close

from .outputs import named

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(10)
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _graph(cell: str, direction: str = "forward", peepholes: bool = False,
           seq_lens: bool = False, states: bool = False, bias: bool = True,
           **attrs: Any) -> tuple[Graph, dict[str, np.ndarray], list[np.ndarray]]:
    """One node on x [3, 6, 4] (batch and time dynamic), hidden 5; and its oracle outputs."""
    nd, g, hidden, size, n, t = (2 if direction == "bidirectional" else 1), _GATES[cell], 5, \
        4, 3, 6

    def rand(*shape: int) -> np.ndarray:
        return RNG.uniform(-1, 1, size=shape).astype(np.float32)

    graph = Graph(f"{cell}_cell")
    graph.add_input("x", "float32", [None, None, size])
    feeds = {"x": rand(n, t, size) * 2}
    arrays: list[np.ndarray | None] = [feeds["x"], rand(nd, g * hidden, size),
                                       rand(nd, g * hidden, hidden),
                                       rand(nd, 2 * g * hidden) if bias else None,
                                       None, None, None, None]
    names = ["x", "W", "R", "B" if bias else "", "", "", "", ""]
    for i in (1, 2, 3):
        if arrays[i] is not None:
            graph.add_weight(names[i], arrays[i])
    if seq_lens:
        feeds["lens"] = arrays[4] = np.array([6, 2, 4], np.int32)
        graph.add_input("lens", "int32", [None])
        names[4] = "lens"
    if states:
        for i, port in ((5, "h0"), (6, "c0"))[: 2 if cell == "LSTM" else 1]:
            feeds[port] = arrays[i] = rand(n, nd, hidden)
            graph.add_input(port, "float32", [None, nd, hidden])
            names[i] = port
    if peepholes:
        arrays[7] = rand(nd, 3 * hidden)
        graph.add_weight("P", arrays[7])
        names[7] = "P"
    while not names[-1]:
        names.pop()
    outs = ["y", "y_h", "y_c"] if cell == "LSTM" else ["y", "y_h"]
    node = graph.add_node(cell, names, "cell", outputs=outs, hidden_size=hidden,
                          direction=direction, **attrs)
    graph.outputs = outs
    want = run(node, arrays[: len(names)])
    return graph, feeds, want


#: name -> (_graph arguments): every one needs the custom cell
CELL_CASES: dict[str, dict[str, Any]] = {
    "lstm_peepholes_bidirectional_lens": {"cell": "LSTM", "direction": "bidirectional",
                                          "peepholes": True, "seq_lens": True,
                                          "states": True},
    "lstm_peepholes_reverse_no_bias": {"cell": "LSTM", "direction": "reverse",
                                       "peepholes": True, "bias": False},
    "lstm_clip_hardsigmoid": {"cell": "LSTM", "clip": 0.7, "states": True,
                              "activations": ("HardSigmoid", "Tanh", "Tanh"),
                              "activation_alpha": (0.3,), "activation_beta": (0.4,)},
    "lstm_input_forget": {"cell": "LSTM", "input_forget": 1, "direction": "reverse"},
    "lstm_g_not_h": {"cell": "LSTM", "activations": ("Sigmoid", "Relu", "Softsign")},
    "gru_scaled_tanh_lbr": {"cell": "GRU", "linear_before_reset": 1, "states": True,
                            "activations": ("Sigmoid", "ScaledTanh"),
                            "activation_alpha": (1.5,), "activation_beta": (0.8,)},
    "gru_leaky_reset_before_bidirectional": {
        "cell": "GRU", "direction": "bidirectional",
        "activations": ("Sigmoid", "LeakyRelu", "HardSigmoid", "Tanh"), "clip": 1.5},
    "rnn_affine_elu_thresholded": {
        "cell": "RNN", "direction": "bidirectional", "activations": ("Affine", "Elu"),
        "activation_alpha": (0.9, 0.7), "activation_beta": (0.1,)},
    "rnn_thresholded_relu_lens": {"cell": "RNN", "seq_lens": True,
                                  "activations": ("ThresholdedRelu",),
                                  "activation_alpha": (0.2,)},
    "rnn_hardsigmoid_defaults": {"cell": "RNN", "activations": ("HardSigmoid",),
                                 "states": True},
}


def _outputs(model: Any, graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    return named(model([feeds[v.name] for v in graph.inputs]), graph.outputs)


@pytest.mark.parametrize("name", sorted(CELL_CASES))
def test_custom_cell_matches_numpy(name: str) -> None:
    graph, feeds, want = _graph(**CELL_CASES[name])
    model, gen = build_model(graph)
    assert "OnnxRecurrentCell(" in gen.code and "register_keras_serializable" in gen.code
    got = _outputs(model, graph, feeds)
    for out, ref in zip(graph.outputs, want, strict=True):
        assert np.asarray(got[out]).shape == ref.shape, out
        assert_close(ref, np.asarray(got[out]), name=f"{name}:{out}")
    # retrainable: the cell's ONNX-layout variables are the layer's trainable weights
    layer = model.get_layer("cell_" + {"LSTM": "lstm", "GRU": "gru", "RNN": "simplernn"}[
        CELL_CASES[name]["cell"]])
    assert layer.trainable_weights and all(w.trainable for w in layer.weights)
    assert len(layer.trainable_weights) == len(layer.weights)


def test_stock_layers_stay_the_default() -> None:
    """What stock LSTM/GRU/SimpleRNN compute never goes through the cell."""
    for kw in ({"cell": "LSTM", "direction": "bidirectional", "seq_lens": True},
               {"cell": "GRU", "linear_before_reset": 0},
               {"cell": "RNN", "activations": ("Relu",)}):
        graph, _, _ = _graph(**kw)  # type: ignore[arg-type]
        _, gen = build_model(graph)
        assert "OnnxRecurrentCell" not in gen.code
        assert "layers.RNN(" not in gen.code


def test_cell_gradients_reach_every_variable() -> None:
    import tensorflow as tf

    graph, feeds, _ = _graph(**CELL_CASES["lstm_peepholes_bidirectional_lens"])
    model, _ = build_model(graph)
    layer = model.get_layer("cell_lstm")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(_outputs(model, graph, feeds)["y"]))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == 8  # kernel, recurrent, bias, peephole per direction
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


_FRESH = r"""
import importlib.util, sys
import numpy as np, keras
code, saved, feeds_path = sys.argv[1:4]
feeds = dict(np.load(feeds_path))
try:  # the cell is not registered yet: the file does not load
    keras.models.load_model(saved)
    print("LOADED-WITHOUT-CODE")
except Exception as exc:
    print("REFUSED", "OnnxRecurrentCell" in str(exc))
spec = importlib.util.spec_from_file_location("model", code)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = keras.models.load_model(saved)
out = model([feeds["x"], feeds["lens"], feeds["h0"], feeds["c0"]])
np.savez(feeds_path + ".out.npz", **{k: np.asarray(v) for k, v in out.items()})
print("MMCONV", "mmconv" in sys.modules)
"""


def test_keras_file_loads_after_importing_the_generated_code(tmp_path: Path) -> None:
    graph, feeds, want = _graph(**CELL_CASES["lstm_peepholes_bidirectional_lens"])
    code, weights, saved = tmp_path / "model.py", tmp_path / "weights.npz", \
        tmp_path / "model.keras"
    emit_code(graph, code, weights)
    code_to_model(code, weights, saved)
    assert [v.name for v in graph.inputs] == ["x", "lens", "h0", "c0"]
    np.savez(tmp_path / "in.npz", **feeds)
    (tmp_path / "fresh.py").write_text(_FRESH)
    done = subprocess.run([sys.executable, str(tmp_path / "fresh.py"), str(code), str(saved),
                           str(tmp_path / "in.npz")], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["REFUSED", "True", "MMCONV", "False"], done.stdout
    got = np.load(tmp_path / "in.npz.out.npz")
    for out, ref in zip(graph.outputs, want, strict=True):
        assert_close(ref, got[out], name=out)


@pytest.mark.parametrize("target", ["keras", "tensorflow"])
def test_verify_runners_read_the_model_files(target: str, tmp_path: Path) -> None:
    """What ``mmconvert -df keras|tensorflow --verify`` runs: the .keras file and the
    SavedModel, with the rank-1 sequence-lengths input."""
    from mmconv.emitters import get_emitter
    from mmconv.verify.runners import RUNNERS

    graph, feeds, want = _graph(**CELL_CASES["lstm_peepholes_bidirectional_lens"])
    path = tmp_path / ("m.keras" if target == "keras" else "saved")
    get_emitter(target).emit_model(graph, path)
    got = RUNNERS.get(target)(path, graph, feeds)
    for out, ref, have in zip(graph.outputs, want, got, strict=True):
        assert_close(ref, have, name=out)


def test_node_names_never_shadow_the_pasted_cells() -> None:
    """A node named like a cell class gets another identifier (the class stays callable)."""
    graph, feeds, want = _graph(**CELL_CASES["lstm_input_forget"])
    graph.nodes[0].name = "OnnxRecurrentCell"
    graph.nodes[0].outputs[0] = "OnnxRecurrentCell"
    graph.outputs[0] = "OnnxRecurrentCell"
    model, gen = build_model(graph)
    assert "    OnnxRecurrentCell = " not in gen.code
    got = _outputs(model, graph, feeds)
    assert_close(want[0], np.asarray(got["OnnxRecurrentCell"]))
