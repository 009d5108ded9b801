"""Check a conversion by running the source and the converted model side by side.

``mmconvert --verify`` calls :func:`verify_conversion`: both models get the
same seeded random inputs (shaped from the IR graph, batch axis filled in) and
every output is compared with :func:`mmconv.verify.compare.compare`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.ir import Graph
from mmconv.verify.compare import DEFAULT_RTOL, OutputComparison, compare
from mmconv.verify.runners import RUNNERS, TARGET_PRECISION, TARGET_RUNNERS, Runner


def sample_inputs(graph: Graph, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal inputs for every graph input; dynamic axes get ``batch``."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for value in graph.inputs:
        shape = tuple(batch if d is None else d for d in value.shape)
        if value.dtype.startswith("float"):
            inputs[value.name] = rng.standard_normal(shape).astype(value.dtype)
        elif value.dtype == "bool":
            inputs[value.name] = rng.random(shape) < 0.5
        else:
            inputs[value.name] = rng.integers(0, 4, shape).astype(value.dtype)
    return inputs


def _runner(framework: str) -> Runner:
    runner = RUNNERS.get(framework)
    if runner is None:
        raise UnsupportedError(
            f"cannot run {framework} models to verify (can run: {', '.join(RUNNERS)})")
    return runner


def verify_conversion(graph: Graph, source: tuple[str, Path], target: tuple[str, Path], *,
                      batch: int = 2, seed: int = 0, rtol: float | None = None
                      ) -> list[OutputComparison]:
    """Run ``source`` and ``target`` (framework, model path) on the same inputs and compare."""
    run_source = _runner(source[0])
    run_target = TARGET_RUNNERS.get(target[0]) or _runner(target[0])
    inputs = sample_inputs(graph, batch, seed)
    expected = run_source(source[1], graph, inputs)
    actual = run_target(target[1], graph, inputs)
    precision = TARGET_PRECISION.get(target[0])

    def tolerance(ref: np.ndarray) -> float | None:
        if rtol is not None or precision is None:
            return rtol
        return max(DEFAULT_RTOL.get(ref.dtype.name, DEFAULT_RTOL[precision]),
                   DEFAULT_RTOL[precision])

    return [compare(name, ref, got, tolerance(np.asarray(ref)))
            for name, ref, got in zip(graph.outputs, expected, actual, strict=True)]
