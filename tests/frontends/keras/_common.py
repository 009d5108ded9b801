"""Shared by the Keras frontend tests: models built by real Keras 3 at test time, saved as
.keras and .h5, converted with mmconvert, run in the target framework and compared
with Keras' own predict."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

keras = pytest.importorskip("keras")

from mmconv.cli import mmconvert  # noqa: E402
from mmconv.frontends import keras as keras_frontend  # noqa: E402
from mmconv.verify.compare import compare  # noqa: E402
from mmconv.verify.runners import RUNNERS, TARGET_RUNNERS  # noqa: E402

EXT = {"onnx": ".onnx", "pytorch": ".pt", "keras": ".keras", "cntk": ".model",
       "tensorflow": ""}


def randomize(model: Any, seed: int = 0) -> Any:
    """Non-trivial weights everywhere: BatchNorm gets random positive variances and
    random means, every other weight a random normal of a moderate scale."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            new = []
            names = [w.path.split("/")[-1] for w in layer.weights]
            for name, w in zip(names, weights, strict=True):
                if name == "moving_variance":
                    new.append(rng.uniform(0.5, 2.0, w.shape).astype(w.dtype))
                elif name == "gamma":
                    new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
                else:
                    new.append(rng.normal(0, 0.5, w.shape).astype(w.dtype))
            layer.set_weights(new)
        elif isinstance(layer, keras.layers.Normalization):
            continue
        else:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(w.dtype) if w.ndim
                               else w for w in weights])
    return model


def _all_layers(model: Any) -> list:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


def sample(model: Any, batch: int = 2, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, *t.shape[1:])).astype("float32") for t in model.inputs]


def predict(model: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in outs]


def save(model: Any, folder: Path, fmt: str) -> Path:
    path = folder / f"{model.name}.{fmt}"
    model.save(str(path))
    return path


def convert_run(path: Path, target: str, folder: Path, inputs: Sequence[np.ndarray],
                extra: Sequence[str] = ()) -> list[np.ndarray]:
    """mmconvert -sf keras -iw path -df target, then run the written model."""
    out = folder / f"{path.stem}-{path.suffix[1:]}-{target}{EXT[target]}"
    rc = mmconvert.main(["-sf", "keras", "-iw", str(path), "-df", target, "-om", str(out),
                         *extra])
    assert rc == 0
    graph = keras_frontend.convert(None, str(path),
                                   channels_first_io="--channelsFirstIO" in extra)
    feeds = {}
    for v, x in zip(graph.inputs, inputs, strict=True):
        if "--channelsFirstIO" in extra and x.ndim >= 3:
            x = np.ascontiguousarray(x.transpose(0, x.ndim - 1, *range(1, x.ndim - 1)))
        feeds[v.name] = x
    got = runner_for(target)(out, graph, feeds)
    if "--channelsFirstIO" in extra:
        got = [g.transpose(0, *range(2, g.ndim), 1) if g.ndim >= 3 else g for g in got]
    return got


def runner_for(target: str) -> Any:
    """The function running a written ``target`` model: ``runner(path, graph, feeds)``."""
    runner = TARGET_RUNNERS.get(target) or RUNNERS.get(target)
    assert runner is not None
    return runner


def check(model: Any, folder: Path, targets: Sequence[str] = ("onnx",),
          formats: Sequence[str] = ("keras",), extra: Sequence[str] = (),
          inputs: Callable[[Any], list[np.ndarray]] = sample) -> float:
    """Convert ``model`` saved in each format to each target and compare every output
    with Keras' own (max|a-b| <= 1e-4 * max(1, max|ref|)); returns the worst error.
    ``inputs(model)`` makes the batch (default: standard normal floats)."""
    inputs = inputs(model)
    refs = predict(model, inputs)
    worst = 0.0
    for fmt in formats:
        path = save(model, folder, fmt)
        for target in targets:
            got = convert_run(path, target, folder, inputs, extra)
            assert len(got) == len(refs)
            for i, (ref, g) in enumerate(zip(refs, got, strict=True)):
                result = compare(f"{model.name}[{i}] {fmt}->{target}", ref, np.asarray(g))
                assert result.passed, str(result)
                worst = max(worst, result.max_abs)
    return worst
