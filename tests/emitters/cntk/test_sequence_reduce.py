"""Reductions over the time axis of a CNTK sequence (IR ReduceSum/Max/Min/Mean over
axis 1 of an [N, T, ...] input with dynamic T): ``C.sequence.reduce_sum/max``, run by
real CNTK 2.7 against numpy.  A reduction over time and a static axis together stays
refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmconv.emitters.cntk as cntk_emitter
from mmconv.emitters.cntk.builder import build_code
from mmconv.errors import UnsupportedError
from mmconv.ir import Graph
from mmconv.runtimes.cntk import RunRequest, run_models
from mmconv.verify.compare import assert_close

N, T, D = 3, 5, 4
NUMPY = {"ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min, "ReduceMean": np.mean}


def _graph(axes: tuple[int, ...] = (1,)) -> Graph:
    g = Graph("over_time")
    g.add_input("x", "float32", [None, None, D])
    g.add_node("Tanh", ["x"], "t")  # a computed sequence, not only the input
    for op in NUMPY:
        for keep in (False, True):
            g.add_node(op, ["t"], f"{op}_{int(keep)}", axes=axes, keepdims=keep)
    g.outputs = [n.outputs[0] for n in g.nodes[1:]]
    return g


@pytest.mark.cntk
def test_reductions_over_time_match_numpy(cntk_python: str, tmp_path: Path) -> None:
    x = np.random.default_rng(5).uniform(-2, 2, (N, T, D)).astype(np.float32)
    graph = _graph()
    path = tmp_path / "over_time.model"
    cntk_emitter.emit_model(graph, path)
    got = run_models([RunRequest(path, {"x": x}, list(graph.outputs))])[0]
    t = np.tanh(x.astype(np.float64))
    for name, have in zip(graph.outputs, got, strict=True):
        op, keep = name.rsplit("_", 1)
        want = NUMPY[op](t, axis=1, keepdims=keep == "1")
        assert have.shape == want.shape, (name, have.shape)
        assert_close(want.astype(np.float32), have, name=name)


def test_time_and_static_axis_refused() -> None:
    with pytest.raises(UnsupportedError, match=r"node 'ReduceSum_0' \(ReduceSum\): it works "
                                               "along the batch or sequence axis"):
        build_code(_graph(axes=(1, 2)))
