"""Keras layer converters: one module per layer family, all in one registry.

``CONVERTERS`` is keyed by the layer's class name (``Conv2D``, ``Add``...);
operations a Keras 3 functional model records from ``keras.ops`` calls on
symbolic tensors (``x + 3.0`` in MobileNetV3) are keyed ``ops.<ClassName>``.
Layers of ``keras.applications`` modules (ConvNeXt's ``LayerScale``,
InceptionResNetV2's ``CustomScaleLayer``) have converters too: their code is
part of Keras, their semantics fixed.

A converter is ``fn(ctx, layer, inputs, call_index) -> list[Tensor]``
(:class:`~mmconv.frontends.keras.context.KerasContext`,
:class:`~mmconv.frontends.keras.model.Layer`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mmconv.dispatch import Registry
from mmconv.frontends.keras.model import Layer

Converter = Callable[..., list]

CONVERTERS: Registry[Converter] = Registry("Keras layer converters")

#: layer options a converter cannot express, checked before anything is built (so every
#: problem is reported at once): class name -> ``fn(layer, keras_version) -> reason or
#: None``; filled by the family modules next to their converters
CHECKS: dict[str, Callable[[Layer, str], str | None]] = {}

#: layer modules whose classes are Keras' own (anything else is a custom layer)
KERAS_MODULES = ("keras.layers", "keras.src.layers", "keras.src.applications", "keras",
                 "keras.src.ops", "keras.src.models", "tf_keras", "")

def converter_key(layer: Layer) -> str:
    """``ops.<Class>`` for a keras.ops node: its module says so in a .keras file; a legacy
    .h5 config drops the module, but an operation's config holds nothing but its name,
    where a layer's always has ``trainable`` and ``dtype``."""
    if layer.module.startswith("keras.src.ops") or (
            not layer.module and set(layer.config) <= {"name"}
            and f"ops.{layer.class_name}" in CONVERTERS):
        return f"ops.{layer.class_name}"
    return layer.class_name


def unsupported_reason(layer: Layer, keras_version: str) -> str | None:
    """Why ``layer`` cannot be converted (the op shown in the error), or None."""
    from mmconv.frontends.keras.converters.activation import activation_problem

    if layer.class_name in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
        return layer.class_name
    module = layer.module
    if module and not any(module == m or module.startswith(m + ".") for m in KERAS_MODULES):
        return f"custom layer {layer.class_name}"
    if layer.config.get("registered_name") not in (None, layer.class_name) and \
            "." not in module:
        return f"custom layer {layer.class_name}"
    if converter_key(layer) not in CONVERTERS:
        return converter_key(layer)
    check = CHECKS.get(converter_key(layer))
    if check is not None:
        problem = check(layer, keras_version)
        if problem:
            return problem
    act = layer.config.get("activation")
    if act is not None:
        problem = activation_problem(act)
        if problem:
            return f"{layer.class_name}(activation={problem})"
    fmt = layer.config.get("data_format")
    if fmt not in (None, "channels_last", "channels_first"):
        return f"{layer.class_name}(data_format={fmt})"
    return None


def cfg(layer: Layer, key: str, default: Any = None) -> Any:
    return layer.config.get(key, default)


# the families register themselves; imported last, as they use the helpers above
FAMILIES = ("activation", "conv", "core", "merge", "normalization", "pool", "recurrent",
            "reshaping")
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
