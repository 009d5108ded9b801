"""The Keras model config as a tree of layers and calls (no Keras needed).

A Keras model config is JSON: a ``Functional`` model lists its layers, each with
the calls made on it (``inbound_nodes``, naming the input tensors as
``(layer, call index, output index)``); a ``Sequential`` model lists layers that
are chained; a model used as a layer is one of these nested inside.  This module
turns either JSON dialect (Keras 3's ``__keras_tensor__`` args, Keras 2's
``[[name, node, tensor, kwargs], ...]`` lists) into :class:`Spec` trees and
computes each layer's path in a ``.keras`` weights file.  It validates the JSON's
types as it goes: a damaged config is one :class:`ModelFormatError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mmconv.errors import ModelFormatError

#: (layer name, call index, output index), as Keras names a tensor in a config.
Ref = tuple[str, int, int]
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})


@dataclass
class Layer:
    name: str
    class_name: str
    module: str
    config: dict
    #: path of the layer's variables in the weights file (see WeightStore.variables)
    where: tuple[str, ...]
    #: each call's input tensors (flattened args), Functional models only
    calls: list[list[Ref]] = field(default_factory=list)
    #: each call's raw positional args (keras.ops nodes mix tensors and numbers)
    call_args: list[list] = field(default_factory=list)
    #: each call's raw keyword args (Keras 3; an RNN's ``mask`` shows up here)
    call_kwargs: list[dict] = field(default_factory=list)
    #: the model spec when this layer is itself a model
    inner: Spec | None = None
    #: legacy h5 weights: the nested layer's name path
    h5_where: tuple[str, ...] = ()


@dataclass
class Spec:
    name: str
    kind: str  # "Functional" or "Sequential"
    layers: list[Layer]
    inputs: list[Ref]
    outputs: list[Ref]
    #: the batch shape of each input (Sequential: from its InputLayer or first layer)
    input_shapes: list[tuple[int | None, ...]] = field(default_factory=list)
    input_dtypes: list[str] = field(default_factory=list)


class ConfigError(ModelFormatError):
    pass


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind):
        raise ConfigError(f"the model config has no valid {key!r} at {where}")
    return obj[key]


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: the weights-file key of a layer class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def tensor_refs(obj: Any) -> list[Ref]:
    """Every Keras 3 ``__keras_tensor__`` inside call args, in order."""
    out: list[Ref] = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            hist = obj.get("config", {}).get("keras_history")
            if (not isinstance(hist, list) or len(hist) != 3 or not isinstance(hist[0], str)
                    or not all(isinstance(h, int) for h in hist[1:])):
                raise ConfigError(f"a tensor reference with a bad keras_history: {hist!r}")
            out.append((hist[0], hist[1], hist[2]))
        else:
            for v in obj.values():
                out.extend(tensor_refs(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(tensor_refs(v))
    return out


def _call_inputs(node: Any, layer: str) -> list[Ref]:
    if isinstance(node, dict):  # Keras 3; an RNN's initial states follow its input
        kwargs = node.get("kwargs")
        states = kwargs.get("initial_state") if isinstance(kwargs, dict) else None
        return tensor_refs(node.get("args", [])) + tensor_refs(states or [])
    if isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        refs = []
        for item in node:
            if (not isinstance(item, list) or len(item) < 3 or not isinstance(item[0], str)
                    or not isinstance(item[1], int) or not isinstance(item[2], int)):
                raise ConfigError(f"layer {layer!r}: a bad inbound node {item!r}")
            refs.append((item[0], item[1], item[2]))
        return refs
    raise ConfigError(f"layer {layer!r}: a bad inbound node")


def _io_refs(value: Any, what: str) -> list[Ref]:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"the model config's {what} is not a list")
    refs = []
    for v in value:
        if (not isinstance(v, list) or len(v) != 3 or not isinstance(v[0], str)
                or not isinstance(v[1], int) or not isinstance(v[2], int)):
            raise ConfigError(f"the model config's {what} holds a bad entry {v!r}")
        refs.append((v[0], v[1], v[2]))
    return refs


def input_shape_of(layer_cfg: dict) -> tuple[list, str] | None:
    """An InputLayer's (or a Sequential first layer's) batch shape and dtype."""
    for key in ("batch_shape", "batch_input_shape"):
        shape = layer_cfg.get(key)
        if isinstance(shape, list) and all(d is None or (isinstance(d, int) and d >= 0)
                                           for d in shape):
            dtype = layer_cfg.get("dtype")
            if isinstance(dtype, dict):
                dtype = dtype.get("config", {}).get("name")
            return shape, dtype if isinstance(dtype, str) else "float32"
    return None


def parse(model: dict, where: tuple[str, ...] = (), h5_where: tuple[str, ...] = ()) -> Spec:
    """The :class:`Spec` of a model config ``{"class_name": ..., "config": ...}``.

    ``where`` is the model's path in a ``.keras`` weights file (``()`` at the top),
    ``h5_where`` its name path in a legacy h5 file.
    """
    kind = _need(model, "class_name", str, "the model")
    cfg = _need(model, "config", (dict, list), kind)
    if kind == "Sequential" and isinstance(cfg, list):  # very old Keras 2: a bare layer list
        cfg = {"name": "sequential", "layers": cfg}
    if kind not in MODEL_CLASSES:
        raise ConfigError(f"the top-level object is a {kind!r}, not a Keras model")
    name = cfg.get("name") if isinstance(cfg.get("name"), str) else "model"
    layer_cfgs = _need(cfg, "layers", list, f"model {name!r}")
    sequential = kind == "Sequential" or "input_layers" not in cfg
    layers: list[Layer] = []
    used: dict[str, int] = {}
    input_shapes: list[tuple[int | None, ...]] = []
    input_dtypes: list[str] = []
    for i, lc in enumerate(layer_cfgs):
        cls = _need(lc, "class_name", str, f"layer {i} of {name!r}")
        lconf = _need(lc, "config", dict, f"layer {i} of {name!r}")
        lname = lconf.get("name", lc.get("name"))
        if not isinstance(lname, str):
            raise ConfigError(f"layer {i} of model {name!r} has no name")
        if sequential and cls == "InputLayer":
            found = input_shape_of(lconf)
            if found is None:
                raise ConfigError(f"input layer {lname!r} has no valid batch shape")
            input_shapes.append(tuple(found[0]))
            input_dtypes.append(found[1])
            continue  # Sequential.layers leaves the InputLayer out (and so does saving)
        count = used.get(snake_case(cls), -1) + 1
        used[snake_case(cls)] = count
        key = snake_case(cls) + (f"_{count}" if count else "")
        lwhere = (*where, "layers", key)
        layer = Layer(lname, cls, str(lc.get("module") or ""), lconf, lwhere,
                      h5_where=(*h5_where, lname))
        if cls in MODEL_CLASSES:
            layer.inner = parse(lc, lwhere, layer.h5_where)
        if not sequential:
            nodes = lc.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise ConfigError(f"layer {lname!r}: inbound_nodes is not a list")
            layer.calls = [_call_inputs(n, lname) for n in nodes]
            layer.call_args = [n.get("args", []) if isinstance(n, dict) else [] for n in nodes]
            layer.call_kwargs = [n["kwargs"] if isinstance(n, dict) and
                                 isinstance(n.get("kwargs"), dict) else {} for n in nodes]
        layers.append(layer)
    if sequential:
        if not input_shapes and layers:
            found = input_shape_of(layers[0].config)
            if found is None and layers[0].inner is not None and layers[0].inner.input_shapes:
                found = (list(layers[0].inner.input_shapes[0]), layers[0].inner.input_dtypes[0])
            if found is None:
                build = layers[0].config.get("build_config") or {}
                shape = build.get("input_shape") if isinstance(build, dict) else None
                if isinstance(shape, list):
                    found = (shape, "float32")
            if found is not None:
                input_shapes.append(tuple(found[0]))
                input_dtypes.append(found[1])
        if not input_shapes:
            raise ConfigError(f"Sequential model {name!r} has no input shape (build it or "
                              "give it an Input before saving)")
        return Spec(name, "Sequential", layers, [], [], input_shapes, input_dtypes)
    inputs = _io_refs(cfg.get("input_layers"), "input_layers")
    outputs = _io_refs(cfg.get("output_layers"), "output_layers")
    by_name = {la.name: la for la in layers}
    if any(isinstance(n, dict) for lc in layer_cfgs for n in lc.get("inbound_nodes") or []):
        # Keras 3 counts a nested Functional model's own construction as its call 0
        # (keras.src.models.functional: "Functional models start out with a built-in
        # node"); Keras 2 configs renumber calls per model and need no shift
        def shift(ref: Ref) -> Ref:
            la = by_name.get(ref[0])
            if la is not None and la.class_name == "Functional":
                return (ref[0], ref[1] - 1, ref[2])
            return ref

        outputs = [shift(r) for r in outputs]
        for la in layers:
            la.calls = [[shift(r) for r in call] for call in la.calls]
    for ref in inputs:
        la = by_name.get(ref[0])
        if la is None or la.class_name != "InputLayer":
            raise ConfigError(f"model {name!r}: input {ref[0]!r} is not an InputLayer")
        found = input_shape_of(la.config)
        if found is None:
            raise ConfigError(f"input layer {ref[0]!r} has no valid batch shape")
        input_shapes.append(tuple(found[0]))
        input_dtypes.append(found[1])
    return Spec(name, "Functional", layers, inputs, outputs, input_shapes, input_dtypes)


def walk_layers(spec: Spec) -> list[Layer]:
    """Every layer of the tree, nested models' layers included (models themselves too)."""
    out = []
    for layer in spec.layers:
        out.append(layer)
        if layer.inner is not None:
            out.extend(walk_layers(layer.inner))
    return out
