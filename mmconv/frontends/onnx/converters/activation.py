"""Activations and normalized exponentials (Softmax & co. with their opset-13 change)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters._util import norm_axis

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode

_SAME = ("Relu", "Sigmoid", "Tanh", "Softplus", "Softsign")


def _unary(op: str):
    def convert(ctx: OnnxContext, node: OnnxNode) -> None:
        ctx.simple(node, op, 1)

    convert.__name__ = f"convert_{op.lower()}"
    return convert


for _op in _SAME:
    CONVERTERS.register(_op, since=6 if _op in ("Relu", "Sigmoid", "Tanh") else 1)(_unary(_op))
CONVERTERS.register("HardSwish", since=14)(_unary("HardSwish"))
CONVERTERS.register("Mish", since=18)(_unary("Mish"))


@CONVERTERS.register("LeakyRelu", since=6)
def leaky_relu(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "LeakyRelu", 1, alpha=float(node.attr("alpha", 0.01)))


@CONVERTERS.register("Elu", since=6)
def elu(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "Elu", 1, alpha=float(node.attr("alpha", 1.0)))


@CONVERTERS.register("Selu", since=6)
def selu(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "Selu", 1, alpha=float(node.attr("alpha", 1.67326319217681884765625)),
               gamma=float(node.attr("gamma", 1.05070102214813232421875)))


@CONVERTERS.register("HardSigmoid", since=6)
def hard_sigmoid(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "HardSigmoid", 1, alpha=float(node.attr("alpha", 0.2)),
               beta=float(node.attr("beta", 0.5)))


@CONVERTERS.register("Gelu", since=20)
def gelu(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "Gelu", 1, approximate=str(node.attr("approximate", "none")))


@CONVERTERS.register("PRelu", since=7)
def prelu(ctx: OnnxContext, node: OnnxNode) -> None:
    """ONNX broadcasts the slope to X unidirectionally, which numpy rules cover."""
    ctx.simple(node, "PRelu", 2, params=("X", "slope"))


@CONVERTERS.register("ThresholdedRelu", since=10)
def thresholded_relu(ctx: OnnxContext, node: OnnxNode) -> None:
    x = ctx.x(node, 0)
    alpha = ctx.constant(f"{node.name}/alpha", np.array(node.attr("alpha", 1.0), ctx.dtype(x)))
    mask = ctx.add("Greater", [x, alpha], f"{node.name}/mask")
    zero = ctx.constant(f"{node.name}/zero", np.array(0, ctx.dtype(x)))
    ctx.set(node, ctx.add("Where", [mask, x, zero], node.name))


# -- Clip: bounds are attributes before opset 11, inputs from 11 -------------------------
@CONVERTERS.register("Clip", since=6)
def clip_6(ctx: OnnxContext, node: OnnxNode) -> None:
    _clip(ctx, node, float(node.attr("min", -math.inf)), float(node.attr("max", math.inf)))


@CONVERTERS.register("Clip", since=11)
def clip_11(ctx: OnnxContext, node: OnnxNode) -> None:
    lo = ctx.need_static(node, 1, "the min bound")
    hi = ctx.need_static(node, 2, "the max bound")
    _clip(ctx, node, -math.inf if lo is None else float(lo), math.inf if hi is None else float(hi))


def _clip(ctx: OnnxContext, node: OnnxNode, lo: float, hi: float) -> None:
    x = ctx.x(node, 0)
    if lo == 0 and hi == math.inf:
        ctx.set(node, ctx.add("Relu", [x], node.name))
        return
    ctx.set(node, ctx.add("Clip", [x], node.name, min=lo, max=hi))


# -- Softmax family: opset < 13 coerces the input to 2-D at axis --------------------------
def _softmax_1(op: str):
    def convert(ctx: OnnxContext, node: OnnxNode) -> None:
        """Before opset 13 the op normalizes over all axes from ``axis`` on (the input
        flattened to 2-D there); that equals the IR op when ``axis`` is the last axis
        or every axis after it has size 1, otherwise Flatten, the op, Reshape back."""
        x = ctx.x(node, 0)
        shape = ctx.shape(x)
        axis = norm_axis(int(node.attr("axis", 1)), len(shape))
        rest = shape[axis + 1:]
        if all(d == 1 for d in rest):
            ctx.set(node, ctx.add(op, [x], node.name, axis=axis))
            return
        flat = ctx.add("Flatten", [x], f"{node.name}/flatten", axis=axis)
        y = ctx.add(op, [flat], f"{node.name}/{op.lower()}", axis=1)
        ctx.set(node, ctx.reshape(y, shape, node.name))

    convert.__name__ = f"{op.lower()}_1"
    return convert


def _softmax_13(op: str):
    def convert(ctx: OnnxContext, node: OnnxNode) -> None:
        ctx.simple(node, op, 1, axis=int(node.attr("axis", -1)))

    convert.__name__ = f"{op.lower()}_13"
    return convert


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    CONVERTERS.register(_op, since=1)(_softmax_1(_op))
    CONVERTERS.register(_op, since=13)(_softmax_13(_op))
