"""Shape ops: Concat, Flatten, Reshape, Permute (Transpose) and Slice.

Caffe's Slice layer cuts one axis at fixed points into several tops; an IR
Slice (step 1) keeps one piece per sliced axis, so each axis is one Slice
layer whose other pieces are left unused.  Reshape keeps the batch axis
dynamic by writing 0 ("copy this dim") for it.
"""

from __future__ import annotations

import math

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("Concat")
def concat(ctx: EmitContext, node: Node) -> None:
    axis = ctx.axis_attr(node, ctx.rank(node.outputs[0]))
    ctx.final(node, "Concat", [ctx.blob(v) for v in node.inputs if v],
              concat_param=pb.ConcatParameter(axis=axis))


def _reshape(ctx: EmitContext, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    src, dst = ctx.shape(x), ctx.shape(y)
    if any(d is None for d in dst[1:]):
        raise ctx.unsupported(node, f"a dynamic target shape {list(dst)}")
    rest_in, rest_out = src[1:], dst[1:]
    if dst and dst[0] is None:
        same_batch = (src and src[0] is None and None not in rest_in
                      and math.prod(rest_in) == math.prod(rest_out))  # type: ignore[arg-type]
        if not same_batch:
            raise ctx.unsupported(node, f"it reshapes across the batch axis ({list(src)} -> "
                                  f"{list(dst)})")
        dims = [0, *(int(d) for d in rest_out)]  # type: ignore[arg-type]
    elif None in src:
        raise ctx.unsupported(node, f"a static shape {list(dst)} from the dynamic {list(src)}")
    else:
        dims = [int(d) for d in dst]  # type: ignore[arg-type]
    ctx.final(node, "Reshape", [ctx.blob(x)],
              reshape_param=pb.ReshapeParameter(shape=pb.BlobShape(dim=dims)))


@HANDLERS.register("Reshape")
def reshape(ctx: EmitContext, node: Node) -> None:
    _reshape(ctx, node)


@HANDLERS.register("Flatten")
def flatten(ctx: EmitContext, node: Node) -> None:
    """Axis 1 is Caffe's Flatten; other axes a Reshape to the IR's 2-D shape."""
    axis = int(node.attr("axis"))
    if (axis + ctx.rank(node.inputs[0]) if axis < 0 else axis) == 1:
        ctx.final(node, "Flatten", [ctx.blob(node.inputs[0])],
                  flatten_param=pb.FlattenParameter(axis=1))
    else:
        _reshape(ctx, node)


@HANDLERS.register("Transpose")
def transpose(ctx: EmitContext, node: Node) -> None:
    perm = [int(p) for p in node.attr("perm")]
    ctx.final(node, "Permute", [ctx.blob(node.inputs[0])],
              permute_param=pb.PermuteParameter(order=perm))


@HANDLERS.register("Slice")
def slice_(ctx: EmitContext, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    starts = [int(v) for v in node.attr("starts")]
    ends = [int(v) for v in node.attr("ends")]
    axes = [int(v) for v in node.attr("axes")] or list(range(len(starts)))
    steps = [int(v) for v in node.attr("steps")] or [1] * len(starts)
    if any(s != 1 for s in steps):
        raise ctx.unsupported(node, f"steps {steps}; Caffe's Slice cuts contiguous pieces")
    blob = ctx.blob(x)
    shape = list(ctx.shape(x))
    for start, end, axis in sorted(zip(starts, ends, axes, strict=True),
                                   key=lambda t: t[2] % rank):
        axis %= rank
        size = shape[axis]
        if size is None:
            raise ctx.unsupported(node, f"it slices the dynamic axis {axis}")
        lo = min(max(start + size if start < 0 else start, 0), size)
        hi = min(max(end + size if end < 0 else end, 0), size)
        if hi <= lo:
            raise ctx.unsupported(node, "an empty slice")
        blob = ctx.crop(blob, axis, lo, hi - lo, size, hint="slice")
        shape[axis] = hi - lo
    ctx.alias(y, blob)
