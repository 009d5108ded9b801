"""IR names for ONNX nodes and values: the names people know, made safe.

Exporters name nodes differently: torch.onnx's TorchScript exporter writes the
module path (``/features/features.0/Conv``), its dynamo exporter writes
``node_Conv_13`` but keeps parameter names (``features.0.weight``), tf2onnx
writes TensorFlow scopes (``model/conv2d/Conv2D``).  The IR gets
``features_0_conv`` in the first two cases and ``model_conv2d_Conv2D`` in the
third: letters, digits and ``_`` only, never starting with a digit, so every
emitter's identifiers stay readable.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
#: Parameter suffixes that name a module's parameter, not the module.
_PARAM_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "kernel", "gamma", "beta",
                   "moving_mean", "moving_variance", "scale", "B", "W")
#: dynamo's generated node names: ``node_Conv_13``, ``node_relu_2``.
_DYNAMO = re.compile(r"^node_(.*?)(_\d+)?$")
#: names that say nothing (onnxscript's inlined ``n0``, ``n0_4``; bare numbers): the op's
#: name is better.
_GENERATED = re.compile(r"^(n?\d+)(_\d+)*$")


def sanitize(name: str, fallback: str = "v") -> str:
    """``name`` with runs of other characters turned into ``_``; never empty, never
    starting with a digit."""
    safe = _UNSAFE.sub("_", name).strip("_")
    if not safe:
        safe = fallback
    if safe[0].isdigit():
        safe = f"{fallback}_{safe}"
    return safe


def _module_of_param(param: str) -> str | None:
    """``features.0`` for ``features.0.weight``; None for names like ``onnx::Conv_27``."""
    if "::" in param or "." not in param:
        return None
    module, _, leaf = param.rpartition(".")
    return module if leaf in _PARAM_SUFFIXES else None


def node_base_name(name: str, op: str, initializer_inputs: list[str]) -> str:
    """The readable base of an IR node name (made unique by the caller)."""
    low = op.lower()
    if name.startswith("/"):
        # TorchScript exporter: /features/features.0/Conv or /layer1/layer1.0/relu/Relu
        parts = [p for p in name.split("/") if p]
        if len(parts) >= 2:
            module, tail = parts[-2], parts[-1]
            tail_op = re.sub(r"_\d+$", "", tail)
            suffix = tail[len(tail_op):]
            if module.rsplit(".", 1)[-1].lower() == tail_op.lower():
                return sanitize(module + suffix)
            return sanitize(f"{module}_{tail_op.lower()}{suffix}")
        return sanitize(parts[0].lower() if parts else low)
    for param in initializer_inputs:
        module = _module_of_param(param)
        if module:
            return sanitize(f"{module}_{low}")
    match = _DYNAMO.match(name)
    if match:
        stem = match.group(1).lower()
        return sanitize(low if not stem or stem.isdigit() else stem)
    if name and not _GENERATED.match(name):
        return sanitize(name)
    return low
