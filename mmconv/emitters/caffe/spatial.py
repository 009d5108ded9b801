"""Resize (nearest, integer upscaling) as a depthwise Deconvolution with a kernel of ones.

Caffe has no resize layer that BVLC Caffe and OpenCV both read.  Nearest
upsampling by an integer factor ``s`` (output ``x`` reads input ``x // s``) is
exactly a per-channel transposed convolution with an ``s x s`` kernel of ones
and stride ``s``.  The emitter computes the IR's nearest index of every output
pixel (the op's own coordinate transform and rounding, :mod:`mmconv.ir.ops.spatial`)
and writes that layer when the map is ``x // s`` on both spatial axes; other
resizes (linear, downscaling, fractional factors) are refused.
DepthToSpace/SpaceToDepth have no handler (6-D permutes).
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.ir.core import Node
from mmconv.ir.ops.spatial import nearest_index, resize_scales, source_coordinate


def _nearest_map(node: Node, scale: float, length_in: int, length_out: int) -> list[int]:
    mode = str(node.attr("coordinate_transformation_mode"))
    rounding = str(node.attr("nearest_mode"))
    return [min(max(nearest_index(rounding, source_coordinate(mode, x, scale, length_in,
                                                              length_out)), 0), length_in - 1)
            for x in range(length_out)]


@HANDLERS.register("Resize")
def resize(ctx: EmitContext, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    in_shape, out_shape = ctx.static_shape(node, x), ctx.static_shape(node, y)
    if len(in_shape) != 4 or node.attr("mode") != "nearest":
        raise ctx.unsupported(node, "only nearest resizing of 2-D feature maps has a Caffe "
                              "form (a depthwise Deconvolution)")
    scales = resize_scales(node, ctx.shape(x), ctx.shape(y))
    if in_shape[:2] != out_shape[:2] or scales[:2] != [1.0, 1.0]:
        raise ctx.unsupported(node, "it resizes the batch or channel axis")
    factors = []
    for axis in (2, 3):
        n_in, n_out = in_shape[axis], out_shape[axis]
        s = n_out // n_in
        if s < 1 or n_out != s * n_in or _nearest_map(node, scales[axis], n_in, n_out) != [
                i // s for i in range(n_out)]:
            raise ctx.unsupported(node, f"spatial axis {axis - 2} is not an integer nearest "
                                  f"upscaling ({n_in} -> {n_out})")
        factors.append(s)
    channels = in_shape[1]
    ctx.final(node, "Deconvolution", [ctx.blob(x)],
              blobs=[np.ones((channels, 1, *factors), np.float32)],
              convolution_param=pb.ConvolutionParameter(
                  num_output=channels, bias_term=False, kernel_h=factors[0],
                  kernel_w=factors[1], stride_h=factors[0], stride_w=factors[1],
                  group=channels))
