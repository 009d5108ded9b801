"""Resize, DepthToSpace, SpaceToDepth on the channels-last tensor.

Resize is ``layers.UpSampling2D`` where that layer samples exactly as the IR
node does (integer upscales; nearest taking pixel o // s, or bilinear with half
pixel centres, which is what TensorFlow's resize does); any other Resize is
written per axis as ``ops.take`` of the two neighbours and a blend, with indices
and weights computed at emit time from ONNX's formulas (shared with the other
emitters), in whatever layout X is held.  DepthToSpace and SpaceToDepth are
their reshape-transpose-reshape definitions on the NHWC tensor.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, channels_last
from mmconv.ir.core import Node
from mmconv.ir.ops.spatial import resize_axis_map, resized_axes


def _upsampling(node: Node, axes: list[tuple[int, int, int, float]], rank: int) -> str | None:
    """The UpSampling2D interpolation with the node's sampling, or None."""
    if rank != 4 or not axes or any(a < 2 for a, *_ in axes):
        return None
    if any(m % n or s != m // n for _, n, m, s in axes):
        return None
    if node.attr("mode") == "nearest":
        ok = all(resize_axis_map(node, n, m, s)[0] == [o // (m // n) for o in range(m)]
                 for _, n, m, s in axes)
        return "nearest" if ok else None
    coord = node.attr("coordinate_transformation_mode")
    return "bilinear" if coord in ("half_pixel", "pytorch_half_pixel") else None


@HANDLERS.register("Resize")
def emit_resize(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    axes, dynamic = resized_axes(node, ctx.shape(x), ctx.shape(node.outputs[0]))
    if dynamic:
        raise ctx.unsupported(node, f"axis {dynamic[0]} is dynamic (the batch) and resized")
    rank = ctx.rank(x)
    how = _upsampling(node, axes, rank)
    if how is not None:
        size = {a: m // n for a, n, m, _ in axes}
        ctx.define(node, f"layers.UpSampling2D(size=({size.get(2, 1)}, {size.get(3, 1)}), "
                         f"interpolation={literal(how)}, name={literal(ctx.out(node))}"
                         f"{ctx.dtype_kw(x)})({ctx.cl(x)})", channels_last(rank))
        return
    layout = ctx.perm_of(x)
    expr = ctx.var(x)
    dtype = np.dtype(ctx.dtype(x))
    for n, (axis, n_in, n_out, scale) in enumerate(axes):
        if n:  # one line per axis, so no expression is written twice
            step = ctx.ident(f"{node.outputs[0]}_axis{axes[n - 1][0]}")
            ctx.line(f"{step} = {expr}")
            expr = step
        k = layout.index(axis)
        i0, i1, w = resize_axis_map(node, n_in, n_out, scale)
        first = f"ops.take({expr}, {ctx.const(np.asarray(i0, np.int32), 'index')}, axis={k})"
        if i1 == i0:
            expr = first
            continue
        low = ctx.ident(f"{node.outputs[0]}_axis{axis}_low")
        ctx.line(f"{low} = {first}")
        second = f"ops.take({expr}, {ctx.const(np.asarray(i1, np.int32), 'index')}, axis={k})"
        shape = [1] * rank
        shape[k] = n_out
        weight = ctx.const(np.asarray(w, dtype).reshape(shape), "weight")
        expr = f"ops.add({low}, ops.multiply(ops.subtract({second}, {low}), {weight}))"
    ctx.define(node, expr, layout)


def _nhwc(ctx: EmitContext, node: Node) -> tuple[int, int, int, int]:
    h, w, c = (int(d) for d in (ctx.static(node, node.inputs[0])[i] for i in (1, 2, 0)))
    return h, w, c, int(node.attr("blocksize"))


@HANDLERS.register("DepthToSpace")
def emit_depth_to_space(ctx: EmitContext, node: Node) -> None:
    """NHWC: the channel index splits as (i, j, c) for DCR, (c, i, j) for CRD."""
    h, w, c, b = _nhwc(ctx, node)
    co = c // (b * b)
    x = ctx.cl(node.inputs[0])
    if node.attr("mode") == "DCR":
        split, perm = (-1, h, w, b, b, co), (0, 1, 3, 2, 4, 5)
    else:
        split, perm = (-1, h, w, co, b, b), (0, 1, 4, 2, 5, 3)
    ctx.define(node, f"ops.reshape(ops.transpose(ops.reshape({x}, {literal(split)}), "
                     f"{literal(perm)}), {literal((-1, h * b, w * b, co))})",
               channels_last(4))


@HANDLERS.register("SpaceToDepth")
def emit_space_to_depth(ctx: EmitContext, node: Node) -> None:
    """NHWC: blocks of b x b pixels become channels (i*b + j) * C + c, as ONNX orders them."""
    h, w, c, b = _nhwc(ctx, node)
    x = ctx.cl(node.inputs[0])
    ctx.define(node, f"ops.reshape(ops.transpose(ops.reshape({x}, "
                     f"{literal((-1, h // b, b, w // b, b, c))}), {literal((0, 1, 3, 2, 4, 5))})"
                     f", {literal((-1, h // b, w // b, b * b * c))})", channels_last(4))
