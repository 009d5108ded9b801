"""Normalization: BatchNormalization, LRN, LayerNormalization."""

from __future__ import annotations

import numpy as np

from mmconv.emitters.onnx.context import HANDLERS, EmitContext, axis_of, present
from mmconv.ir.core import Node


@HANDLERS.register("BatchNormalization")
def emit_batch_norm(ctx: EmitContext, node: Node) -> None:
    """Per-channel BN is ONNX BN; per-element BN (spatial=False) becomes Mul + Add.

    ONNX BN (opset 9+) is per channel only, so per-element statistics are folded
    at emit time into one scale and one shift (when they are weights), or
    computed by nodes (when they are not).  The ``spatial`` attribute exists in
    opsets 7 and 8 only.
    """
    x = node.inputs[0]
    eps = float(node.attr("epsilon"))
    if node.attr("spatial"):
        channels = ctx.shape(x)[1]
        if channels is None:
            raise ctx.unsupported(node, "the channel axis must have a static size")
        params = [ctx.as_shape(p, (channels,), hint)
                  for p, hint in zip(node.inputs[1:5], ("scale", "B", "mean", "var"),
                                     strict=True)]
        spatial = 1 if ctx.opset < 9 else None
        ctx.add("BatchNormalization", [x, *params], node.outputs, name=node.name,
                epsilon=eps, spatial=spatial)
        return
    per_sample = ctx.shape(x)[1:]
    if any(d is None for d in per_sample):
        raise ctx.unsupported(node, "per-element BN needs static non-batch dims")
    shape = tuple(int(d) for d in per_sample)  # type: ignore[arg-type]
    scale, bias, mean, var = (ctx.weight(p) for p in node.inputs[1:5])
    if scale is not None and bias is not None and mean is not None and var is not None:
        dtype = np.dtype(ctx.dtype(x))
        mul = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
        add = bias.astype(np.float64) - mean.astype(np.float64) * mul
        mul_name = ctx.const(mul.reshape(shape).astype(dtype), "scale")
        add_name = ctx.const(add.reshape(shape).astype(dtype), "shift")
        scaled = ctx.add("Mul", [x, mul_name])[0]
        ctx.add("Add", [scaled, add_name], node.outputs, name=node.name)
        return
    s, b, m, v = (ctx.as_shape(p, shape, hint)
                  for p, hint in zip(node.inputs[1:5], ("scale", "B", "mean", "var"),
                                     strict=True))
    centered = ctx.add("Sub", [x, m])[0]
    std = ctx.add("Sqrt", [ctx.add("Add", [v, ctx.scalar(eps, x, "epsilon")])[0]])[0]
    normed = ctx.add("Div", [centered, std])[0]
    ctx.add("Add", [ctx.add("Mul", [normed, s])[0], b], node.outputs, name=node.name)


@HANDLERS.register("LRN")
def emit_lrn(ctx: EmitContext, node: Node) -> None:
    """ONNX LRN (the IR guarantees an odd window, which onnxruntime requires)."""
    ctx.add("LRN", [node.inputs[0]], node.outputs, name=node.name, size=node.attr("size"),
            alpha=float(node.attr("alpha")), beta=float(node.attr("beta")),
            bias=float(node.attr("bias")))


@HANDLERS.register("LayerNormalization")
def emit_layer_norm(ctx: EmitContext, node: Node) -> None:
    """Native from opset 17; below, the same arithmetic with ReduceMean/Sub/Sqrt/Div."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = axis_of(node, rank)
    eps = float(node.attr("epsilon"))
    if ctx.opset >= 17:
        ctx.add("LayerNormalization", present(node.inputs), node.outputs,
                name=node.name, axis=axis, epsilon=eps)
        return
    axes = list(range(axis, rank))
    mean = ctx.reduce("ReduceMean", x, axes)
    centered = ctx.add("Sub", [x, mean])[0]
    var = ctx.reduce("ReduceMean", ctx.add("Mul", [centered, centered])[0], axes)
    std = ctx.add("Sqrt", [ctx.add("Add", [var, ctx.scalar(eps, x, "epsilon")])[0]])[0]
    normed = ctx.add("Div", [centered, std])[0]
    if node.input(2):
        scaled = ctx.add("Mul", [normed, node.inputs[1]])[0]
        ctx.add("Add", [scaled, node.inputs[2]], node.outputs, name=node.name)
    else:
        ctx.add("Mul", [normed, node.inputs[1]], node.outputs, name=node.name)



@HANDLERS.register("InstanceNormalization")
def emit_instance_norm(ctx: EmitContext, node: Node) -> None:
    """The same op (opset 6+): scale and B are [C] as ONNX wants them."""
    ctx.add("InstanceNormalization", node.inputs[:3], node.outputs, name=node.name,
            epsilon=float(node.attr("epsilon")))
