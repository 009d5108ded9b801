"""compare_layers: graph order, the first diverging value, values only one side has."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmconv.frontends.cntk import convert
from mmconv.verify.layers import compare_layers


def test_first_diverging_in_graph_order(cntk_fixtures_dir: Path) -> None:
    graph = convert(None, str(cntk_fixtures_dir / "alexnet_mini.v2.model"))
    rng = np.random.default_rng(0)
    names = [o for n in graph.nodes for o in n.outputs]
    ref = {n: rng.standard_normal((2, 4)).astype(np.float32) for n in names}
    got = {n: a.copy() for n, a in ref.items()}
    # everything from conv2 on is off; conv2's own Conv output is not exposed by one side
    start = names.index("conv2")
    for n in names[start:]:
        got[n] = got[n] + 0.1
    del ref["conv2/Plus"]
    got["pool1"] = np.zeros((7,), np.float32)  # another element count: not comparable
    report = compare_layers(graph, ref, got)
    first = report.first_diverging
    assert first is not None and first.name == "conv2" and first.op == "Relu"
    assert {"conv2/Plus", "pool1"} <= set(report.not_compared)
    text = "\n".join(report.lines())
    assert "first diverging layer: conv2 (op Relu): max|a-b| 0.1 > tol 0.0001" in text
    assert "conv2/Convolution (op Conv)" in text
    assert all(c.result.passed for c in report.compared[: [c.name for c in report.compared]
                                                      .index("conv2")])


def test_no_divergence(cntk_fixtures_dir: Path) -> None:
    graph = convert(None, str(cntk_fixtures_dir / "convnet.v2.model"))
    values = {o: np.ones((2, 3), np.float32) for n in graph.nodes for o in n.outputs}
    report = compare_layers(graph, values, values, atol=0.5)
    assert report.first_diverging is None and len(report.compared) == len(values)
    assert "no diverging layer" in "\n".join(report.lines())
