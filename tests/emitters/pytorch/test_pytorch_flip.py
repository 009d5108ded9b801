"""Negative-step Slices on dynamic axes (a go_backwards sequence flipped back, any
reversal of the batch or time axis): ``torch.flip`` and an index on the flipped axis,
eager and TorchScript against the IR's numpy evaluator, at two lengths so that ONNX's
clamping of out-of-range bounds is exercised."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.scan import run_graph

from ._common import assert_runs_as

BIG = 2**63 - 1

#: (starts, ends, axes, steps) of one Slice on x [N, T, 3] (N and T dynamic)
FORMS = {
    "time_flip": ((-1,), (-BIG - 1,), (1,), (-1,)),
    "time_flip_int32_end": ((-1,), (-(2**31),), (1,), (-1,)),
    "time_flip_far_start": ((BIG,), (-BIG - 1,), (1,), (-1,)),
    "batch_flip": ((-1,), (-BIG - 1,), (0,), (-1,)),
    "every_other_from_end": ((-2,), (-BIG - 1,), (1,), (-2,)),
    "from_3_down_to_1": ((3,), (0,), (1,), (-1,)),
    "start_before_the_first": ((-7,), (-BIG - 1,), (1,), (-1,)),
    "end_from_the_back": ((4,), (-4,), (1,), (-1,)),
    "empty": ((2,), (-1,), (1,), (-1,)),
    "time_and_features": ((-1, 2), (-BIG - 1, 0), (1, 2), (-1, -2)),
}


def _graph(starts: tuple, ends: tuple, axes: tuple, steps: tuple) -> Graph:
    g = Graph("flip")
    g.add_input("x", "float32", [None, None, 3])
    g.add_node("Slice", ["x"], "flipped", starts=starts, ends=ends, axes=axes, steps=steps)
    g.add_node("Relu", ["flipped"], "y")
    g.outputs = ["y"]
    return infer_shapes(g)


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value")
@pytest.mark.parametrize("form", sorted(FORMS))
def test_negative_step_on_dynamic_axes(form: str) -> None:
    graph = _graph(*FORMS[form])
    rng = np.random.default_rng(1)
    for n, t in ((2, 5), (3, 2)):
        x = rng.standard_normal((n, t, 3)).astype(np.float32)
        want = run_graph(graph, {"x": x})
        source = assert_runs_as(graph, {"x": x}, want, f"{form} T={t}")
    assert "torch.flip(" in source


def test_whole_axis_flip_is_torch_flip_alone() -> None:
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 3)
    source = assert_runs_as(_graph(*FORMS["time_flip"]), {"x": x}, [x[:, ::-1]], "flip")
    assert "= torch.flip(x_, [1])\n" in source
