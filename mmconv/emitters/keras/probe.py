"""Intermediate values of a ``.keras`` file this emitter wrote (``mmverify --layers``).

Every IR value the emitter wrote is the output of a Keras layer named after it
(:meth:`.context.EmitContext.held_values` records which, and in which layout:
channels-last inside the model).  A sub-model over those layers returns them;
each is transposed back to the IR's layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.ir.core import Graph


def _generated_for(model: Any, graph: Graph) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The emitter's value map for the boundary layout this model was written with
    (``--channelsLastIO`` or not), recognised by the model's input shapes."""
    from mmconv.emitters.keras.builder import generate

    shapes = [tuple(t.shape)[1:] for t in model.inputs]
    held: dict[str, tuple[str, tuple[int, ...]]] = {}
    for nhwc in (False, True):
        held = generate(graph, nhwc_io=nhwc).values
        laid_out = [tuple(v.shape[p] for p in held[v.name][1])[1:] for v in graph.inputs]
        if laid_out == shapes:
            break
    return held


def probe(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
          names: Sequence[str]) -> dict[str, np.ndarray]:
    """The values of ``names`` (IR value names) the model computes on ``inputs``."""
    from mmconv.emitters.keras.builder import import_keras

    keras = import_keras()
    from mmconv.emitters.keras import cells  # noqa: F401  (registers the custom cells)

    model = keras.models.load_model(str(path))
    held = _generated_for(model, graph)
    layers = {layer.name: layer for layer in model.layers}
    wanted = [n for n in names if n in held and held[n][0] in layers
              and not isinstance(layers[held[n][0]].output, (list, tuple))]
    if not wanted:
        return {}
    sub = keras.Model(model.inputs, [layers[held[n][0]].output for n in wanted])
    feeds = [np.transpose(inputs[v.name], held[v.name][1]) for v in graph.inputs]
    got = sub(feeds, training=False)
    got = got if isinstance(got, (list, tuple)) else [got]
    found = {}
    for name, value in zip(wanted, got, strict=True):
        array = np.asarray(value)
        layout = held[name][1]
        found[name] = array.transpose(np.argsort(layout)) if len(layout) == array.ndim else array
    return found
