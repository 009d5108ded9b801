"""CNTK op converters: one module per op family, all registered in two registries.

``CONVERTERS`` is keyed by CNTK primitive op name (``Convolution``, ``Plus``...).
``BLOCK_CONVERTERS`` is keyed by block op name (``Softmax``, ``ElementDivide``...)
for blocks CNTK builds out of primitives that one IR op expresses better; such a
block is converted as a whole and its inner functions are not visited.

A converter is ``fn(ctx: Context, unit: Unit) -> None`` (see
:mod:`mmconv.frontends.cntk.builder`): it adds IR nodes and maps each of the
unit's CNTK outputs to an IR value in ``ctx.values``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mmconv.dispatch import Registry

Converter = Callable[[Any, Any], None]

CONVERTERS: Registry[Converter] = Registry("CNTK converters")
BLOCK_CONVERTERS: Registry[Converter] = Registry("CNTK block converters")

FAMILIES = ("activation", "conv", "detection", "elementwise", "graph", "linalg", "loop",
            "normalization", "pool", "recurrent", "reduce", "shape")
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
