"""Keras recurrent layers (LSTM, GRU both reset_after forms, SimpleRNN, Bidirectional with
every merge mode, return_sequences/return_state, go_backwards, initial states, stacked,
an Embedding classifier) against Keras' own output through each target; masks and
stateful layers refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.frontends.keras._common import check, keras, randomize

from mmconv.cli import mmconvert

L = keras.layers
TARGETS = ("onnx", "pytorch", "keras")


def lstm_model() -> keras.Model:
    """Stacked LSTMs: a sequence, a go_backwards sequence, then the last output and
    both states (return_state)."""
    inp = keras.Input((6, 5), name="seq")
    x = L.LSTM(7, return_sequences=True, name="lstm1")(inp)
    x = L.LSTM(6, return_sequences=True, go_backwards=True, name="lstm_back")(x)
    y, h, c = L.LSTM(4, return_state=True, name="lstm_last")(x)
    return randomize(keras.Model(inp, [x, y, h, c], name="lstms"))


def gru_model() -> keras.Model:
    """GRU reset_after=True (two bias rows) then reset_after=False, go_backwards, both
    with return_state."""
    inp = keras.Input((5, 4), name="seq")
    x, h1 = L.GRU(6, return_sequences=True, return_state=True, name="gru_after")(inp)
    y, h2 = L.GRU(5, reset_after=False, go_backwards=True, return_state=True,
                  name="gru_before")(x)
    return randomize(keras.Model(inp, [x, h1, y, h2], name="grus"))


def simple_rnn_model() -> keras.Model:
    inp = keras.Input((7, 3), name="seq")
    x = L.SimpleRNN(6, return_sequences=True, name="rnn1")(inp)
    y = L.SimpleRNN(4, go_backwards=True, use_bias=False, name="rnn_back")(x)
    return randomize(keras.Model(inp, [x, y], name="simple_rnns"))


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
    """Token ids -> Embedding -> Bidirectional LSTM -> LSTM -> Dense softmax."""
    model = keras.Sequential([
        keras.Input((8,), dtype="int32", name="tokens"),
        L.Embedding(20, 6, name="embed"),
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
