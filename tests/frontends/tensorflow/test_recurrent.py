"""Keras 3 recurrent layers in a SavedModel (model.export) through -sf tensorflow, checked
against TensorFlow's own outputs: LSTM and Bidirectional(LSTM) arrive from tf2onnx as
ONNX LSTM nodes (IR LSTM, the time-major Transposes cancelled); GRU (reset_after) and
SimpleRNN, plain, Bidirectional and go_backwards, arrive as tf2onnx's while_loop
``Loop`` (between ``ReverseSequence``s for a backward direction), read as IR Scans
(reverse ones for the backward directions).  A dynamic time length is refused in one line naming the
Loop and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.frontends.keras._common import keras, randomize

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

from mmconv.cli import mmconvert  # noqa: E402
from mmconv.emitters import get_emitter  # noqa: E402
from mmconv.errors import UnsupportedError  # noqa: E402
from mmconv.frontends import tensorflow as tf_frontend  # noqa: E402
from mmconv.verify.compare import compare  # noqa: E402
from mmconv.verify.runners import RUNNERS, TARGET_RUNNERS  # noqa: E402

L = keras.layers
T, FEATURES = 7, 4


def _lstms() -> Any:
    inp = keras.Input((T, FEATURES), name="x")
    y = L.Bidirectional(L.LSTM(5, return_sequences=True), name="bilstm")(inp)
    y = L.LSTM(6, name="lstm")(y)
    return randomize(keras.Model(inp, L.Dense(3, name="head")(y), name="lstms"))


def _loops() -> Any:
    inp = keras.Input((T, FEATURES), name="x")
    y = L.GRU(5, return_sequences=True, name="gru")(inp)  # reset_after=True, Keras' default
    y = L.Bidirectional(L.GRU(4, return_sequences=True), name="bigru")(y)
    y = L.SimpleRNN(6, go_backwards=True, name="rnn_back")(y)
    return randomize(keras.Model(inp, L.Dense(3, name="head")(y), name="loops"))


MODELS = {"lstms": _lstms, "loops": _loops}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """name -> (SavedModel path, IR graph, input, TensorFlow's output)."""
    tmp = tmp_path_factory.mktemp("tf_rnn")
    x = np.random.default_rng(3).standard_normal((2, T, FEATURES)).astype("float32")
    out = {}
    for name, build in MODELS.items():
        model = build()
        path = tmp / name
        model.export(str(path), verbose=False)
        graph = tf_frontend.convert(None, str(path))
        out[name] = (path, graph, x, np.asarray(model(x, training=False)))
    return out


def test_structure(exported: dict) -> None:
    """One IR LSTM per Keras LSTM (the bidirectional one included), one IR Scan per GRU
    / SimpleRNN direction, and no Transpose left from tf2onnx's time-major form."""
    ops = {name: [n.op for n in exported[name][1].nodes] for name in MODELS}
    assert ops["lstms"].count("LSTM") == 2 and "Transpose" not in ops["lstms"], ops
    assert ops["loops"].count("Scan") == 4 and "Transpose" not in ops["loops"], ops
    # the backward directions (tf2onnx: ReverseSequence around a forward Loop) are
    # reverse Scans, no time reversal left (a go_backwards last step is a first step)
    scans = [n for n in exported["loops"][1].nodes if n.op == "Scan"]
    assert [n.attr("reverse") for n in scans] == [0, 0, 1, 1]
    assert not [n for n in exported["loops"][1].nodes if n.op == "Slice" and
                -1 in (n.attr("steps") or ())]


def _check(graph: Any, out: Path, target: str, x: np.ndarray, ref: np.ndarray) -> None:
    runner = TARGET_RUNNERS.get(target) or RUNNERS.get(target)
    got = runner(out, graph, {graph.inputs[0].name: x})[0]
    result = compare(f"{out.name}", ref, np.asarray(got))
    assert result.passed, str(result)


@pytest.mark.parametrize("target", ["onnx", "pytorch", "keras"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_against_tensorflow(exported: dict, name: str, target: str, tmp_path: Path) -> None:
    _, graph, x, ref = exported[name]
    out = tmp_path / f"{name}.{ {'onnx': 'onnx', 'pytorch': 'pt', 'keras': 'keras'}[target]}"
    get_emitter(target).emit_model(graph, out)
    _check(graph, out, target, x, ref)


@pytest.mark.cntk
@pytest.mark.parametrize("name", sorted(MODELS))
def test_tensorflow_to_cntk(exported: dict, name: str, tmp_path: Path,
                            cntk_python: str) -> None:
    """The path users ask for: a TensorFlow SavedModel of a recurrent Keras model ->
    CNTK .model with mmconvert, against TensorFlow."""
    path, graph, x, ref = exported[name]
    out = tmp_path / f"{name}.model"
    assert mmconvert.main(["-sf", "tensorflow", "-iw", str(path), "-df", "cntk", "-om",
                           str(out)]) == 0
    _check(graph, out, "cntk", x, ref)


def test_dynamic_time_gru_refused_in_one_line(tmp_path: Path) -> None:
    """keras.Input((None, 4)): tf2onnx's Loop runs for a trip count computed at run time,
    which the IR's Scan cannot take from a Loop; the line names the Loop and the fixes."""
    inp = keras.Input((None, FEATURES), name="x")
    model = keras.Model(inp, L.GRU(5, name="gru")(inp))
    path = tmp_path / "gru_dynamic"
    model.export(str(path), verbose=False)
    with pytest.raises(UnsupportedError) as info:
        tf_frontend.convert(None, str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "mmconv-tf-" not in message
    assert "Loop '" in message and "gru" in message and "its trip count" in message
    assert "keras.Input((T, features))" in message and "-sf keras" in message
