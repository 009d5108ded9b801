"""ONNX op converters: one module per op family, in one versioned registry.

``CONVERTERS`` is keyed by ONNX op type and the opset the converter's semantics
appeared in (``@CONVERTERS.register("Softmax", since=13)``); for a model of
opset ``v`` the registration with the highest ``since <= v`` converts the node.
A registration may carry ``check(attrs, opset) -> str | None``, which names an
attribute value the converter cannot handle (``"mode=cubic"``) so that the
frontend lists every problem before converting anything.

A converter is ``fn(ctx: OnnxContext, node: OnnxNode) -> None`` (see
:mod:`mmconv.frontends.onnx.builder`): it adds IR nodes and maps the node's
outputs to IR values with ``ctx.set``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mmconv.dispatch import VersionedRegistry

Converter = Callable[[Any, Any], None]

#: opset 7 is the oldest the frontend reads (from 7 ONNX broadcasts like numpy)
CONVERTERS: VersionedRegistry[Converter] = VersionedRegistry("ONNX converters", min_version=7)

FAMILIES = ("activation", "conv", "elementwise", "graph", "linalg", "loop", "normalization",
            "pool", "recurrent", "reduce", "resize", "scan", "shape")
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
