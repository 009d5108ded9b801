"""Check a conversion by running the source and the converted model side by side.

``mmconvert --verify`` and ``mmverify`` call :func:`verify_conversion`: both
models get the same inputs (seeded random ones shaped from the IR graph, batch
axis filled in, or the user's ``--input`` file) and every output is compared
with :func:`mmconv.verify.compare.compare`.  With ``layers=True`` every
intermediate value both models expose under the same IR name is compared too
(:mod:`mmconv.verify.probes`, :mod:`mmconv.verify.layers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmconv.errors import UnsupportedError, UsageError
from mmconv.ir import Graph
from mmconv.verify.compare import DEFAULT_RTOL, OutputComparison, compare
from mmconv.verify.layers import LayerReport, compare_layers
from mmconv.verify.probes import SOURCE_PROBES, intermediate_names, target_probe
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


def load_inputs(graph: Graph, path: Path) -> dict[str, np.ndarray]:
    """Inputs from an ``.npz`` file: keyed by IR input name, by the source model's input
    name, or ``in_0, in_1, ...`` in input order (the fixtures' ``.io.npz``)."""
    import json

    source_names = json.loads(graph.metadata.get("source_inputs") or "null") or []
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"--input {path}: not a numpy .npz file ({exc})") from None
    inputs = {}
    for i, value in enumerate(graph.inputs):
        keys = [value.name, f"in_{i}", *(source_names[i:i + 1])]
        key = next((k for k in keys if k in arrays), None)
        if key is None:
            raise UsageError(f"--input {path}: no array for model input {value.name!r} "
                             f"(give one named {value.name!r}; the file has "
                             f"{sorted(arrays)})")
        array = arrays[key]
        want = tuple(value.shape)
        if array.ndim != len(want) or any(d is not None and d != a
                                          for d, a in zip(want, array.shape, strict=True)):
            raise UsageError(f"--input {path}: {key!r} has shape {list(array.shape)}, the "
                             f"model input {value.name!r} takes {list(want)} (None: any)")
        inputs[value.name] = array.astype(value.dtype, copy=False)
    return inputs


def _canonical(framework: str) -> str:
    """The emitters' name for a framework the user may have typed as an alias (``tf``)."""
    from mmconv.emitters import get_emitter

    try:
        return get_emitter(framework).name
    except UsageError:  # a source-only framework
        return framework.lower()


def _runner(framework: str) -> Runner:
    runner = RUNNERS.get(framework)
    if runner is None:
        raise UnsupportedError(
            f"cannot run {framework} models to verify (can run: {', '.join(RUNNERS)})")
    return runner


@dataclass
class Verification:
    """What :func:`verify_conversion` found: per output, and per layer when asked."""

    outputs: list[OutputComparison]
    #: None unless layers were asked for
    layers: LayerReport | None = None
    #: why per-layer values could not be compared (a runtime that cannot expose them)
    layers_note: str = ""

    @property
    def passed(self) -> bool:
        layers_ok = self.layers is None or self.layers.first_diverging is None
        return all(r.passed for r in self.outputs) and layers_ok


def _target_precision(graph: Graph, target: str) -> str | None:
    """The precision ``target`` computes ``graph`` in, where lower than the graph's: the
    ONNX emitter runs a float64 LSTM/GRU/RNN in float32 (onnxruntime has no double
    recurrent kernels)."""
    if target == "onnx" and any(n.op in ("LSTM", "GRU", "RNN")
                                and graph.values[n.inputs[0]].dtype == "float64"
                                for n in graph.nodes):
        return "float32"
    return TARGET_PRECISION.get(target)


def verify_conversion(graph: Graph, source: tuple[str, Path], target: tuple[str, Path], *,
                      batch: int = 2, seed: int = 0, rtol: float | None = None,
                      atol: float = 0.0, inputs: Mapping[str, np.ndarray] | None = None,
                      layers: bool = False, run_target: Runner | None = None) -> Verification:
    """Run ``source`` and ``target`` (framework, model path) on the same inputs and compare.

    ``inputs`` (by IR input name) replaces the seeded random ones; ``layers``
    also compares every intermediate value both sides expose.  ``run_target`` computes
    the target's outputs where no runtime for it is registered here (an emitter's
    offline runner: Core ML's program computed in numpy off macOS).
    """
    source = (_canonical(source[0]), source[1])
    target = (_canonical(target[0]), target[1])
    run_source = _runner(source[0])
    run_target = run_target or TARGET_RUNNERS.get(target[0]) or _runner(target[0])
    feeds = dict(inputs) if inputs is not None else sample_inputs(graph, batch, seed)
    expected = run_source(source[1], graph, feeds)
    actual = run_target(target[1], graph, feeds)
    precision = _target_precision(graph, target[0])

    def tolerance(ref: np.ndarray) -> float | None:
        # a target that computes in lower precision (Caffe: float32) is judged at that
        # precision's tolerance, not at a float64 source's
        if rtol is not None or precision is None:
            return rtol
        return max(DEFAULT_RTOL.get(ref.dtype.name, DEFAULT_RTOL[precision]),
                   DEFAULT_RTOL[precision])

    result = Verification([compare(name, ref, got, tolerance(np.asarray(ref)), atol)
                           for name, ref, got in zip(graph.outputs, expected, actual,
                                                     strict=True)])
    if layers:
        source_probe = SOURCE_PROBES.get(source[0])
        probe_target = target_probe(target[0])
        missing = [f"{kind} {fw}" for kind, fw, probe in
                   (("source", source[0], source_probe), ("target", target[0], probe_target))
                   if probe is None]
        if source[0] == "tensorflow":
            result.layers_note = ("per-layer values are not available for TensorFlow sources "
                                  "(the tf2onnx model they are read through is not kept); "
                                  "outputs only")
            return result
        if missing:
            result.layers_note = (f"per-layer values cannot be read from a {' or a '.join(missing)}"
                                  " model; outputs only")
            return result
        assert source_probe is not None and probe_target is not None
        names = intermediate_names(graph)
        ref = source_probe(source[1], graph, feeds, names)
        got = probe_target(target[1], graph, feeds, [n for n in names if n in ref])
        # the graph outputs were fetched above by their exact source names: use those
        ref.update(zip(graph.outputs, expected, strict=True))
        got.update(zip(graph.outputs, actual, strict=True))
        result.layers = compare_layers(graph, ref, got, rtol, atol)
    return result
