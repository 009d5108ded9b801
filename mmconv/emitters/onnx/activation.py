"""Activations: elementwise nonlinearities, PRelu and the softmax family."""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.onnx.context import HANDLERS, EmitContext, axis_of
from mmconv.ir.core import Node
from mmconv.ir.ops._common import broadcast
from mmconv.ir.registry import get_schema

#: IR op -> the ONNX op of the same meaning (all exist from opset 6 on).
UNARY = ("Relu", "Sigmoid", "Tanh", "Softplus", "Elu", "Selu", "LeakyRelu", "HardSigmoid")


@HANDLERS.register(*UNARY)
def emit_unary_activation(ctx: EmitContext, node: Node) -> None:
    """One node; every attribute the IR op declares (alpha, beta, gamma) written out."""
    attrs = {name: float(node.attr(name)) for name in sorted(get_schema(node.op).attrs)}
    ctx.add(node.op, [node.inputs[0]], node.outputs, name=node.name, **attrs)


@HANDLERS.register("PRelu")
def emit_prelu(ctx: EmitContext, node: Node) -> None:
    """ONNX PRelu broadcasts the slope only towards X; when the IR's numpy
    broadcasting makes the result larger than X, use relu(X) + slope * (X - relu(X))."""
    x, slope = node.inputs[0], node.inputs[1]
    if broadcast(node, [ctx.shape(x), ctx.shape(slope)]) == ctx.shape(x):
        ctx.add("PRelu", [x, slope], node.outputs, name=node.name)
        return
    pos = ctx.add("Relu", [x])[0]
    neg = ctx.add("Sub", [x, pos])[0]
    ctx.add("Add", [pos, ctx.add("Mul", [slope, neg])[0]], node.outputs, name=node.name)


@HANDLERS.register("Softmax", "LogSoftmax", "Hardmax")
def emit_softmax(ctx: EmitContext, node: Node) -> None:
    """Native with the IR's (opset-13) per-axis meaning from opset 13.

    Before 13 these ops flatten the input to 2-D at ``axis`` and normalize over
    everything after it, which is the same thing only when all axes after
    ``axis`` have size 1; otherwise the op is decomposed along the one axis
    (max-subtracted exp / sum; hardmax as OneHot(ArgMax)).  No transposes.
    """
    x = node.inputs[0]
    shape = ctx.shape(x)
    axis = axis_of(node, len(shape))
    if ctx.opset >= 13 or all(d == 1 for d in shape[axis + 1:]):
        ctx.add(node.op, [x], node.outputs, name=node.name, axis=axis)
        return
    if node.op == "Hardmax":
        ctx.require(node, 9, f"Hardmax along axis {axis} of {len(shape)} (via OneHot)")
        depth = shape[axis]
        if depth is None:
            raise ctx.unsupported(node, "Hardmax before opset 13 needs a static axis size")
        index = ctx.add("ArgMax", [x], axis=axis, keepdims=0)[0]
        values = ctx.const(np.array([0, 1], dtype=ctx.dtype(x)), "values")
        ctx.add("OneHot", [index, ctx.int64s([depth], "depth"), values], node.outputs,
                name=node.name, axis=axis)
        return
    peak = ctx.reduce("ReduceMax", x, [axis])
    shifted = ctx.add("Sub", [x, peak])[0]
    exp = ctx.add("Exp", [shifted])[0]
    total = ctx.reduce("ReduceSum", exp, [axis])
    if node.op == "Softmax":
        ctx.add("Div", [exp, total], node.outputs, name=node.name)
    else:
        ctx.add("Sub", [shifted, ctx.add("Log", [total])[0]], node.outputs, name=node.name)


@HANDLERS.register("Softsign")
def emit_softsign(ctx: EmitContext, node: Node) -> None:
    ctx.add("Softsign", [node.inputs[0]], node.outputs, name=node.name)


@HANDLERS.register("HardSwish")
def emit_hard_swish(ctx: EmitContext, node: Node) -> None:
    """Native from opset 14; before, X * HardSigmoid(X, 1/6, 1/2) (the same formula)."""
    x = node.inputs[0]
    if ctx.opset >= 14:
        ctx.add("HardSwish", [x], node.outputs, name=node.name)
        return
    gate = ctx.add("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)[0]
    ctx.add("Mul", [x, gate], node.outputs, name=node.name)


@HANDLERS.register("Mish")
def emit_mish(ctx: EmitContext, node: Node) -> None:
    """Native from opset 18; before, X * Tanh(Softplus(X))."""
    x = node.inputs[0]
    if ctx.opset >= 18:
        ctx.add("Mish", [x], node.outputs, name=node.name)
        return
    gate = ctx.add("Tanh", [ctx.add("Softplus", [x])[0]])[0]
    ctx.add("Mul", [x, gate], node.outputs, name=node.name)


@HANDLERS.register("Gelu")
def emit_gelu(ctx: EmitContext, node: Node) -> None:
    """Native from opset 20; before, the formula: with Erf (opset 9) for the exact form,
    with Tanh for approximate=tanh."""
    x = node.inputs[0]
    approximate = str(node.attr("approximate"))
    if ctx.opset >= 20:
        ctx.add("Gelu", [x], node.outputs, name=node.name, approximate=approximate)
        return
    if approximate == "tanh":
        cube = ctx.add("Mul", [x, ctx.add("Mul", [x, x])[0]])[0]
        inner = ctx.add("Add", [x, ctx.add("Mul", [cube, ctx.scalar(0.044715, x, "c")])[0]])[0]
        scaled = ctx.add("Mul", [inner, ctx.scalar(math.sqrt(2.0 / math.pi), x, "k")])[0]
        gate = ctx.add("Tanh", [scaled])[0]
    else:
        ctx.require(node, 9, "Gelu before opset 20 (via Erf)")
        gate = ctx.add("Erf", [ctx.add("Mul", [x, ctx.scalar(math.sqrt(0.5), x, "k")])[0]])[0]
    one_plus = ctx.add("Add", [gate, ctx.scalar(1.0, x, "one")])[0]
    half_x = ctx.add("Mul", [x, ctx.scalar(0.5, x, "half")])[0]
    ctx.add("Mul", [half_x, one_plus], node.outputs, name=node.name)
