"""IR LSTM/GRU/RNN ``sequence_lens`` on the CNTK target: the valid steps gathered into
sequences of their own lengths, Y scattered back with zeros after each length.  Run
by real CNTK 2.7 against the emitter tests' independent oracle (ONNX semantics: Y
zero past the end, Y_h/Y_c the last valid state, reverse from ``len - 1``), with
dynamic and static time axes and initial states.  The shared IR case
``lstm_sequence_lens`` (bidirectional LSTM) runs in test_cntk_emitter.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import mmconv.emitters.cntk as cntk_emitter
from mmconv.errors import UnsupportedError
from mmconv.ir import Graph
from mmconv.ir.core import Value
from mmconv.ir.infer import infer_shapes
from mmconv.runtimes.cntk import RunRequest, run_models
from mmconv.verify.compare import assert_close

from ..ir_cases import Case, _rnn_case

#: name -> (keywords of the shared recurrent case builder, static time axis)
CASES = {
    "gru_lbr_reverse_states": ({"cell": "GRU", "direction": "reverse", "states": True,
                                "linear_before_reset": 1}, False),
    "gru_bidirectional_static_t": ({"cell": "GRU", "direction": "bidirectional"}, True),
    "lstm_peepholes_states_static_t": ({"cell": "LSTM", "peepholes": True, "states": True},
                                       True),
    "rnn_relu_reverse": ({"cell": "RNN", "direction": "reverse",
                          "activations": ("Relu",)}, False),
    # float64: the valid-steps count's initial state must be float64 too
    "gru_float64": ({"cell": "GRU"}, False),
}


def _as_float64(case: Case) -> Case:
    """``case`` in float64: float inputs, weights, feeds and references."""
    g = case.graph
    g.inputs = [Value(v.name, "float64", v.shape) if v.dtype == "float32" else v
                for v in g.inputs]
    g.weights = {k: w.astype(np.float64) if w.dtype == np.float32 else w
                 for k, w in g.weights.items()}
    g.values = {}
    feeds = {k: v.astype(np.float64) if v.dtype == np.float32 else v
             for k, v in case.feeds.items()}
    return dataclasses.replace(case, graph=infer_shapes(g), feeds=feeds)


def _case(name: str) -> Case:
    kwargs, static_t = CASES[name]
    case = _rnn_case(seq_lens=True, **kwargs)  # type: ignore[arg-type]
    if name.endswith("_float64"):
        case = _as_float64(case)
    if static_t:  # the same graph with X [N, 6, size]: to_sequence/unpack inside
        x = case.graph.inputs[0]
        fixed = Value(x.name, x.dtype, (None, case.feeds["x"].shape[1], *x.shape[2:]))
        case.graph.inputs[0] = fixed
        case.graph.values[x.name] = fixed
    return case


@pytest.mark.cntk
def test_sequence_lens_match_oracle(cntk_python: str, tmp_path: Path) -> None:
    cases = {name: _case(name) for name in CASES}
    requests = []
    for name, case in cases.items():
        path = tmp_path / f"{name}.model"
        cntk_emitter.emit_model(case.graph, path)
        requests.append(RunRequest(path, case.feeds, list(case.graph.outputs)))
    for (name, case), got in zip(cases.items(), run_models(requests), strict=True):
        assert len(got) == len(case.expected)
        lens = case.feeds["lens"]
        assert lens.min() < case.feeds["x"].shape[1]  # some steps are past the end
        for i, (want, have) in enumerate(zip(case.expected, got, strict=True)):
            assert have.shape == want.shape, (name, i, have.shape)
            assert_close(want, have, name=f"{name} output {i}")
        y = got[0]
        for n, length in enumerate(lens):
            assert not y[n, length:].any(), f"{name}: Y is not zero after the length"


def test_weight_sequence_lens_refused() -> None:
    """Lengths fixed in the model cannot vary along CNTK's dynamic batch axis."""
    case = _rnn_case("LSTM", seq_lens=True)
    g = case.graph
    g2 = Graph(g.name)
    g2.inputs = [v for v in g.inputs if v.name != "lens"]
    g2.weights = dict(g.weights)
    g2.add_weight("lens", case.feeds["lens"])
    g2.nodes = [dataclasses.replace(n) for n in g.nodes]
    g2.outputs = list(g.outputs)
    g2.rebuild_names()
    with pytest.raises(UnsupportedError, match=r"node 'cell' \(LSTM\): sequence_lens 'lens'"):
        cntk_emitter.build_code(g2)
