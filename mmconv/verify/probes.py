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
- PyTorch: the ``.pt`` is TorchScript, whose locals cannot be read; its
  state_dict goes into the KitModel code re-emitted from the same IR (one
  local variable per IR value), run once with its locals captured.
- Keras: a sub-model over the layers the emitter named after IR values;
  channels-last values are transposed back with the layout the emitter
  recorded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from mmconv.dispatch import Registry
from mmconv.frameworks import import_framework
from mmconv.ir import Graph

Probe = Callable[[Path, Graph, Mapping[str, np.ndarray], Sequence[str]], dict[str, np.ndarray]]
#: Probes of source models (addressed by the source's own names).
SOURCE_PROBES: Registry[Probe] = Registry("per-layer source probe")
#: Probes of models mmconv wrote (addressed by IR names).
TARGET_PROBES: Registry[Probe] = Registry("per-layer target probe")


def intermediate_names(graph: Graph) -> list[str]:
    """Every value a node computes, in graph order (inputs and weights excluded)."""
    return [out for node in graph.nodes for out in node.outputs if out]


@SOURCE_PROBES.register("cntk")
def probe_cntk_source(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                      names: Sequence[str]) -> dict[str, np.ndarray]:
    """Real CNTK: IR names are the CNTK function/block names (or uids) they came from;
    the graph's outputs are fetched by the uids the frontend recorded."""
    from mmconv.runtimes.cntk import probe_model

    in_ids = json.loads(graph.metadata.get("source_inputs") or "null") or [
        v.name for v in graph.inputs]
    out_ids = json.loads(graph.metadata.get("source_outputs") or "null") or list(graph.outputs)
    by_source = dict(zip(graph.outputs, out_ids, strict=True))
    asked = [by_source.get(n, n) for n in names]
    feeds = {uid: inputs[v.name] for uid, v in zip(in_ids, graph.inputs, strict=True)}
    got = probe_model(path, feeds, asked)
    return {n: got[a] for n, a in zip(names, asked, strict=True) if a in got}


@TARGET_PROBES.register("cntk")
def probe_cntk_target(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                      names: Sequence[str]) -> dict[str, np.ndarray]:
    """A model from the CNTK emitter: every function carries its IR value's name."""
    from mmconv.runtimes.cntk import probe_model

    return probe_model(path, {v.name: inputs[v.name] for v in graph.inputs}, list(names))


@SOURCE_PROBES.register("onnx")
@TARGET_PROBES.register("onnx")
def probe_onnx(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
               names: Sequence[str]) -> dict[str, np.ndarray]:
    """onnxruntime with the wanted values added as graph outputs."""
    import onnx

    from mmconv.verify.onnx_runner import OnnxRunner

    model = onnx.load(str(path), load_external_data=False)
    computed = {o for n in model.graph.node for o in n.output}
    wanted = [n for n in names if n in computed]
    runner = OnnxRunner(path, extra_outputs=wanted)
    got = runner.run_dict({v.name: inputs[v.name] for v in graph.inputs})
    return {n: got[n] for n in wanted if n in got}


class _LocalsRecorder:
    """Captures the local variables of one function call (``forward``) when it returns."""

    def __init__(self, code: Any) -> None:
        self.code = code
        self.locals: dict[str, Any] = {}

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code is self.code:
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "return":
            self.locals = dict(frame.f_locals)
        return self._local


@TARGET_PROBES.register("pytorch", "torch")
def probe_pytorch(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                  names: Sequence[str]) -> dict[str, np.ndarray]:
    """The TorchScript file's own state_dict, run in KitModel code re-emitted from the IR
    (TorchScript hides its locals; the code names one local per IR value)."""
    import warnings

    from mmconv.emitters.pytorch import emit
    from mmconv.emitters.pytorch.script import code_module, instantiate

    torch = import_framework("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, works
        scripted = torch.jit.load(str(path), map_location="cpu")
    emitted = emit(graph)
    with code_module(emitted.source) as module:
        model = instantiate(module, dict(scripted.state_dict()), str(path))
        model.eval()
        args = [torch.from_numpy(np.ascontiguousarray(inputs[v.name])) for v in graph.inputs]
        recorder = _LocalsRecorder(type(model).forward.__code__)
        previous = sys.gettrace()
        sys.settrace(recorder)
        try:
            with torch.no_grad():
                model(*args)
        finally:
            sys.settrace(previous)
    found = {}
    for name in names:
        value = recorder.locals.get(emitted.locals.get(name, ""))
        if isinstance(value, torch.Tensor):
            found[name] = value.detach().numpy()
    return found


@TARGET_PROBES.register("keras")
def probe_keras(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
                names: Sequence[str]) -> dict[str, np.ndarray]:
    """A sub-model of the ``.keras`` file over the layers named after IR values."""
    from mmconv.emitters.keras import generate
    from mmconv.emitters.keras.builder import import_keras
    from mmconv.verify.runners import _feeds_nhwc, _nhwc

    keras = import_keras()
    model = keras.models.load_model(str(path))
    nhwc = _nhwc([tuple(t.shape) for t in model.inputs], graph)
    held = generate(graph, nhwc_io=nhwc).values
    layer_names = {layer.name for layer in model.layers}
    wanted = []
    for name in names:
        layer, _ = held.get(name, ("", ()))
        if layer in layer_names and not isinstance(model.get_layer(layer).output, list):
            wanted.append(name)
    if not wanted:
        return {}
    sub = keras.Model(model.inputs, [model.get_layer(held[n][0]).output for n in wanted])
    feeds = _feeds_nhwc(graph, inputs) if nhwc else [inputs[v.name] for v in graph.inputs]
    got = sub(feeds, training=False)
    got = got if isinstance(got, (list, tuple)) else [got]
    found = {}
    for name, value in zip(wanted, got, strict=True):
        layout = held[name][1]
        array = np.asarray(value)
        if len(layout) == array.ndim:
            array = array.transpose(np.argsort(layout))
        found[name] = array
    return found
