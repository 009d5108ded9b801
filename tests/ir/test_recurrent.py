"""IR LSTM/GRU/RNN: shape inference, the numpy implementation (mmconv.ir.recurrent)
against the emitter tests' independent oracle and against onnxruntime's own ops."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.errors import IRError
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.recurrent import run
from mmconv.verify.compare import assert_close
from tests.emitters import reference as ref

RNG = np.random.default_rng(7)
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _params(cell: str, nd: int, size: int, hidden: int) -> dict[str, np.ndarray]:
    g = GATES[cell]
    return {
        "W": RNG.uniform(-1, 1, (nd, g * hidden, size)).astype(np.float32),
        "R": RNG.uniform(-1, 1, (nd, g * hidden, hidden)).astype(np.float32),
        "B": RNG.uniform(-1, 1, (nd, 2 * g * hidden)).astype(np.float32),
        "initial_h": RNG.uniform(-1, 1, (3, nd, hidden)).astype(np.float32),
        "initial_c": RNG.uniform(-1, 1, (3, nd, hidden)).astype(np.float32),
        "P": RNG.uniform(-1, 1, (nd, 3 * hidden)).astype(np.float32),
    }




def test_shapes_batch_major_dynamic_time() -> None:
    g = Graph("rnn")
    g.add_input("X", "float32", [None, None, 4])
    p = _params("LSTM", 2, 4, 5)
    for k in ("W", "R", "B"):
        g.add_weight(k, p[k])
    g.add_node("LSTM", ["X", "W", "R", "B"], "cell", outputs=["Y", "Y_h", "Y_c"],
               hidden_size=5, direction="bidirectional")
    g.outputs = ["Y", "Y_h", "Y_c"]
    infer_shapes(g)
    assert g.value("Y").shape == (None, None, 2, 5)
    assert g.value("Y_h").shape == g.value("Y_c").shape == (None, 2, 5)


def test_wrong_weight_shape_names_node() -> None:
    g = Graph("rnn")
    g.add_input("X", "float32", [None, 6, 4])
    p = _params("GRU", 1, 4, 5)
    g.add_weight("W", p["W"])
    g.add_weight("R", p["R"][:, :10])
    g.add_node("GRU", ["X", "W", "R"], "cell", outputs=["Y", "Y_h"], hidden_size=5)
    g.outputs = ["Y"]
    with pytest.raises(IRError, match=r"'cell' \(GRU\): R has shape"):
        infer_shapes(g)


def _onnx(cell: str, attrs: dict, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's op (time-major layout=0: it refuses layout=1) on transposed data."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    tm = dict(feeds)
    tm["X"] = feeds["X"].transpose(1, 0, 2)
    for k in ("initial_h", "initial_c"):
        if k in tm:
            tm[k] = feeds[k].transpose(1, 0, 2)
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    names = [k if k in tm else "" for k in order]
    while names and not names[-1]:
        names.pop()
    outs = ["Y", "Y_h", "Y_c"] if cell == "LSTM" else ["Y", "Y_h"]
    node = helper.make_node(cell, names, outs, **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype),
                                                    v.shape) for k, v in tm.items()],
        [helper.make_tensor_value_info(o, 1, [None] * (4 if o == "Y" else 3))
         for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    res = sess.run(None, tm)
    return [res[0].transpose(2, 0, 1, 3)] + [s.transpose(1, 0, 2) for s in res[1:]]


CASES = [
    ("LSTM", {"direction": "forward"}, ["B", "initial_h", "initial_c", "P"]),
    ("LSTM", {"direction": "bidirectional"}, ["B"]),
    ("LSTM", {"direction": "reverse", "clip": 0.7}, ["B", "initial_h", "initial_c"]),
    ("LSTM", {"direction": "forward", "input_forget": 1}, ["B"]),
    ("GRU", {"direction": "forward", "linear_before_reset": 1}, ["B", "initial_h"]),
    ("GRU", {"direction": "bidirectional"}, ["B", "initial_h"]),
    ("GRU", {"direction": "reverse", "activations": ("HardSigmoid", "LeakyRelu"),
             "activation_alpha": (0.3, 0.05), "activation_beta": (0.4,)}, ["B"]),
    ("RNN", {"direction": "bidirectional", "activations": ("Relu", "Tanh")}, ["B", "initial_h"]),
    ("RNN", {"direction": "forward"}, ["sequence_lens", "initial_h"]),
    ("LSTM", {"direction": "bidirectional"}, ["B", "sequence_lens", "initial_h"]),
]


@pytest.mark.parametrize("cell,attrs,extra", CASES)
def test_numpy_matches_onnxruntime(cell: str, attrs: dict, extra: list[str]) -> None:
    nd = 2 if attrs["direction"] == "bidirectional" else 1
    hidden = 5
    p = _params(cell, nd, 4, hidden)
    feeds = {"X": RNG.uniform(-2, 2, (3, 6, 4)).astype(np.float32), "W": p["W"], "R": p["R"]}
    for k in extra:
        feeds[k] = np.array([6, 2, 4], np.int32) if k == "sequence_lens" else p[k]
    ports = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    g = Graph("rnn")
    ins = [k if k in feeds else "" for k in ports]
    while not ins[-1]:
        ins.pop()
    outs = ["Y", "Y_h", "Y_c"] if cell == "LSTM" else ["Y", "Y_h"]
    g.add_input("X", "float32", [None, None, 4])
    for k, v in feeds.items():
        if k != "X":
            g.add_weight(k, v)
    node = g.add_node(cell, ins, "cell", outputs=outs, hidden_size=hidden, **attrs)
    g.outputs = outs
    infer_shapes(g)
    ours = run(node, [feeds.get(k) for k in ins])
    theirs = _onnx(cell, {"hidden_size": hidden, **attrs}, feeds)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape
        assert_close(b, a, name=f"{cell} output {i} vs onnxruntime")
    if "activation_alpha" not in attrs and not attrs.get("clip") \
            and not attrs.get("input_forget"):
        oracle = ref.recurrent(cell, feeds["X"], p["W"], p["R"], feeds.get("B"),
                               feeds.get("initial_h"), feeds.get("initial_c"), feeds.get("P"),
                               direction=attrs["direction"],
                               activations=attrs.get("activations", ()),
                               linear_before_reset=attrs.get("linear_before_reset", 0),
                               sequence_lens=feeds.get("sequence_lens"))
        for i, (a, b) in enumerate(zip(ours, oracle, strict=True)):
            assert_close(b.astype(np.float32), a, name=f"{cell} output {i} vs oracle")
