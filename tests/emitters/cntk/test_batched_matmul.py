"""Batched MatMul on the CNTK target (attention's ``q @ k^T``): ``times`` cannot express
it, so the emitter writes a broadcast product and a sum.  Checked in real CNTK against
numpy's matmul; kept out of the shared IR cases because Caffe and MXNet refuse it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmconv.emitters.cntk as cntk_emitter
from mmconv.ir import Graph
from mmconv.runtimes.cntk import RunRequest, run_models
from mmconv.verify.compare import assert_close

RNG = np.random.default_rng(7)


def _rand(*shape: int) -> np.ndarray:
    return RNG.uniform(-2.0, 2.0, size=shape).astype(np.float32)


def _graph(a: np.ndarray, b: np.ndarray, b_is_weight: bool) -> Graph:
    """``a @ b`` then a ReduceMean without keepdims (what the transformer ends with)."""
    g = Graph("batched_matmul")
    g.add_input("a", "float32", [None, *a.shape[1:]])
    if b_is_weight:
        g.add_weight("b", b)
    else:
        g.add_input("b", "float32", [None, *b.shape[1:]])
    g.add_node("MatMul", ["a", "b"], "mm")
    g.add_node("ReduceMean", ["mm"], "mean", axes=(2,), keepdims=False)
    g.outputs = ["mm", "mean"]
    return g


@pytest.mark.cntk
def test_batched_matmul_matches_numpy(cntk_python: str, tmp_path: Path) -> None:
    a4, b4 = _rand(2, 2, 3, 4), _rand(2, 2, 4, 5)  # both carry the batch
    w3 = _rand(2, 4, 5)  # a per-head weight broadcast over the batch
    a3, b3 = _rand(2, 3, 4), _rand(2, 4, 6)  # rank 3: times per sample (B a matrix)
    cases = [(a4, b4, False), (a4, w3, True), (a3, b3, False)]
    requests = []
    for i, (a, b, weight) in enumerate(cases):
        out = tmp_path / f"mm{i}.model"
        cntk_emitter.emit_model(_graph(a, b, weight), out)
        feeds = {"a": a} if weight else {"a": a, "b": b}
        requests.append(RunRequest(out, feeds, ["mm", "mean"]))
    for (a, b, _), got in zip(cases, run_models(requests), strict=True):
        want = a.astype(np.float64) @ b
        assert got[0].shape == want.shape
        # float32 tolerance (1e-4 relative); a float64 reference would tighten it
        assert_close(want.astype(np.float32), got[0], name="mm")
        assert_close(want.mean(axis=2).astype(np.float32), got[1], name="mean")
