"""Shape ops: concat, reshape (to the IR's static output shape), transpose, pad,
slice_by_index."""

from __future__ import annotations

import numpy as np

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

#: IR Pad modes -> MIL pad modes
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


@HANDLERS.register("Concat")
def emit_concat(ctx: EmitContext, node: Node) -> None:
    rank = ctx.rank(node.outputs[0])
    ctx.call("concat", node.outputs[0], values=[ctx.var(v) for v in node.inputs],
             axis=ctx.axis_attr(node, rank))


@HANDLERS.register("Reshape", "Flatten")
def emit_reshape(ctx: EmitContext, node: Node) -> None:
    """The output shape is static once the batch is fixed: written out in full."""
    ctx.call("reshape", node.outputs[0], x=ctx.var(node.inputs[0]),
             shape=list(ctx.static_shape(node.outputs[0])))


@HANDLERS.register("Transpose")
def emit_transpose(ctx: EmitContext, node: Node) -> None:
    ctx.call("transpose", node.outputs[0], x=ctx.var(node.inputs[0]),
             perm=[int(p) for p in node.attr("perm")])


@HANDLERS.register("Pad")
def emit_pad(ctx: EmitContext, node: Node) -> None:
    """MIL pad lists (before, after) per axis; the IR all befores, then all afters."""
    pads = [int(p) for p in node.attr("pads")]
    rank = ctx.rank(node.inputs[0])
    mode = _PAD_MODES.get(str(node.attr("mode")))
    if mode is None:
        raise ctx.unsupported(node, f"pad mode {node.attr('mode')!r}")
    if any(p < 0 for p in pads):
        raise ctx.unsupported(node, "negative pads (cropping); Core ML's pad only adds")
    mil = [p for i in range(rank) for p in (pads[i], pads[rank + i])]
    # MIL pads the last N axes: leading axes without padding are left out (reflect and
    # replicate accept padding of the last axes only on some Core ML versions).
    while len(mil) > 2 and mil[0] == 0 and mil[1] == 0:
        mil = mil[2:]
    ctx.call("pad", node.outputs[0], x=ctx.var(node.inputs[0]), pad=mil, mode=mode,
             constant_val=float(node.attr("value")) if mode == "constant" else None)


@HANDLERS.register("Slice")
def emit_slice(ctx: EmitContext, node: Node) -> None:
    """slice_by_index over every axis, begins/ends clamped as Python slicing does; an
    end running through index 0 backwards (stop -1) uses end_mask."""
    shape = ctx.static_shape(node.inputs[0])
    rank = len(shape)
    starts, ends = list(node.attr("starts")), list(node.attr("ends"))
    axes = [a + rank if a < 0 else a for a in node.attr("axes")] or list(range(len(starts)))
    steps = list(node.attr("steps")) or [1] * len(starts)
    begin, end, stride = [0] * rank, list(shape), [1] * rank
    begin_mask, end_mask = [False] * rank, [False] * rank
    for axis, s, e, st in zip(axes, starts, ends, steps, strict=True):
        if st == 0:
            raise ctx.unsupported(node, "slice step 0")
        lo, hi, step = slice(int(s), int(e), int(st)).indices(shape[axis])
        begin[axis], end[axis], stride[axis] = lo, hi, step
        if hi < 0:  # backwards through index 0
            end[axis], end_mask[axis] = 0, True
    ctx.call("slice_by_index", node.outputs[0], x=ctx.var(node.inputs[0]), begin=begin,
             end=end, stride=stride, begin_mask=begin_mask, end_mask=end_mask)


@HANDLERS.register("Tile")
def emit_tile(ctx: EmitContext, node: Node) -> None:
    ctx.call("tile", node.outputs[0], x=ctx.var(node.inputs[0]),
             reps=[int(r) for r in node.attr("repeats")])


@HANDLERS.register("Expand")
def emit_expand(ctx: EmitContext, node: Node) -> None:
    """tile to the (static) output shape; a lower-rank X first gets leading 1 axes."""
    x = ctx.var(node.inputs[0])
    in_shape = ctx.static_shape(node.inputs[0])
    out_shape = ctx.static_shape(node.outputs[0])
    if len(in_shape) < len(out_shape):
        in_shape = (1,) * (len(out_shape) - len(in_shape)) + in_shape
        x = ctx.call("reshape", hint="ranked", x=x, shape=list(in_shape))
    reps = [o // i if i == 1 else 1 for i, o in zip(in_shape, out_shape, strict=True)]
    ctx.call("tile", node.outputs[0], x=x, reps=reps)


@HANDLERS.register("Gather")
def emit_gather(ctx: EmitContext, node: Node) -> None:
    """MIL gather along the axis; constant negative indices are made positive here."""
    x, indices = node.inputs[0], node.inputs[1]
    axis = ctx.axis_attr(node, ctx.rank(x))
    array = ctx.weight(indices)
    if array is not None:
        size = ctx.static_shape(x)[axis]
        fixed = np.where(array < 0, array + size, array).astype(np.int32)
        idx = ctx.const(fixed, "indices") if not np.array_equal(fixed, array) else ctx.var(indices)
    else:
        idx = ctx.var(indices)
    ctx.call("gather", node.outputs[0], x=ctx.var(x), indices=idx, axis=axis)
