"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot-free.

Operands are brought to one layout (channels-first when any already is), so a
residual Add of two convolution outputs costs nothing.
"""

from __future__ import annotations

import numpy as np

from mmconv.errors import ModelFormatError
from mmconv.frontends.keras.context import KerasContext, Tensor
from mmconv.frontends.keras.converters import CONVERTERS, cfg
from mmconv.frontends.keras.model import Layer

BINARY = {"Add": "Add", "Multiply": "Mul", "Maximum": "Max", "Minimum": "Min",
          "Average": "Add"}


def _need_inputs(ctx: KerasContext, layer: Layer, xs: list[Tensor], n: int | None) -> None:
    if len(xs) < 2 or (n is not None and len(xs) != n):
        raise ModelFormatError(f"{ctx.path}: {layer.class_name} layer {layer.name!r} called on "
                               f"{len(xs)} tensors")


@CONVERTERS.register(*BINARY)
def nary(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    _need_inputs(ctx, layer, xs, None)
    values, perm = ctx.common(xs, layer.name)
    op = BINARY[layer.class_name]
    average = layer.class_name == "Average"
    y = values[0]
    for k, v in enumerate(values[1:], start=1):
        last = k == len(values) - 1 and not average
        y = ctx.add(op, [y, v], layer.name if last else f"{layer.name}/{k}")
    if average:
        scale = ctx.constant(f"{layer.name}/scale",
                             np.array(1.0 / len(values), dtype=ctx.dtype(y)))
        y = ctx.add("Mul", [y, scale], layer.name)
    return [Tensor(y, perm)]


@CONVERTERS.register("Subtract")
def subtract(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    _need_inputs(ctx, layer, xs, 2)
    values, perm = ctx.common(xs, layer.name)
    return [Tensor(ctx.add("Sub", values, layer.name), perm)]


@CONVERTERS.register("Concatenate")
def concatenate(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    if not xs:
        raise ModelFormatError(f"{ctx.path}: Concatenate {layer.name!r} without inputs")
    values, perm = ctx.common(xs, layer.name)
    axis = int(cfg(layer, "axis", -1))
    probe = Tensor(values[0], perm)
    return [Tensor(ctx.add("Concat", values, layer.name, axis=ctx.ir_axis(probe, axis)), perm)]
