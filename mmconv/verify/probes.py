"""Intermediate values of a model, by IR value name: what ``--layers`` compares.

A probe takes the model path, the IR graph the conversion went through, the
inputs (by IR input name) and the IR value names wanted; it returns the
values it could find, keyed by IR name, in the IR's layout (NCHW).  Names a
model does not have (an IR node the target wrote as several ops, a source
function hidden inside a CNTK block) are simply left out: only values both
sides have are compared.

How each framework exposes its intermediates:

- CNTK (source or target): the worker finds top-level functions by name or
  uid (the CNTK frontend names IR nodes after the CNTK functions and blocks;
  the CNTK emitter names every function after its IR value), evaluated in the
  CNTK bridge.  A name that several functions carry is skipped, not guessed.
- ONNX: the emitter keeps IR value names, so they become extra graph outputs.
- Models read through code (PyTorch, Keras): the emitter's own ``probe`` in
  its :class:`~mmconv.emitters.base.Emitter` description (``emitters/pytorch/
  probe.py``, ``emitters/keras/probe.py``), so verify needs nothing inside an
  emitter package.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from mmconv.dispatch import Registry
from mmconv.errors import MmconvError
from mmconv.ir import Graph

Probe = Callable[[Path, Graph, Mapping[str, np.ndarray], Sequence[str]], dict[str, np.ndarray]]
#: Probes of source models (addressed by the source's own names).
SOURCE_PROBES: Registry[Probe] = Registry("per-layer source probe")
#: Probes of models mmconv wrote (addressed by IR names).
TARGET_PROBES: Registry[Probe] = Registry("per-layer target probe")


def target_probe(framework: str) -> Probe | None:
    """The probe of a converted model: the runtime's own (ONNX, CNTK), else the one the
    target's emitter describes, else None (outputs only)."""
    found = TARGET_PROBES.get(framework)
    if found is not None:
        return found
    from mmconv.emitters import get_emitter

    try:
        return get_emitter(framework).probe
    except MmconvError:
        return None


def intermediate_names(graph: Graph) -> list[str]:
    """Every value a node computes, in graph order (inputs and weights excluded)."""
    return [out for node in graph.nodes for out in node.outputs if out]


def _source_request(graph: Graph, inputs: Mapping[str, np.ndarray], names: Sequence[str]
                    ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Feeds keyed by the source model's input names and the names to ask the source for:
    the graph outputs by the source names the frontend recorded, the rest by IR name."""
    in_ids = json.loads(graph.metadata.get("source_inputs") or "null") or [
        v.name for v in graph.inputs]
    out_ids = json.loads(graph.metadata.get("source_outputs") or "null") or list(graph.outputs)
    by_source = dict(zip(graph.outputs, out_ids, strict=True))
    feeds = {src: inputs[v.name] for src, v in zip(in_ids, graph.inputs, strict=True)}
    return feeds, [by_source.get(n, n) for n in names]


@SOURCE_PROBES.register("cntk")
def probe_cntk_source(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                      names: Sequence[str]) -> dict[str, np.ndarray]:
    """Real CNTK: IR names are the CNTK function/block names (or uids) they came from;
    the graph's outputs are fetched by the uids the frontend recorded."""
    from mmconv.runtimes.cntk import probe_model

    feeds, asked = _source_request(graph, inputs, names)
    got = probe_model(path, feeds, asked)
    return {n: got[a] for n, a in zip(names, asked, strict=True) if a in got}


@TARGET_PROBES.register("cntk")
def probe_cntk_target(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                      names: Sequence[str]) -> dict[str, np.ndarray]:
    """A model from the CNTK emitter: every function carries its IR value's name."""
    from mmconv.runtimes.cntk import probe_model

    return probe_model(path, {v.name: inputs[v.name] for v in graph.inputs}, list(names))


def _onnx_values(path: Path, feeds: Mapping[str, np.ndarray], asked: Sequence[str]
                 ) -> dict[str, np.ndarray]:
    """onnxruntime with the ``asked`` values the model computes added as graph outputs."""
    import onnx

    from mmconv.verify.onnx_runner import OnnxRunner

    model = onnx.load(str(path), load_external_data=False)
    computed = {o for n in model.graph.node for o in n.output}
    wanted = list(dict.fromkeys(n for n in asked if n in computed))
    got = OnnxRunner(path, extra_outputs=wanted).run_dict(dict(feeds))
    return {n: got[n] for n in wanted if n in got}


@TARGET_PROBES.register("onnx")
def probe_onnx(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
               names: Sequence[str]) -> dict[str, np.ndarray]:
    """A model from the ONNX emitter: it keeps the IR value names."""
    return _onnx_values(path, {v.name: inputs[v.name] for v in graph.inputs}, names)


def _ir_shaped(graph: Graph, found: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The values whose shape is their IR value's (a dynamic axis matches any length):
    a source value the layout pass re-laid out in the IR (a sunk transpose in a
    channels-last graph) has another shape and is not comparable, so it is left out
    rather than reported as a divergence."""
    kept = {}
    for name, array in found.items():
        value = graph.values.get(name)
        if value is None or len(value.shape) != np.ndim(array):
            continue
        if all(d is None or d == s for d, s in zip(value.shape, np.shape(array), strict=True)):
            kept[name] = array
    return kept


@SOURCE_PROBES.register("onnx")
def probe_onnx_source(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                      names: Sequence[str]) -> dict[str, np.ndarray]:
    """A source ONNX file: fed by the input names the ONNX frontend recorded; each IR
    value is looked up by the ONNX value name the frontend recorded for it
    (``source_values``: IR names are sanitized node names, ``features_0_conv`` for
    ``/features/features.0/Conv_output_0``), else by its own name (files converted before
    the map existed); the outputs by their ONNX names.  Inputs and outputs the frontend
    made channels-first (--channelsFirstIO) are fed in the source's layout and read back
    in the IR's.  Only values with the IR's shape are returned."""
    from mmconv.verify.runners import from_source_layout, source_perms, to_source_layout

    feeds, asked = _source_request(graph, inputs, names)
    from_onnx = graph.metadata.get("source_framework") == "onnx"
    if from_onnx:
        in_perms = source_perms(graph, "source_input_perms", len(graph.inputs))
        feeds = dict(zip(feeds, to_source_layout(list(feeds.values()), in_perms), strict=True))
    recorded = json.loads(graph.metadata.get("source_values") or "{}")
    outs = set(graph.outputs)
    asked = [a if n in outs else recorded.get(n, a) for n, a in zip(names, asked, strict=True)]
    got = _onnx_values(path, feeds, asked)
    result = {n: got[a] for n, a in zip(names, asked, strict=True) if a in got}
    if from_onnx:
        out_perms = source_perms(graph, "source_output_perms", len(graph.outputs))
        for name, perm in zip(graph.outputs, out_perms, strict=True):
            if name in result and perm is not None:
                result[name] = from_source_layout([result[name]], [perm])[0]
    return _ir_shaped(graph, result)


@SOURCE_PROBES.register("keras")
def probe_keras_source(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                       names: Sequence[str]) -> dict[str, np.ndarray]:
    """A source ``.keras``/``.h5`` file: the Keras frontend recorded, per IR value, the
    layer output it is and the perm from the Keras tensor to the IR layout
    (``source_values``); a sub-model over those layers' outputs is run on the inputs
    (channels-last feeds as the Keras runner gives them) and each value is transposed
    into the IR layout.  Layers of nested models and shared layers are not exposed."""
    from mmconv.frameworks import import_framework
    from mmconv.verify.runners import _feeds_nhwc, _nhwc

    recorded = json.loads(graph.metadata.get("source_values") or "{}")
    wanted = [n for n in names if n in recorded]
    if not wanted:
        return {}
    keras = import_framework("keras")
    model = keras.models.load_model(str(path))
    tensors, kept = [], []
    for name in wanted:
        layer_name, k, _ = recorded[name]
        try:
            out = model.get_layer(layer_name).output
        except (ValueError, AttributeError):  # not a top-level layer of the loaded model
            continue
        outs = out if isinstance(out, (list, tuple)) else [out]
        if k < len(outs):
            tensors.append(outs[k])
            kept.append(name)
    if not kept:
        return {}
    sub = keras.Model(model.inputs, tensors)
    nhwc = _nhwc([tuple(t.shape) for t in model.inputs], graph)
    feeds = _feeds_nhwc(graph, inputs) if nhwc else [inputs[v.name] for v in graph.inputs]
    got = sub(feeds, training=False)  # built on the list model.inputs: a list
    got = got if isinstance(got, (list, tuple)) else [got]
    found = {}
    for name, array in zip(kept, got, strict=True):
        perm = recorded[name][2]
        array = np.asarray(array)
        if array.ndim == len(perm):
            found[name] = np.transpose(array, perm)
    return _ir_shaped(graph, found)
