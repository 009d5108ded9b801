"""Shape ops: Flatten, Reshape, Transpose, Concat, Slice, Pad, Gather, Expand, Tile."""

from __future__ import annotations

import numpy as np

from mmconv.emitters.onnx.context import HANDLERS, EmitContext, axis_of
from mmconv.ir.core import Node


@HANDLERS.register("Flatten")
def emit_flatten(ctx: EmitContext, node: Node) -> None:
    """Flatten before opset 9 takes float tensors only."""
    if not ctx.dtype(node.inputs[0]).startswith("float"):
        ctx.require(node, 9, f"Flatten on {ctx.dtype(node.inputs[0])}")
    ctx.add("Flatten", [node.inputs[0]], node.outputs, name=node.name, axis=node.attr("axis"))


@HANDLERS.register("Reshape")
def emit_reshape(ctx: EmitContext, node: Node) -> None:
    """The IR's target-shape attribute becomes Reshape's int64 shape input (opset 5+),
    with 0 meaning "copy" as in the IR (allowzero stays 0)."""
    shape = ctx.int64s(node.attr("shape"), "shape")
    ctx.add("Reshape", [node.inputs[0], shape], node.outputs, name=node.name)


@HANDLERS.register("Transpose")
def emit_transpose(ctx: EmitContext, node: Node) -> None:
    """Only the IR's own Transpose nodes become Transposes; the emitter adds none."""
    ctx.add("Transpose", [node.inputs[0]], node.outputs, name=node.name,
            perm=list(node.attr("perm")))


@HANDLERS.register("Concat")
def emit_concat(ctx: EmitContext, node: Node) -> None:
    """The axis is written non-negative: negative Concat axes are legal only from 11."""
    axis = axis_of(node, ctx.rank(node.inputs[0]))
    ctx.add("Concat", node.inputs, node.outputs, name=node.name, axis=axis)


@HANDLERS.register("Slice")
def emit_slice(ctx: EmitContext, node: Node) -> None:
    """Attributes before opset 10 (steps must be 1 there), int64 inputs from 10.

    Axes are written non-negative (negative ones are legal from opset 11 only).
    """
    x = node.inputs[0]
    rank = ctx.rank(x)
    starts, ends = list(node.attr("starts")), list(node.attr("ends"))
    axes = [a + rank if a < 0 else a for a in node.attr("axes")] or list(range(len(starts)))
    steps = list(node.attr("steps")) or [1] * len(starts)
    if ctx.opset < 10:
        if any(s != 1 for s in steps):
            ctx.require(node, 10, "Slice with steps")
        ctx.add("Slice", [x], node.outputs, name=node.name, starts=starts, ends=ends,
                axes=axes)
        return
    ins = [x, ctx.int64s(starts, "starts"), ctx.int64s(ends, "ends"), ctx.int64s(axes, "axes"),
           ctx.int64s(steps, "steps")]
    ctx.add("Slice", ins, node.outputs, name=node.name)


@HANDLERS.register("Pad")
def emit_pad(ctx: EmitContext, node: Node) -> None:
    """Pads and value are attributes before opset 11 and inputs from 11 (the value
    with X's dtype)."""
    x = node.inputs[0]
    mode, value = node.attr("mode"), float(node.attr("value"))
    pads = list(node.attr("pads"))
    if ctx.opset < 11:
        ctx.add("Pad", [x], node.outputs, name=node.name, mode=mode, pads=pads,
                value=value if mode == "constant" else None)
        return
    ins = [x, ctx.int64s(pads, "pads")]
    if mode == "constant" and value != 0.0:
        ins.append(ctx.scalar(value, x, "value"))
    ctx.add("Pad", ins, node.outputs, name=node.name, mode=mode)


@HANDLERS.register("Gather")
def emit_gather(ctx: EmitContext, node: Node) -> None:
    """ONNX Gather; negative weight indices are made non-negative at emit time
    (negative indices are ONNX semantics only from opset 11)."""
    x, indices = node.inputs[:2]
    axis = axis_of(node, ctx.rank(x))
    array = ctx.weight(indices)
    if array is not None and (array < 0).any():
        size = ctx.shape(x)[axis]
        if size is None:
            raise ctx.unsupported(node, "negative indices along a dynamic axis")
        indices = ctx.const(np.where(array < 0, array + size, array).astype(array.dtype),
                            "indices")
    ctx.add("Gather", [x, indices], node.outputs, name=node.name, axis=axis)


@HANDLERS.register("Expand")
def emit_expand(ctx: EmitContext, node: Node) -> None:
    """ONNX Expand (opset 8) broadcasts both ways, so the IR's 0/-1 ("X's dim") are 1;
    with batch_like, the target's first dim is that tensor's batch, read by Shape."""
    ctx.require(node, 8)
    shape = [1 if d in (0, -1) else int(d) for d in node.attr("shape")]
    like = node.input(1)
    if like:
        rank = ctx.rank(node.outputs[0])
        padded = [1] * rank + shape
        rest = padded[len(padded) - rank + 1:]
        batch = ctx.add("Gather", [ctx.add("Shape", [like])[0], ctx.int64s([0], "axis0")],
                        axis=0)[0]
        target = ctx.add("Concat", [batch, ctx.int64s(rest, "shape")], axis=0)[0]
    else:
        target = ctx.int64s(shape, "shape")
    ctx.add("Expand", [node.inputs[0], target], node.outputs, name=node.name)


@HANDLERS.register("Tile")
def emit_tile(ctx: EmitContext, node: Node) -> None:
    """Repeats as an int64 input (opset 6+)."""
    ctx.add("Tile", [node.inputs[0], ctx.int64s(node.attr("repeats"), "repeats")],
            node.outputs, name=node.name)
