"""Build the recurrent CNTK fixture models (LSTM/GRU/RNNStep loops) with real CNTK 2.7.

Why a sibling of ``make_cntk_fixtures.py``: recurrent models take sequence
inputs (a batch of equal-length sequences, ``[batch, time, features]``), and
their files go to their own folder and manifest so rebuilding them never
rewrites the CNN fixtures.  Same files per fixture (``NAME.v2.model``,
``NAME.v1.model`` from ``save_as_legacy_model``, ``NAME.io.npz`` with CNTK's
own outputs) and the same driver.

Run it in the CNTK env (Python 3.6; no mmconv imports)::

    $(scripts/setup_cntk_env.sh) scripts/make_cntk_rnn_fixtures.py --out tests/fixtures/cntk_rnn
"""



import os
import sys
import warnings

warnings.filterwarnings("ignore", category=UserWarning)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cntk as C  # noqa: E402
import cntk_model_builder as cmb  # noqa: E402
import make_cntk_fixtures as base  # noqa: E402
import numpy as np  # noqa: E402

L = C.layers
BATCH = cmb.BATCH
#: Time steps of every sequence in the reference batch (all sequences equally long).
STEPS = 5
FIXTURES = []


def fixture(func):
    FIXTURES.append((func.__name__[3:], func))
    return func


def _seq_inputs(name, dim, onehot=False):
    """A batch of BATCH sequences of STEPS steps, seeded by the fixture name."""
    rng = np.random.RandomState(cmb.seed_for(name) + 7)
    if onehot:
        idx = rng.randint(0, dim, size=(BATCH, STEPS))
        return [np.asarray(np.eye(dim)[idx], dtype=np.float32)]
    return [np.asarray(rng.normal(0.0, 1.0, (BATCH, STEPS, dim)), dtype=np.float32)]


def _spec(name, z, families, ops, dim=4, onehot=False, notes=""):
    return base.Spec(z, ["recurrent", *families], ops, inputs=_seq_inputs(name, dim, onehot),
                     notes=notes)


@fixture
def fx_lstm_fwd():
    """Recurrence(LSTM(6)) over a 4-feature sequence: the whole output sequence."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.LSTM(6), name="rec")(x)
    return _spec("lstm_fwd", z, ["lstm"], ["Recurrence(LSTM)"])


@fixture
def fx_lstm_bwd():
    """Recurrence(LSTM(6), go_backwards=True): a FutureValue loop."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.LSTM(6), go_backwards=True, name="rec")(x)
    return _spec("lstm_bwd", z, ["lstm"], ["Recurrence(LSTM, go_backwards)"])


@fixture
def fx_lstm_peephole():
    """LSTM with use_peepholes=True (diagonal peephole weights Ci, Cf, Co)."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.LSTM(5, use_peepholes=True), name="rec")(x)
    return _spec("lstm_peephole", z, ["lstm"], ["Recurrence(LSTM(use_peepholes))"])


@fixture
def fx_lstm_projection():
    """LSTM(4, cell_shape=7): a 7-wide cell projected to a 4-wide output (Wmr)."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.LSTM(4, cell_shape=7), name="rec")(x)
    return _spec("lstm_projection", z, ["lstm"], ["Recurrence(LSTM(cell_shape))"])


@fixture
def fx_gru_fwd():
    """Recurrence(GRU(5))."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.GRU(5), name="rec")(x)
    return _spec("gru_fwd", z, ["gru"], ["Recurrence(GRU)"])


@fixture
def fx_gru_bwd():
    """Recurrence(GRU(5), go_backwards=True)."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.GRU(5), go_backwards=True, name="rec")(x)
    return _spec("gru_bwd", z, ["gru"], ["Recurrence(GRU, go_backwards)"])


@fixture
def fx_rnnstep():
    """Recurrence(RNNStep(5)) with its default sigmoid activation."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.RNNStep(5), name="rec")(x)
    return _spec("rnnstep", z, ["rnn"], ["Recurrence(RNNStep(sigmoid))"])


@fixture
def fx_rnnstep_tanh():
    """Recurrence(RNNStep(5, activation=tanh))."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.RNNStep(5, activation=C.tanh), name="rec")(x)
    return _spec("rnnstep_tanh", z, ["rnn"], ["Recurrence(RNNStep(tanh))"])


@fixture
def fx_lstm_stack2():
    """Two stacked Recurrence(LSTM) layers."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Recurrence(L.LSTM(6), name="rec1")(x)
    z = L.Recurrence(L.LSTM(5), name="rec2")(h)
    return _spec("lstm_stack2", z, ["lstm"], ["Recurrence(LSTM) x 2"])


@fixture
def fx_bilstm():
    """Bidirectional LSTM: splice of a forward and a go_backwards Recurrence, then Dense."""
    x = C.sequence.input_variable(4, name="x")
    f = L.Recurrence(L.LSTM(5), name="fwd")(x)
    b = L.Recurrence(L.LSTM(5), go_backwards=True, name="bwd")(x)
    h = C.splice(f, b, name="bi")
    z = L.Dense(3, name="fc")(h)
    return _spec("bilstm", z, ["lstm", "dense"],
                 ["Recurrence(LSTM)", "Recurrence(LSTM, go_backwards)", "Splice", "Dense"])


def _bi(cell, h, name):
    f = L.Recurrence(cell(), name=name + "_fwd")(h)
    b = L.Recurrence(cell(), go_backwards=True, name=name + "_bwd")(h)
    return C.splice(f, b, name=name)


@fixture
def fx_bi_stack():
    """Two bidirectional layers: peephole LSTM(5) pairs, then GRU(4) pairs, then Dense."""
    x = C.sequence.input_variable(4, name="x")
    h = _bi(lambda: L.LSTM(5, use_peepholes=True), x, "bi1")
    h = _bi(lambda: L.GRU(4), h, "bi2")
    z = L.Dense(3, name="fc")(h)
    return _spec("bi_stack", z, ["lstm", "gru", "dense"],
                 ["bidirectional LSTM(peepholes)", "bidirectional GRU", "Dense"])


@fixture
def fx_fold_lstm():
    """Fold(LSTM(6)): the last state only, then a Dense classifier."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Fold(L.LSTM(6), name="fold")(x)
    z = L.Dense(3, name="fc")(h)
    return _spec("fold_lstm", z, ["lstm", "sequence", "dense"],
                 ["Fold(LSTM) = Recurrence + sequence.last", "Dense"])


@fixture
def fx_tagger():
    """Embedding + LSTM tagger: one-hot words -> Embedding(8) -> Recurrence(LSTM(6)) -> Dense(5)."""
    x = C.sequence.input_variable(10, name="words")
    h = L.Embedding(8, name="embed")(x)
    h = L.Recurrence(L.LSTM(6), name="rec")(h)
    z = L.Dense(5, name="tags")(h)
    return _spec("tagger", z, ["lstm", "embedding", "dense"],
                 ["Embedding", "Recurrence(LSTM)", "Dense per step"], dim=10, onehot=True)


@fixture
def fx_last_classifier():
    """Recurrence(GRU) -> sequence.last -> Dense -> softmax."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Recurrence(L.GRU(6), name="rec")(x)
    h = C.sequence.last(h, name="last")
    z = C.softmax(L.Dense(3, name="fc")(h), name="prob")
    return _spec("last_classifier", z, ["gru", "sequence", "dense"],
                 ["Recurrence(GRU)", "sequence.last", "Dense", "Softmax"])


@fixture
def fx_first_classifier():
    """Recurrence(LSTM, go_backwards) -> sequence.first -> Dense."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Recurrence(L.LSTM(6), go_backwards=True, name="rec")(x)
    h = C.sequence.first(h, name="first")
    z = L.Dense(3, name="fc")(h)
    return _spec("first_classifier", z, ["lstm", "sequence", "dense"],
                 ["Recurrence(LSTM, go_backwards)", "sequence.first", "Dense"])


@fixture
def fx_elman_loop():
    """A hand-written Elman loop h = tanh(x W + past_value(h) U): an RNN cell by structure."""
    x = C.sequence.input_variable(4, name="x")
    h = C.placeholder(5)
    w = C.parameter((4, 5), name="W")
    u = C.parameter((5, 5), name="U")
    r = C.tanh(C.times(x, w) + C.times(C.sequence.past_value(h), u), name="elman")
    r.replace_placeholders({h: r.output})
    return _spec("elman_loop", r, ["rnn", "loop"], ["PastValue loop (hand-written Elman)"])


@fixture
def fx_cumsum_loop():
    """A loop that is no cell: s = x + past_value(s) (an IR Scan)."""
    x = C.sequence.input_variable(4, name="x")
    s = C.placeholder(4)
    r = C.plus(x, C.sequence.past_value(s), name="cumsum")
    r.replace_placeholders({s: r.output})
    z = L.Dense(3, name="fc")(r)
    return _spec("cumsum_loop", z, ["loop"], ["PastValue loop (running sum)"],
                 notes="not an LSTM/GRU/RNN cell: an IR Scan")


@fixture
def fx_future_feature():
    """A one-step look-ahead feature, no loop: x + future_value(x) (a one-step Scan)."""
    x = C.sequence.input_variable(4, name="x")
    h = C.plus(x, C.sequence.future_value(x), name="lookahead")
    z = L.Recurrence(L.GRU(3), name="rec")(h)
    return _spec("future_feature", z, ["gru", "loop"], ["FutureValue feature", "Recurrence(GRU)"],
                 notes="a delay outside a loop: a one-step shift, an IR Scan")


@fixture
def fx_delay2_feature():
    """Delays of more than one step, no loop: x + past_value(x, time_step=2) +
    future_value(x, 0.5, time_step=3) (Scans whose states hold the last 2 or 3 steps)."""
    x = C.sequence.input_variable(4, name="x")
    h = C.plus(C.plus(x, C.sequence.past_value(x, time_step=2)),
               C.sequence.future_value(x, initial_state=0.5, time_step=3), name="delays")
    z = L.Dense(3, name="out")(h)
    return _spec("delay2_feature", z, ["loop"], ["PastValue time_step=2",
                                                 "FutureValue time_step=3"],
                 notes="delays of k > 1 steps: Scans holding the last k values")


@fixture
def fx_delay2_loop():
    """A hand-written loop reaching two steps back: h_t = tanh(x_t W + h_{t-2} U), the
    first two steps from initial_state=0.2 (a Scan whose state holds h_{t-2}, h_{t-1})."""
    x = C.sequence.input_variable(4, name="x")
    hp = C.placeholder(5)
    r = C.tanh(C.times(x, C.parameter((4, 5), name="W"))
               + C.times(C.sequence.past_value(hp, initial_state=0.2, time_step=2),
                         C.parameter((5, 5), name="U")), name="step")
    r.replace_placeholders({hp: r.output})
    return _spec("delay2_loop", r, ["loop"], ["PastValue loop time_step=2"],
                 notes="a loop through a delay of 2 steps: a Scan holding 2 states")


@fixture
def fx_delay2_from_state():
    """x + past_value(x, initial_state=h0, time_step=2): the first two steps read h0, a
    non-sequence input (a computed initial state, repeated for the 2 values held)."""
    x = C.sequence.input_variable(4, name="x")
    h0 = C.input_variable(4, name="h0")
    z = C.plus(x, C.sequence.past_value(x, initial_state=h0, time_step=2), name="delayed")
    rng = np.random.RandomState(cmb.seed_for("delay2_from_state") + 7)
    inputs = []
    for a in z.arguments:
        steps = (BATCH, 4) if a.name == "h0" else (BATCH, STEPS, 4)
        inputs.append(np.asarray(rng.normal(0.0, 1.0, steps), dtype=np.float32))
    return base.Spec(z, ["recurrent", "loop"], ["PastValue time_step=2 from a state"],
                     inputs=inputs)


@fixture
def fx_lstm_relu():
    """LSTM(5, activation=relu) and GRU(4, activation=relu) stacked: non-default activations."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Recurrence(L.LSTM(5, activation=C.relu), name="rec1")(x)
    z = L.Recurrence(L.GRU(4, activation=C.relu), go_backwards=True, name="rec2")(h)
    return _spec("lstm_relu", z, ["lstm", "gru"], ["Recurrence(LSTM(relu))",
                                                   "Recurrence(GRU(relu), go_backwards)"])


@fixture
def fx_lstm_stabilized():
    """LSTM with enable_self_stabilization=True (a Stabilizer on h): an IR Scan."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.LSTM(5, enable_self_stabilization=True), name="rec")(x)
    return _spec("lstm_stabilized", z, ["lstm"], ["Recurrence(LSTM(self-stabilized))"],
                 notes="self-stabilisation: no ONNX LSTM, an IR Scan")


@fixture
def fx_gru_initial_state():
    """Recurrence(GRU(4), initial_state=0.5): a non-zero constant initial state (a Scan)."""
    x = C.sequence.input_variable(4, name="x")
    z = L.Recurrence(L.GRU(4), initial_state=0.5, name="rec")(x)
    return _spec("gru_initial_state", z, ["gru"], ["Recurrence(GRU, initial_state=0.5)"],
                 notes="a non-zero constant initial state: an IR Scan")


@fixture
def fx_seq_reduce_sum():
    """Dense per step -> sequence.reduce_sum -> Dense.  CNTK 2.7 saves the reduction as a
    Sequence::ReduceElements block (UnpackSequence, then a reduction over the unpacked
    time axis), no loop; it cannot write that block to a v1 file (the loop forms are
    loop_reductions)."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Dense(5, activation=C.tanh, name="proj")(x)
    s = C.sequence.reduce_sum(h, name="total")
    z = L.Dense(3, name="fc")(s)
    return _spec("seq_reduce_sum", z, ["sequence", "dense"],
                 ["Dense per step", "sequence.reduce_sum", "Dense"])


@fixture
def fx_seq_reduce_max():
    """sequence.reduce_max over a per-step Dense, then a Dense."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Dense(5, name="proj")(x)
    s = C.sequence.reduce_max(h, name="peak")
    z = L.Dense(3, name="fc")(s)
    return _spec("seq_reduce_max", z, ["sequence", "dense"],
                 ["Dense per step", "sequence.reduce_max", "Dense"])


@fixture
def fx_loop_reductions():
    """The sequence reductions as loops (what older CNTK's sequence.reduce_sum wrote, and
    what a v1 file can hold): a PastValue running sum cut to its last step with
    sequence.slice(-1, 0), and Fold(element_max, initial_state=-1e4); spliced, Dense."""
    x = C.sequence.input_variable(4, name="x")
    h = L.Dense(5, name="proj")(x)
    acc = C.placeholder(5)
    run = C.plus(C.sequence.past_value(acc), h, name="running_sum")
    run.replace_placeholders({acc: run.output})
    total = C.sequence.slice(run, -1, 0, name="total")
    peak = L.Fold(C.element_max, initial_state=-1e4, name="peak")(h)
    z = L.Dense(3, name="fc")(C.splice(C.reshape(total, 5), peak, name="both"))
    return _spec("loop_reductions", z, ["loop", "sequence", "dense"],
                 ["PastValue running sum + sequence.slice(-1, 0)",
                  "Fold(element_max, initial_state)", "Splice", "Dense"])


@fixture
def fx_handwritten_future():
    """A hand-written Elman loop h = tanh(u @ W + past_value(h, initial_state=v) @ U + b)
    over u = splice(x, future_value(x, initial_state=0.25)): a look-ahead feature with a
    non-zero constant initial state feeding a PastValue loop started from a constant
    vector (neither is a cntk.layers cell: two IR Scans)."""
    x = C.sequence.input_variable(3, name="x")
    u = C.splice(x, C.sequence.future_value(x, initial_state=0.25), name="with_next")
    h = C.placeholder(5)
    w = C.parameter((6, 5), name="W")
    r = C.parameter((5, 5), name="U")
    b = C.parameter(5, name="b")
    h0 = C.constant(np.linspace(-0.5, 0.7, 5).astype(np.float32), name="h0")
    z = C.tanh(C.times(u, w) + C.times(C.sequence.past_value(h, initial_state=h0), r) + b,
               name="elman")
    z.replace_placeholders({h: z.output})
    return _spec("handwritten_future", z, ["rnn", "loop"],
                 ["FutureValue(initial_state=0.25) feature", "Splice",
                  "PastValue loop (hand-written Elman, vector initial state)"], dim=3)


@fixture
def fx_loop_conditioned():
    """A hand-written loop h = tanh(x @ W + past_value(h) @ U + c) conditioned on a
    per-sequence vector c (another, non-sequence input, reconciled inside the loop): the
    Scan carries c as a state it passes on unchanged."""
    x = C.sequence.input_variable(4, name="x")
    c = C.input_variable(5, name="c")
    h = C.placeholder(5)
    prev = C.sequence.past_value(h)
    z = C.tanh(C.times(x, C.parameter((4, 5), name="W"))
               + C.times(prev, C.parameter((5, 5), name="U"))
               + C.reconcile_dynamic_axes(c, prev), name="conditioned")
    z.replace_placeholders({h: z.output})
    rng = np.random.RandomState(cmb.seed_for("loop_conditioned") + 7)
    inputs = [np.asarray(rng.normal(0.0, 1.0, (BATCH, 5)), dtype=np.float32) if a.name == "c"
              else np.asarray(rng.normal(0.0, 1.0, (BATCH, STEPS, 4)), dtype=np.float32)
              for a in z.arguments]
    return base.Spec(z, ["recurrent", "loop"], ["PastValue loop reading a non-sequence input"],
                     inputs=inputs)


@fixture
def fx_broadcast_feature():
    """sequence.broadcast_as: a per-sequence vector c spliced to every step of x, then a
    Dense per step (CNTK writes a ReconcileDynamicAxis outside any loop)."""
    x = C.sequence.input_variable(4, name="x")
    c = C.input_variable(3, name="c")
    z = L.Dense(5, name="fc")(C.splice(x, C.sequence.broadcast_as(c, x), name="with_c"))
    rng = np.random.RandomState(cmb.seed_for("broadcast_feature") + 7)
    inputs = [np.asarray(rng.normal(0.0, 1.0, (BATCH, 3)), dtype=np.float32) if a.name == "c"
              else np.asarray(rng.normal(0.0, 1.0, (BATCH, STEPS, 4)), dtype=np.float32)
              for a in z.arguments]
    return base.Spec(z, ["recurrent", "sequence", "dense"],
                     ["sequence.broadcast_as", "Splice", "Dense per step"], inputs=inputs)


@fixture
def fx_gru_from_state():
    """RecurrenceFrom(GRU(4)): the initial state is another (non-sequence) input."""
    x = C.sequence.input_variable(4, name="x")
    h0 = C.input_variable(4, name="h0")
    z = L.RecurrenceFrom(L.GRU(4), name="rec")(h0, x)
    rng = np.random.RandomState(cmb.seed_for("gru_from_state") + 7)
    model = z
    inputs = []
    for a in model.arguments:
        if a.name == "h0":
            inputs.append(np.asarray(rng.normal(0.0, 1.0, (BATCH, 4)), dtype=np.float32))
        else:
            inputs.append(np.asarray(rng.normal(0.0, 1.0, (BATCH, STEPS, 4)), dtype=np.float32))
    return base.Spec(z, ["recurrent", "gru"], ["RecurrenceFrom(GRU)"], inputs=inputs)


@fixture
def fx_conv_on_sequence():
    """A convolution applied to every step of a sequence of images (a per-step Scan)."""
    x = C.sequence.input_variable((2, 6, 6), name="frames")
    z = L.Convolution((3, 3), 3, pad=True, name="conv")(x)
    rng = np.random.RandomState(cmb.seed_for("conv_on_sequence") + 7)
    inputs = [np.asarray(rng.normal(0.0, 1.0, (BATCH, STEPS, 2, 6, 6)), dtype=np.float32)]
    return base.Spec(z, ["recurrent", "conv"], ["Convolution per step"], inputs=inputs,
                     notes="a Convolution on a sequence: a state-less Scan over the steps")


@fixture
def fx_frame_cnn_lstm():
    """A per-frame CNN feature extractor (Convolution + ReLU, MaxPooling, Dense) over a
    sequence of small images, Recurrence(LSTM) over the features, and a Dense classifier
    on sequence.last: the video/OCR-style model users build."""
    x = C.sequence.input_variable((2, 6, 6), name="frames")
    h = L.Convolution((3, 3), 4, pad=True, activation=C.relu, name="conv")(x)
    h = L.MaxPooling((2, 2), strides=(2, 2), name="pool")(h)
    h = L.Dense(6, activation=C.relu, name="feat")(h)
    h = L.Recurrence(L.LSTM(5), name="rec")(h)
    z = L.Dense(3, name="fc")(C.sequence.last(h, name="last"))
    rng = np.random.RandomState(cmb.seed_for("frame_cnn_lstm") + 7)
    inputs = [np.asarray(rng.normal(0.0, 1.0, (BATCH, STEPS, 2, 6, 6)), dtype=np.float32)]
    return base.Spec(z, ["recurrent", "conv", "lstm", "dense"],
                     ["Convolution per step", "MaxPooling per step", "Dense per step",
                      "Recurrence(LSTM)", "sequence.last", "Dense"], inputs=inputs)


@fixture
def fx_pool_on_sequence():
    """Per-step ops other than Convolution on a sequence of images: AveragePooling,
    swapaxes (TransposeAxes) and hardmax, then a Dense per step added to a Dense of
    the raw frames (a value from outside the per-step run)."""
    x = C.sequence.input_variable((3, 4, 4), name="frames")
    h = L.AveragePooling((2, 2), strides=(2, 2), name="pool")(x)
    h = C.hardmax(C.swapaxes(h, 0, 2, name="swap"), name="hard")
    z = C.plus(L.Dense(4, name="fc")(h), L.Dense(4, name="skip")(x), name="out")
    rng = np.random.RandomState(cmb.seed_for("pool_on_sequence") + 7)
    inputs = [np.asarray(rng.normal(0.0, 1.0, (BATCH, STEPS, 3, 4, 4)), dtype=np.float32)]
    return base.Spec(z, ["recurrent", "pooling", "dense"],
                     ["AveragePooling per step", "TransposeAxes per step", "Hardmax per step",
                      "Dense per step"], inputs=inputs)


@fixture
def fx_bi_rnnstep_norms():
    """BatchNormalization on the sequence (per step), a bidirectional RNNStep pair
    (sigmoid: its activations listed per direction), LayerNormalization and a Dense per
    step (a reduction over a sequence's sample axes in the CNTK target)."""
    x = C.sequence.input_variable(4, name="x")
    h = L.BatchNormalization(name="bn")(x)
    h = _bi(lambda: L.RNNStep(5), h, "bi")
    h = L.LayerNormalization(name="ln")(h)
    z = L.Dense(3, name="fc")(h)
    return _spec("bi_rnnstep_norms", z, ["rnn", "normalization", "dense"],
                 ["BatchNormalization on a sequence", "bidirectional RNNStep",
                  "LayerNormalization", "Dense per step"])


@fixture
def fx_lstm_float64():
    """A float64 model (cntk.layers built under default_options(dtype=float64)):
    Recurrence(LSTM) then Dense.  onnxruntime has no double LSTM; the CNTK target must
    build its cells in float64."""
    x = C.sequence.input_variable(4, dtype=np.float64, name="x")
    with L.default_options(dtype=np.float64):
        z = L.Dense(3, name="fc")(L.Recurrence(L.LSTM(5), name="rec")(x))
    inputs = [_seq_inputs("lstm_float64", 4)[0].astype(np.float64)]
    return base.Spec(z, ["recurrent", "lstm", "dense"], ["float64 Recurrence(LSTM)", "Dense"],
                     inputs=inputs)


@fixture
def fx_loop_prev_output():
    """A hand-written loop whose previous state is an output too: splice(h, past_value(h))
    (the CNTK target must not alias the delay: CNTK 2.7 fails on that at run time)."""
    x = C.sequence.input_variable(4, name="x")
    hp = C.placeholder(5)
    prev = C.sequence.past_value(hp)
    r = C.tanh(C.times(x, C.parameter((4, 5), name="W"))
               + C.times(prev, C.parameter((5, 5), name="U")), name="step")
    r.replace_placeholders({hp: r.output})
    z = C.splice(r, prev, name="with_prev")
    return _spec("loop_prev_output", z, ["loop"], ["PastValue loop", "Splice of h and its delay"])


def main(argv=None):
    return cmb.main(argv, doc=__doc__, script=__file__, builders=FIXTURES, build=base.build,
                    default_out="tests/fixtures/cntk_rnn", noun="fixture",
                    manifest_key="fixtures", describe=base._describe)


if __name__ == "__main__":
    sys.exit(main())
