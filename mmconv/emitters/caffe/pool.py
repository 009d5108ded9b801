"""MaxPool, AveragePool and the global pools as Caffe's Pooling layer.

Caffe pools 2-D blobs (1-D pools run on ``[N, C, L, 1]``) with one symmetric
pad per axis and rounds the output size up.  :func:`.windows.fit_axis` finds,
per axis, the Caffe pad whose windows are the IR's (floor- or ceil-mode,
asymmetric pads) and the outputs to keep; the surplus is cut by Slice layers.
Caffe's average pool divides each window by its size cut at the end of the
padded input (padding counted); the fit prefers a pad for which that is the
IR's divisor on every kept window, and otherwise a Scale layer multiplies each
output by Caffe's divisor over the IR's (a constant per position), which makes
excluded padding and asymmetric pads exact too.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.emitters.caffe.conv import finish, window
from mmconv.emitters.caffe.windows import AxisFit, caffe_pool_divisor, fit_axis
from mmconv.ir.core import Node

MAX, AVE = pb.PoolingParameter.MAX, pb.PoolingParameter.AVE


@HANDLERS.register("MaxPool", "AveragePool")
def pool(ctx: EmitContext, node: Node) -> None:
    win = window(ctx, node)
    if any(d != 1 for d in win.dilations):
        raise ctx.unsupported(node, "dilated pooling; Caffe's Pooling has no dilation")
    kernel = [int(k) for k in node.attr("kernel_shape")] + ([1] if win.one_d else [])
    average = node.op == "AveragePool"
    include_pad = average and bool(node.attr("count_include_pad"))
    fits: list[AxisFit] = []
    #: per axis, Caffe's divisor over the IR's for each kept window (average pools)
    ratios: list[np.ndarray] = []
    for axis in range(2):
        size, k, s, pad_b, pad_e = (win.in_size[axis], kernel[axis], win.strides[axis],
                                    win.pads[axis], win.pads[axis + 2])

        def divisor(start: int, size: int = size, k: int = k, pad_e: int = pad_e) -> int:
            if include_pad:
                return min(start + k, size + pad_e) - start
            return min(start + k, size) - max(start, 0)

        out = win.out_size[axis]
        fit = fit_axis(size, k, s, pad_b, out, pool=True,
                       divisor=divisor if average else None, max_pad=k - 1)
        if fit is None and average:  # same windows, other divisors: corrected below
            fit = fit_axis(size, k, s, pad_b, out, pool=True, max_pad=k - 1)
        if fit is None:
            raise ctx.unsupported(node, f"no Caffe pad (< kernel) reproduces its windows on "
                                  f"spatial axis {axis} (size {size}, kernel {k}, stride {s}, "
                                  f"pads {pad_b}/{pad_e})")
        fits.append(fit)
        if average:
            ratios.append(np.array([caffe_pool_divisor(-pad_b + i * s, size, k, fit.pad)
                                    / divisor(-pad_b + i * s) for i in range(out)]))
    param = pb.PoolingParameter(pool=AVE if average else MAX, kernel_h=kernel[0],
                                kernel_w=kernel[1], stride_h=win.strides[0],
                                stride_w=win.strides[1], pad_h=fits[0].pad, pad_w=fits[1].pad)
    if not (ratios and any((r != 1.0).any() for r in ratios)):
        finish(ctx, node, "Pooling", win, [(f.crop, f.out) for f in fits],
               [f.size for f in fits], pooling_param=param)
        return
    # Caffe's mean of each window times (its divisor / the IR's): the IR's mean
    (pooled,) = ctx.layer("Pooling", [win.blob], hint="pool", pooling_param=param)
    for axis, fit in enumerate(fits):
        pooled = ctx.crop(pooled, axis + 2, fit.crop, fit.out, fit.size)
    scale = pb.ScaleParameter(axis=2, num_axes=2)
    factors = np.outer(ratios[0], ratios[1])
    if win.one_d:
        (scaled,) = ctx.layer("Scale", [pooled], hint="divisor", blobs=[factors],
                              scale_param=scale)
        ctx.from_2d(node, scaled)
    else:
        ctx.final(node, "Scale", [pooled], blobs=[factors], scale_param=scale)


@HANDLERS.register("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx: EmitContext, node: Node) -> None:
    if ctx.rank(node.inputs[0]) != 4:
        raise ctx.unsupported(node, "Caffe pools 2-D blobs only")
    ctx.final(node, "Pooling", [ctx.blob(node.inputs[0])],
              pooling_param=pb.PoolingParameter(
                  pool=AVE if node.op == "GlobalAveragePool" else MAX, global_pooling=True))
