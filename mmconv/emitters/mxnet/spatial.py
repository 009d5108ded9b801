"""Resize, DepthToSpace and SpaceToDepth.

- DepthToSpace (DCR) and SpaceToDepth: MXNet's ``depth_to_space`` /
  ``space_to_depth``, which move channels in the IR's (ONNX DCR) order; CRD
  (PyTorch's pixel_shuffle) is a ``Reshape``-``transpose``-``Reshape``.
- Resize: every resized axis is a product with a constant interpolation
  matrix (``dot`` over the last axis; other axes moved there and back), built
  at emit time from the IR's own per-axis map
  (:func:`mmconv.ir.ops.spatial.resize_axis_map`), so every coordinate mode and
  nearest rounding of the IR is reproduced exactly; MXNet's ``UpSampling`` and
  ``BilinearResize2D`` know only some of them.  Resizing a dynamic axis is refused.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.ir.core import Node
from mmconv.ir.ops.spatial import resize_axis_map, resized_axes


@HANDLERS.register("DepthToSpace")
def emit_depth_to_space(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    b = int(node.attr("blocksize"))
    if node.attr("mode") != "CRD":
        ctx.emit_op(node, "depth_to_space", [ctx.input(x)], block_size=b)
        return
    _, c, h, w = ctx.shape(x)
    if None in (c, h, w):
        raise ctx.unsupported(node, "CRD depth-to-space of dynamic C/H/W")
    c, h, w = int(c), int(h), int(w)  # type: ignore[arg-type]
    split = ctx.op("Reshape", [ctx.input(x)], "split", shape=(0, c // (b * b), b, b, h, w))
    moved = ctx.op("transpose", [split], "interleave", axes=(0, 1, 4, 2, 5, 3))
    ctx.emit_op(node, "Reshape", [moved], shape=(0, c // (b * b), h * b, w * b))


@HANDLERS.register("SpaceToDepth")
def emit_space_to_depth(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, "space_to_depth", [ctx.input(node.inputs[0])],
                block_size=int(node.attr("blocksize")))


@HANDLERS.register("Resize")
def emit_resize(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    in_shape, out_shape = ctx.shape(x), ctx.shape(node.outputs[0])
    axes, dynamic = resized_axes(node, in_shape, out_shape)
    if dynamic:
        raise ctx.unsupported(node, f"resizing dynamic axes {dynamic}")
    rank = len(in_shape)
    data = ctx.input(x)
    if not axes:
        ctx.alias(node, data)
        return
    dtype = ctx.mx_dtype(ctx.dtype(x))
    for k, (axis, n_in, n_out, scale) in enumerate(axes):
        i0, i1, w = resize_axis_map(node, n_in, n_out, scale)
        matrix = np.zeros((n_in, n_out))
        for o in range(n_out):
            matrix[i0[o], o] += 1.0 - w[o]
            matrix[i1[o], o] += w[o]
        weights = ctx.new_param(matrix.astype(dtype), f"axis{axis}")
        last = k == len(axes) - 1
        if axis == rank - 1:
            data = (ctx.emit_op(node, "dot", [data, weights]) if last
                    else ctx.op("dot", [data, weights], f"resize{axis}"))
            continue
        perm = [*range(axis), *range(axis + 1, rank), axis]
        inverse = tuple(perm.index(i) for i in range(rank))
        moved = ctx.op("transpose", [data], f"axis{axis}_last", axes=tuple(perm))
        mixed = ctx.op("dot", [moved, weights], f"resize{axis}")
        data = (ctx.emit_op(node, "transpose", [mixed], axes=inverse) if last
                else ctx.op("transpose", [mixed], f"axis{axis}_back", axes=inverse))
