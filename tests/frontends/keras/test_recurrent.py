"""Keras recurrent layers (LSTM, GRU both reset_after forms, SimpleRNN, RNN over each cell,
Bidirectional with every merge mode, return_sequences/return_state, go_backwards, initial
states, stacked, TimeDistributed(Dense), an Embedding classifier, a dynamic time axis)
against Keras' own output through each target; masks, stateful layers, activations ONNX
lacks and damaged configs refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.cli import mmconvert
from mmconv.ir import Graph
from mmconv.verify.compare import compare
from tests.frontends.keras._common import (
    EXT,
    check,
    keras,
    keras_frontend,
    predict,
    randomize,
    runner_for,
)

L = keras.layers
TARGETS = ("onnx", "pytorch", "keras")


def lstm_model() -> keras.Model:
    """Stacked LSTMs: a sequence (with dropouts: training only), a go_backwards
    sequence, then the last output and both states (return_state)."""
    inp = keras.Input((6, 5), name="seq")
    x = L.LSTM(7, return_sequences=True, dropout=0.3, recurrent_dropout=0.2, name="lstm1")(inp)
    x = L.LSTM(6, return_sequences=True, go_backwards=True, name="lstm_back")(x)
    y, h, c = L.LSTM(4, return_state=True, name="lstm_last")(x)
    td = L.TimeDistributed(L.Dense(3, activation="relu"), name="per_step")(x)
    return randomize(keras.Model(inp, [x, y, h, c, td], name="lstms"))


def gru_model() -> keras.Model:
    """GRU reset_after=True (two bias rows, unrolled: same arithmetic) then
    reset_after=False, go_backwards, both with return_state."""
    inp = keras.Input((5, 4), name="seq")
    x, h1 = L.GRU(6, return_sequences=True, return_state=True, unroll=True,
                  name="gru_after")(inp)
    y, h2 = L.GRU(5, reset_after=False, go_backwards=True, return_state=True,
                  name="gru_before")(x)
    return randomize(keras.Model(inp, [x, h1, y, h2], name="grus"))


def simple_rnn_model() -> keras.Model:
    """SimpleRNN, and the generic RNN layer over each cell (the layer's arithmetic)."""
    inp = keras.Input((7, 3), name="seq")
    x = L.SimpleRNN(6, return_sequences=True, name="rnn1")(inp)
    y = L.SimpleRNN(4, go_backwards=True, use_bias=False, name="rnn_back")(x)
    z = L.RNN(L.LSTMCell(3), return_sequences=True, go_backwards=True, name="lstm_cell")(x)
    w = L.Bidirectional(L.RNN(L.GRUCell(2, reset_after=False)), name="bi_gru_cell")(inp)
    v = L.RNN(L.SimpleRNNCell(2), name="rnn_cell")(z)
    return randomize(keras.Model(inp, [x, y, z, w, v], name="simple_rnns"))


def bidirectional_model() -> keras.Model:
    """Every merge mode, sequences and last outputs, one with return_state."""
    inp = keras.Input((5, 4), name="seq")
    concat = L.Bidirectional(L.LSTM(5, return_sequences=True), name="bi_concat")(inp)
    summed = L.Bidirectional(L.GRU(4), merge_mode="sum", name="bi_sum")(concat)
    mul = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="mul",
                          name="bi_mul")(inp)
    ave, fh, fc, bh, bc = L.Bidirectional(L.LSTM(3, return_state=True), merge_mode="ave",
                                          name="bi_ave")(inp)
    fwd, bwd = L.Bidirectional(L.GRU(2, reset_after=False, return_sequences=True),
                               merge_mode=None, name="bi_none")(inp)
    return randomize(keras.Model(inp, [concat, summed, mul, ave, fh, fc, bh, bc, fwd, bwd],
                                 name="bidirectionals"))


def embedding_classifier() -> keras.Model:
    """Token ids -> Embedding -> Conv1D -> MaxPooling1D (channels-first in the IR) ->
    Bidirectional LSTM -> LSTM -> Dense softmax."""
    model = keras.Sequential([
        keras.Input((8,), dtype="int32", name="tokens"),
        L.Embedding(20, 6, name="embed"),
        L.Conv1D(6, 3, padding="same", activation="relu", name="conv"),
        L.MaxPooling1D(2, name="pool"),
        L.Bidirectional(L.LSTM(5, return_sequences=True), name="bilstm"),
        L.LSTM(4, name="lstm"),
        L.Dense(3, activation="softmax", name="scores"),
    ], name="classifier")
    return randomize(model)


def tokens(model: keras.Model) -> list[np.ndarray]:
    return [np.random.default_rng(3).integers(0, 20, (2, 8)).astype("int32")]


def test_lstm(tmp_path: Path) -> None:
    check(lstm_model(), tmp_path, TARGETS, ("keras", "h5"))


def test_gru_both_reset_forms(tmp_path: Path) -> None:
    check(gru_model(), tmp_path, TARGETS)


def test_simple_rnn(tmp_path: Path) -> None:
    check(simple_rnn_model(), tmp_path, TARGETS)


def test_bidirectional_merge_modes(tmp_path: Path) -> None:
    check(bidirectional_model(), tmp_path, TARGETS, ("keras", "h5"))


def test_embedding_classifier(tmp_path: Path) -> None:
    check(embedding_classifier(), tmp_path, TARGETS, inputs=tokens)


@pytest.mark.cntk
@pytest.mark.parametrize("build", [lstm_model, gru_model, simple_rnn_model, bidirectional_model,
                                   lambda: initial_state_model()],
                         ids=["lstm", "gru", "simple_rnn", "bidirectional", "initial_states"])
def test_cntk_target(build, tmp_path: Path, cntk_python: str) -> None:
    check(build(), tmp_path, ("cntk",))


@pytest.mark.cntk
def test_embedding_classifier_cntk(tmp_path: Path, cntk_python: str) -> None:
    check(embedding_classifier(), tmp_path, ("cntk",), inputs=tokens)


def activations_model() -> keras.Model:
    """Non-default activations, each one ONNX has: hard_sigmoid (Keras 3: x/6 + 0.5,
    clipped), relu, softsign, linear (ONNX Affine 1, 0), elu, leaky_relu (0.2)."""
    inp = keras.Input((5, 3), name="seq")
    a = L.LSTM(4, activation="softsign", recurrent_activation="hard_sigmoid",
               return_sequences=True, name="lstm_acts")(inp)
    b = L.GRU(3, activation="elu", recurrent_activation="hard_sigmoid", name="gru_acts")(a)
    c = L.SimpleRNN(3, activation="linear", name="rnn_linear")(inp)
    d = L.Bidirectional(L.SimpleRNN(2, activation="leaky_relu"), name="bi_leaky")(inp)
    e = L.SimpleRNN(2, activation="relu", name="rnn_relu")(a)
    return randomize(keras.Model(inp, [a, b, c, d, e], name="activations"))


def test_activations(tmp_path: Path) -> None:
    """(CNTK's cells have sigmoid gates and no affine/leaky activations: refused there.)"""
    check(activations_model(), tmp_path, TARGETS)


def initial_state_model() -> keras.Model:
    """States given as model inputs (initial_state=...), forward and bidirectional."""
    inp = keras.Input((5, 3), name="seq")
    h, c = keras.Input((4,), name="h0"), keras.Input((4,), name="c0")
    g = keras.Input((3,), name="g0")
    x = L.LSTM(4, return_sequences=True, name="lstm_init")(inp, initial_state=[h, c])
    y = L.Bidirectional(L.GRU(3), name="bi_init")(x, initial_state=[g, g])
    return randomize(keras.Model([inp, h, c, g], [x, y], name="initial_states"))


def test_initial_states(tmp_path: Path) -> None:
    check(initial_state_model(), tmp_path, ("onnx", "pytorch", "keras"))


def _refused(tmp_path: Path, model: keras.Model, capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / f"{model.name}.keras"
    model.save(str(path))
    out = tmp_path / "out.onnx"
    rc = mmconvert.main(["-sf", "keras", "-iw", str(path), "-df", "onnx", "-om", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and not out.exists()
    assert len(err) == 1, err
    return err[0]


def test_masks_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mask fed to a recurrent layer changes its result: refused, naming both layers
    (Sequential Masking, functional Embedding(mask_zero=True) through a Dense)."""
    seq = keras.Sequential([keras.Input((5, 3)), L.Masking(name="pad_mask"),
                            L.LSTM(2, name="lstm")], name="masked_seq")
    line = _refused(tmp_path, seq, capsys)
    assert "'lstm' (LSTM) is fed the mask of 'pad_mask'" in line
    ids = keras.Input((6,), dtype="int32")
    x = L.Dense(4, name="proj")(L.Embedding(10, 3, mask_zero=True, name="emb")(ids))
    fun = keras.Model(ids, L.Bidirectional(L.GRU(2), name="bi")(x), name="masked_fun")
    line = _refused(tmp_path, fun, capsys)
    assert "'bi' (Bidirectional) is fed the mask of 'emb'" in line


def test_unconvertible_options_refused(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    inp = keras.Input((5, 3), batch_size=2)
    a = L.LSTM(2, stateful=True, name="kept")(inp)
    b = L.GRU(2, activation="selu", name="selu_gru")(inp)
    c = L.Bidirectional(L.SimpleRNN(2, activation="gelu"), name="bi_gelu")(inp)
    d = L.RNN([L.SimpleRNNCell(2), L.SimpleRNNCell(2)], name="stacked_cells")(inp)
    e = L.TimeDistributed(L.Reshape((3, 1)), name="td_reshape")(inp)
    line = _refused(tmp_path, keras.Model(inp, [a, b, c, d, e], name="options"), capsys)
    assert "TimeDistributed(Reshape) x1 (td_reshape)" in line
    assert "RNN(StackedRNNCells) x1 (stacked_cells)" in line
    assert "LSTM(stateful=True" in line and "(kept)" in line
    assert "GRU(activation=selu" in line and "(selu_gru)" in line
    assert "Bidirectional(activation=gelu" in line and "(bi_gelu)" in line


def masked_values_model() -> keras.Model:
    """A Masking layer whose mask reaches no layer that uses it (Dense passes it on):
    converted; with mask_value != 0 its own output zeroes the masked steps."""
    inp = keras.Input((4, 3), name="seq")
    x = L.Masking(mask_value=0.5, name="mask")(inp)
    return randomize(keras.Model(inp, L.Dense(2, name="proj")(x), name="masked_values"))


def masked_inputs(model: keras.Model) -> list[np.ndarray]:
    x = np.random.default_rng(5).standard_normal((2, 4, 3)).astype("float32")
    x[0, 1] = 0.5  # a masked step
    x[1, 2, 0] = 0.5  # not masked: one feature only
    return [x]


def test_masking_values(tmp_path: Path) -> None:
    check(masked_values_model(), tmp_path, TARGETS, inputs=masked_inputs)


def tagger_model() -> keras.Model:
    """Token ids of any length: Embedding -> LSTM -> GRU -> Bidirectional SimpleRNN ->
    TimeDistributed(Dense); the time axis stays dynamic in the IR."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = L.Embedding(12, 4, name="emb")(ids)
    x = L.LSTM(5, return_sequences=True, name="lstm")(x)
    x = L.GRU(4, return_sequences=True, name="gru")(x)
    x = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), name="bi")(x)
    tags = L.TimeDistributed(L.Dense(3), name="tags")(x)
    return randomize(keras.Model(ids, tags, name="tagger"))


def _convert(model: keras.Model, target: str, tmp_path: Path,
             request: pytest.FixtureRequest) -> tuple[Path, Graph]:
    """``model`` saved as .keras and converted to ``target`` by mmconvert: (the output
    file, the IR graph the frontend makes of it)."""
    if target == "cntk":
        request.getfixturevalue("cntk_python")
    path = tmp_path / f"{model.name}.keras"
    model.save(str(path))
    out = tmp_path / f"{model.name}-{target}{EXT[target]}"
    assert mmconvert.main(["-sf", "keras", "-iw", str(path), "-df", target, "-om", str(out)]) == 0
    return out, keras_frontend.convert(None, str(path))


@pytest.mark.parametrize("target", [*TARGETS, pytest.param("cntk", marks=pytest.mark.cntk)])
def test_dynamic_time(target: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """One conversion, run at two sequence lengths."""
    model = tagger_model()
    out, graph = _convert(model, target, tmp_path, request)
    assert graph.inputs[0].shape == (None, None)
    for steps in (5, 9):
        ids = np.random.default_rng(steps).integers(0, 12, (2, steps)).astype("int32")
        got = runner_for(target)(out, graph, {graph.inputs[0].name: ids})
        result = compare(f"tagger T={steps} -> {target}", predict(model, [ids])[0],
                         np.asarray(got[0]))
        assert result.passed, str(result)


def backwards_tagger() -> keras.Model:
    """Steps of any length through go_backwards layers returning their sequences (Keras
    gives them in processing order: the IR flips the reverse run's outputs back), one
    stacked on another, a TimeDistributed(Dense) on a flipped sequence; the flips of
    the sequences that are no output fold away (fold_reversals): rnn_back -> gru_back2
    -> lstm_last become backward, forward, forward runs with no flip between."""
    inp = keras.Input((None, 3), name="steps")
    x = L.LSTM(5, return_sequences=True, go_backwards=True, name="lstm_back")(inp)
    td = L.TimeDistributed(L.Dense(4), name="per_step")(x)
    g = L.GRU(4, return_sequences=True, go_backwards=True, name="gru_back")(x)
    r = L.SimpleRNN(3, return_sequences=True, go_backwards=True, name="rnn_back")(td)
    r = L.GRU(3, return_sequences=True, go_backwards=True, name="gru_back2")(r)
    last = L.LSTM(2, name="lstm_last")(r)
    return randomize(keras.Model(inp, [x, td, g, last], name="backwards_tagger"))


@pytest.mark.parametrize("target", [*TARGETS, pytest.param("cntk", marks=pytest.mark.cntk)])
def test_dynamic_time_go_backwards(target: str, tmp_path: Path,
                                   request: pytest.FixtureRequest) -> None:
    """A go_backwards sequence with a dynamic length: flipped by torch.flip / CNTK's
    generated _reversed_sequence; one conversion, run at two lengths."""
    model = backwards_tagger()
    out, graph = _convert(model, target, tmp_path, request)
    assert graph.inputs[0].shape == (None, None, 3)
    flips = [n.name for n in graph.nodes if n.op == "Slice" and n.attr("steps") == (-1,)]
    assert flips == ["lstm_back", "gru_back"]
    directions = {n.name: n.attr("direction") for n in graph.nodes
                  if n.op in ("LSTM", "GRU", "RNN")}
    assert directions == {"lstm_back/LSTM": "reverse", "gru_back/GRU": "reverse",
                          "rnn_back/RNN": "reverse", "gru_back2/GRU": "forward",
                          "lstm_last/LSTM": "forward"}
    for steps in (4, 7):
        x = np.random.default_rng(steps).standard_normal((2, steps, 3)).astype("float32")
        got = runner_for(target)(out, graph, {graph.inputs[0].name: x})
        refs = predict(model, [x])
        assert len(got) == len(refs) == 4
        for i, (ref, have) in enumerate(zip(refs, got, strict=True)):
            result = compare(f"backwards[{i}] T={steps} -> {target}", ref, np.asarray(have))
            assert result.passed, str(result)


@pytest.mark.parametrize("damage", ["units", "cell", "no_args", "bi_layer"])
def test_damaged_recurrent_config_is_one_line(damage: str, tmp_path: Path) -> None:
    """Junk where a recurrent layer's config has structure: one MmconvError line."""
    import json
    import zipfile

    from mmconv.errors import MmconvError

    inp = keras.Input((4, 3), name="seq")
    x = L.RNN(L.LSTMCell(2), return_sequences=True, name="cell_rnn")(inp)
    y = L.Bidirectional(L.GRU(2), name="bi")(x)
    src = tmp_path / "ok.keras"
    keras.Model(inp, [x, y], name="damaged").save(str(src))
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    layers = {la["name"]: la for la in config["config"]["layers"]}
    if damage == "units":
        layers["cell_rnn"]["config"]["cell"]["config"]["units"] = "two"
    elif damage == "cell":
        layers["cell_rnn"]["config"]["cell"] = {"class_name": {"a": 1}, "config": {}}
    elif damage == "no_args":
        layers["cell_rnn"]["inbound_nodes"][0]["args"] = []
    else:
        layers["bi"]["config"]["layer"] = ["LSTM"]
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, json.dumps(config) if name == "config.json" else data)
    with pytest.raises(MmconvError) as info:
        keras_frontend.convert(None, str(bad))
    message = str(info.value)
    assert "\n" not in message and str(bad) in message
    assert {"units": "RNN(units='two') x1 (cell_rnn)", "cell": "RNN(a damaged cell config) x1",
            "no_args": "layer 'cell_rnn' is called on no tensor",
            "bi_layer": "Bidirectional(a damaged layer config) x1 (bi)"}[damage] in message
