"""A CNTK sequence back to front (an IR Slice [-1::-1] of the dynamic time axis, as a
Keras go_backwards sequence is flipped back): the generated ``_reversed_sequence``,
run by real CNTK 2.7 against the IR's numpy evaluator; its result shares the input's
sequence axis (it is added to the unflipped steps).  Other slices of the time axis
stay refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmconv.emitters.cntk as cntk_emitter
from mmconv.emitters.cntk.builder import build_code
from mmconv.errors import UnsupportedError
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.scan import run_graph
from mmconv.runtimes.cntk import RunRequest, run_models
from mmconv.verify.compare import assert_close

FLIP = {"starts": (-1,), "ends": (-(2**31),), "axes": (1,), "steps": (-1,)}


def _graph(sample: tuple[int, ...], dtype: str = "float32",
           **slice_attrs: tuple[int, ...]) -> Graph:
    g = Graph("flip")
    g.add_input("x", dtype, [None, None, *sample])
    g.add_node("Tanh", ["x"], "t")  # a computed sequence, not only the input
    g.add_node("Slice", ["t"], "flipped", **(slice_attrs or FLIP))
    g.add_node("Add", ["flipped", "x"], "mixed")
    g.outputs = ["flipped", "mixed"]
    return infer_shapes(g)


@pytest.mark.cntk
@pytest.mark.parametrize(("sample", "dtype"), [((4,), "float32"), ((2, 3), "float32"),
                                              ((4,), "float64")])
def test_reversed_sequence_matches_numpy(cntk_python: str, tmp_path: Path,
                                         sample: tuple[int, ...], dtype: str) -> None:
    graph = _graph(sample, dtype)
    path = tmp_path / "flip.model"
    cntk_emitter.emit_model(graph, path)
    rng = np.random.default_rng(3)
    feeds = [{"x": rng.uniform(-2, 2, (n, t, *sample)).astype(dtype)}
             for n, t in ((3, 6), (2, 1))]
    got = run_models([RunRequest(path, f, list(graph.outputs)) for f in feeds])
    for f, have in zip(feeds, got, strict=True):
        want = run_graph(graph, f)
        assert_close(np.tanh(f["x"])[:, ::-1], want[0], name="oracle")  # it flips
        for name, w, h in zip(graph.outputs, want, have, strict=True):
            assert h.shape == w.shape and h.dtype == dtype, (name, h.shape, h.dtype)
            assert_close(w, h, name=name)


def test_other_time_slices_refused() -> None:
    every_other = {"starts": (-1,), "ends": (-(2**31),), "axes": (1,), "steps": (-2,)}
    with pytest.raises(UnsupportedError, match=r"node 'flipped' \(Slice\): a slice of the "
                       r"sequence axis other than .* all of it reversed \(fix the length "
                       "with --inputShape\\)"):
        build_code(_graph((4,), "float32", **every_other))
