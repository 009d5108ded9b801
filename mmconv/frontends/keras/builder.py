"""Keras model tree -> IR graph: run each layer call through its converter, in order.

Sequential models chain their layers; Functional models are evaluated call by
call as their input tensors become available (configs are usually in order, but
a shared layer may be listed before its second call's inputs exist); a nested
model is run on the tensors it is called with, so its layers appear in the IR
under their own names.  Before anything is built, every layer is checked, and
all unsupported layers (Lambda, custom classes, unknown activations) are
reported together.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from mmconv.errors import ModelFormatError, UsageError
from mmconv.frontends.base import UnsupportedOps, finish_graph_keeping
from mmconv.frontends.keras.context import KerasContext, Tensor, channels_first, identity
from mmconv.frontends.keras.converters import CONVERTERS, converter_key, unsupported_reason
from mmconv.frontends.keras.masking import check_masks
from mmconv.frontends.keras.model import Layer, Ref, Spec, walk_layers
from mmconv.frontends.keras.reader import KerasFile
from mmconv.ir.core import Graph
from mmconv.progress import bar as progress_bar

#: layers whose input's time axis (axis 1) may stay dynamic in the IR
RECURRENT = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional"})
DTYPES = {"float32", "float64", "float16", "int32", "int64", "uint8", "int8", "int16", "bool"}


def check_supported(kf: KerasFile, spec: Spec) -> None:
    """One error naming every layer no converter handles (and why, when known); a layer
    fed a Keras mask first (its own line: the mask's helper ops are no reason)."""
    check_masks(kf.path, spec)
    missing = UnsupportedOps()
    code = False
    for layer in walk_layers(spec):
        if layer.inner is not None or layer.class_name == "InputLayer":
            continue
        reason = unsupported_reason(layer, kf.keras_version)
        if reason is not None:
            missing.record(reason, layer.name)
            code = code or reason.startswith(("Lambda", "TFOpLambda", "SlicingOpLambda",
                                              "custom layer"))
    missing.raise_if_any(kf.path, "Keras layers mmconv cannot convert",
                         "Lambda and custom layers hold Python code that is not in the file; "
                         "rebuild the model from stock layers" if code else "")


def _call(ctx: KerasContext, layer: Layer, inputs: list[Tensor], index: int) -> list[Tensor]:
    if layer.inner is not None:
        ctx.depth += 1
        try:
            return run_spec(ctx, layer.inner, inputs)
        finally:
            ctx.depth -= 1
    fn = CONVERTERS.get(converter_key(layer))
    outs = fn(ctx, layer, inputs, index)
    if len(layer.calls) <= 1 and ctx.depth == 0:
        _record_source_values(ctx, layer, outs)
    return outs


def _record_source_values(ctx: KerasContext, layer: Layer, outs: list[Tensor]) -> None:
    """IR value -> (Keras layer, output index, perm from the Keras tensor's layout to
    the IR's, IR shape) for ``mmverify --layers``: the layer outputs a Keras sub-model can
    expose (top-level layers called once; an output that is an earlier value, as a
    Dropout's, stays that earlier layer's)."""
    for k, t in enumerate(outs):
        value = ctx.graph.values.get(t.value)
        if t.flat is None and value is not None and t.value not in ctx.source_values \
                and t.value not in ctx.graph.weights:
            ctx.source_values[t.value] = (layer.name, k, list(t.perm), tuple(value.shape))


def run_spec(ctx: KerasContext, spec: Spec, inputs: Sequence[Tensor],
             bar: object | None = None) -> list[Tensor]:
    """The output tensors of model ``spec`` called on ``inputs``."""
    if spec.kind == "Sequential":
        if len(inputs) != 1:
            raise ModelFormatError(f"{ctx.path}: Sequential model {spec.name!r} called on "
                                   f"{len(inputs)} tensors")
        xs = list(inputs)
        for layer in spec.layers:
            xs = _call(ctx, layer, xs, 0)
            _tick(bar)
        return xs
    if len(inputs) != len(spec.inputs):
        raise ModelFormatError(f"{ctx.path}: model {spec.name!r} has {len(spec.inputs)} inputs, "
                               f"called on {len(inputs)}")
    have: dict[Ref, Tensor] = dict(zip(spec.inputs, inputs, strict=True))
    pending = [(layer, i) for layer in spec.layers if layer.class_name != "InputLayer"
               for i in range(len(layer.calls))]
    while pending:
        left = []
        for layer, i in pending:
            refs = layer.calls[i]
            if all(r in have for r in refs):
                outs = _call(ctx, layer, [have[r] for r in refs], i)
                for k, t in enumerate(outs):
                    have[(layer.name, i, k)] = t
                _tick(bar)
            else:
                left.append((layer, i))
        if len(left) == len(pending):
            names = sorted({la.name for la, _ in left})[:5]
            raise ModelFormatError(f"{ctx.path}: model {spec.name!r}: layers {names} are called "
                                   "on tensors nothing computes (a damaged config?)")
        pending = left
    missing = [r for r in spec.outputs if r not in have]
    if missing:
        raise ModelFormatError(f"{ctx.path}: model {spec.name!r}: output {missing[0]} is not "
                               "computed by any layer")
    return [have[r] for r in spec.outputs]


def _tick(bar: object | None) -> None:
    if bar is not None:
        bar.update(1)  # type: ignore[attr-defined]


def _input_names(spec: Spec) -> list[str]:
    if spec.kind == "Sequential":
        return ["input"]
    return [r[0] for r in spec.inputs]


def _output_names(spec: Spec) -> list[str]:
    if spec.kind == "Sequential":
        return [spec.layers[-1].name if spec.layers else "output"]
    names = []
    for layer, _, k in spec.outputs:
        names.append(layer if k == 0 else f"{layer}_{k}")
    return names


def build_graph(kf: KerasFile, spec: Spec, *,
                input_shapes: list[tuple[int, ...]] | None = None,
                channels_first_io: bool = False) -> Graph:
    """The IR graph of the model: inputs and outputs in Keras' layout unless
    ``channels_first_io`` (then rank >= 3 ones are channels-first, no boundary transpose)."""
    check_supported(kf, spec)
    graph = Graph(spec.name)
    ctx = KerasContext(graph, kf.path, kf.keras_version)
    ctx.store = kf.weights
    if input_shapes is not None and len(input_shapes) != len(spec.input_shapes):
        raise UsageError(f"--inputShape gives {len(input_shapes)} shapes, the model has "
                         f"{len(spec.input_shapes)} inputs")
    tensors = []
    recurrent = any(la.class_name in RECURRENT for la in walk_layers(spec))
    for i, (name, shape, dtype) in enumerate(zip(_input_names(spec), spec.input_shapes,
                                                 spec.input_dtypes, strict=True)):
        shape = _resolve_shape(kf.path, name, shape, input_shapes[i] if input_shapes else None,
                               time_may_vary=recurrent)
        if dtype not in DTYPES:
            raise ModelFormatError(f"{kf.path}: input {name!r} has dtype {dtype!r}")
        rank = len(shape)
        perm = channels_first(rank) if channels_first_io else identity(rank)
        graph.add_input(graph.unique_name(name), dtype, tuple(shape[p] for p in perm))
        tensors.append(Tensor(graph.inputs[-1].name, perm))
    total = sum(max(1, len(la.calls)) for la in walk_layers(spec) if la.inner is None)
    with progress_bar(total=total, desc="keras layers", unit="layer") as bar:
        outs = run_spec(ctx, spec, tensors, bar)
    for name, t in zip(_output_names(spec), outs, strict=True):
        rank = len(t.perm)
        want = channels_first(rank) if channels_first_io else identity(rank)
        value = ctx.in_perm(t, want, name)
        if value in graph.outputs or any(v.name == value for v in graph.inputs) or \
                value in graph.weights:
            value = ctx.add("Identity", [value], name)
        elif value != name and name not in graph.values:
            value = _rename(graph, value, name)
        graph.outputs.append(value)
    graph.metadata["source_framework"] = "keras"
    graph.metadata["source_layout"] = "channels_first" if channels_first_io else "channels_last"
    _, kept = finish_graph_keeping(graph, {ir: rec[3] for ir, rec in ctx.source_values.items()})
    graph.metadata["source_values"] = json.dumps({ir: list(ctx.source_values[ir][:3])
                                                  for ir in kept})
    return graph


def _rename(graph: Graph, old: str, new: str) -> str:
    """Give an output the Keras output layer's name (the last node producing it)."""
    for node in graph.nodes:
        if old in node.outputs:
            node.outputs[node.outputs.index(old)] = new
        node.inputs = [new if i == old else i for i in node.inputs]
    graph.values[new] = dataclasses.replace(graph.values.pop(old), name=new)
    return new


def _resolve_shape(path: str, name: str, shape: tuple, given: tuple[int, ...] | None,
                   time_may_vary: bool = False) -> tuple:
    """The input's IR shape: the batch may stay dynamic, and in a model with recurrent
    layers so may axis 1 (a [batch, time, ...] sequence, or [batch, time] token ids)."""
    if given is not None:
        if len(given) != len(shape) - 1:
            raise UsageError(f"--inputShape {','.join(map(str, given))}: input {name!r} has "
                             f"{len(shape) - 1} axes besides the batch")
        return (shape[0], *given)
    free = [i for i, d in enumerate(shape) if d is None and i > 0]
    if free == [1] and time_may_vary:
        return tuple(shape)
    if free:
        raise UsageError(f"{path}: input {name!r} has dynamic axes {list(shape)}; give its "
                         "shape without the batch with --inputShape (e.g. 224,224,3)")
    return tuple(shape)
