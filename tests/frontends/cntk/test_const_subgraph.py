"""Ops computed from weights only (the const_subgraph fixture), through every target.

CNTK models compute things from parameters alone: ``sigmoid(gate)`` gating the
activations, ``plus(param, const)``, a convolution kernel ``tanh(k) * 0.5``, a Dense
weight ``element_max(W, -W)``.  The frontend folds them into weights (the converted
model is inference-equivalent, not training-equivalent: docs/cntk.md), and every
target must reproduce the outputs CNTK 2.7 computed for the fixture's inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters import get_emitter
from mmconv.frontends.cntk import convert
from mmconv.verify.compare import assert_close
from mmconv.verify.runners import RUNNERS, TARGET_RUNNERS
from tests.frontends.cntk._common import FIXTURES, fixture

SUFFIX = {"onnx": ".onnx", "pytorch": ".pt", "keras": ".keras", "tensorflow": ".savedmodel",
          "cntk": ".model"}


def _io() -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    with np.load(FIXTURES / "const_subgraph.io.npz", allow_pickle=False) as io:
        ins = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
        outs = [io[f"out_{i}"] for i in range(len(io["output_names"]))]
    return ins, outs


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_weight_only_ops_are_folded(fmt: str) -> None:
    graph = convert(None, str(fixture("const_subgraph", fmt)))
    weights_only = [n.name for n in graph.nodes if all(i in graph.weights for i in n.inputs)]
    assert weights_only == []
    assert [n.op for n in graph.nodes] == ["Mul", "Add", "Conv", "Relu", "Reshape", "Dense"]
    assert graph.weights["gate_sigmoid"].shape == (3, 1, 1)
    conv = next(n for n in graph.nodes if n.op == "Conv")
    assert conv.inputs[1] == "kernel_computed" and conv.input(2)  # computed bias fused


@pytest.mark.parametrize("fmt", ["v2", "v1"])
@pytest.mark.parametrize("target", sorted(SUFFIX))
def test_every_target_matches_cntk(target: str, fmt: str, tmp_path: Path,
                                   request: pytest.FixtureRequest) -> None:
    if target == "cntk":
        request.getfixturevalue("cntk_python")  # skips without the CNTK env (fails in CI)
    graph = convert(None, str(fixture("const_subgraph", fmt)))
    out = tmp_path / f"model{SUFFIX[target]}"
    get_emitter(target).emit_model(graph, out)
    ins, refs = _io()
    run = TARGET_RUNNERS.get(target) or RUNNERS.get(target)
    got = run(out, graph, {v.name: ins[v.name] for v in graph.inputs})
    assert len(got) == len(refs) == 1
    assert_close(refs[0], np.asarray(got[0]), name=f"const_subgraph.{fmt} -> {target}")
