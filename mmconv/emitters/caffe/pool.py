"""MaxPool, AveragePool and the global pools as Caffe's Pooling layer.

Caffe pools 2-D blobs with one symmetric pad per axis and rounds the output
size up.  :func:`.windows.fit_axis` finds, per axis, the Caffe pad whose
windows are the IR's (floor- or ceil-mode, asymmetric pads) and the outputs to
keep; the surplus is cut by Slice layers.  Caffe's average pool divides each
window by its size cut at the end of the padded input (padding counted); the
fit prefers a pad for which that is the IR's divisor on every kept window, and
otherwise a Scale layer multiplies each output by Caffe's divisor over the
IR's (a constant per position), which makes excluded padding and asymmetric
pads exact too.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.emitters.caffe.windows import AxisFit, caffe_pool_divisor, fit_axis
from mmconv.ir.core import Node

MAX, AVE = pb.PoolingParameter.MAX, pb.PoolingParameter.AVE


def _ints(node: Node, attr: str, n: int, default: int) -> list[int]:
    values = [int(v) for v in node.attr(attr)]
    return values if values else [default] * n


@HANDLERS.register("MaxPool", "AveragePool")
def pool(ctx: EmitContext, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    kernel = [int(k) for k in node.attr("kernel_shape")]
    if len(kernel) != 2 or ctx.rank(x) != 4:
        raise ctx.unsupported(node, f"{len(kernel)}-D pooling; Caffe pools 2-D blobs only")
    if any(d != 1 for d in _ints(node, "dilations", 2, 1)):
        raise ctx.unsupported(node, "dilated pooling; Caffe's Pooling has no dilation")
    strides = _ints(node, "strides", 2, 1)
    pads = _ints(node, "pads", 4, 0)
    in_shape = ctx.static_shape(node, x)[2:]
    out_shape = ctx.static_shape(node, y)[2:]
    average = node.op == "AveragePool"
    include_pad = average and bool(node.attr("count_include_pad"))
    fits: list[AxisFit] = []
    #: per axis, Caffe's divisor over the IR's for each kept window (average pools)
    ratios: list[np.ndarray] = []
    for axis in range(2):
        size, k, s, pb_, pe = in_shape[axis], kernel[axis], strides[axis], pads[axis], \
            pads[axis + 2]

        def divisor(start: int, size: int = size, k: int = k, pe: int = pe) -> int:
            if include_pad:
                return min(start + k, size + pe) - start
            return min(start + k, size) - max(start, 0)

        fit = fit_axis(size, k, s, pb_, out_shape[axis], pool=True,
                       divisor=divisor if average else None, max_pad=k - 1)
        if fit is None and average:  # same windows, other divisors: corrected below
            fit = fit_axis(size, k, s, pb_, out_shape[axis], pool=True, max_pad=k - 1)
        if fit is None:
            raise ctx.unsupported(node, f"no Caffe pad (< kernel) reproduces its windows on "
                                  f"spatial axis {axis} (size {size}, kernel {k}, stride {s}, "
                                  f"pads {pb_}/{pe})")
        fits.append(fit)
        if average:
            starts = [-pb_ + i * s for i in range(fit.out)]
            ratios.append(np.array([caffe_pool_divisor(t, size, k, fit.pad) / divisor(t)
                                    for t in starts]))
    param = pb.PoolingParameter(pool=AVE if average else MAX, kernel_h=kernel[0],
                                kernel_w=kernel[1], stride_h=strides[0], stride_w=strides[1],
                                pad_h=fits[0].pad, pad_w=fits[1].pad)
    correct = bool(ratios) and any((r != 1.0).any() for r in ratios)
    if all(f.crop == 0 and f.out == f.size for f in fits) and not correct:
        ctx.final(node, "Pooling", [ctx.blob(x)], pooling_param=param)
        return
    (pooled,) = ctx.layer("Pooling", [ctx.blob(x)], hint="pool", pooling_param=param)
    for axis, fit in enumerate(fits):
        pooled = ctx.crop(pooled, axis + 2, fit.crop, fit.out, fit.size)
    if correct:
        # Caffe's mean of each window times (its divisor / the IR's): the IR's mean
        ctx.final(node, "Scale", [pooled], blobs=[np.outer(ratios[0], ratios[1])],
                  scale_param=pb.ScaleParameter(axis=2, num_axes=2))
    else:
        ctx.alias(y, pooled)


@HANDLERS.register("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx: EmitContext, node: Node) -> None:
    if ctx.rank(node.inputs[0]) != 4:
        raise ctx.unsupported(node, "Caffe pools 2-D blobs only")
    ctx.final(node, "Pooling", [ctx.blob(node.inputs[0])],
              pooling_param=pb.PoolingParameter(
                  pool=AVE if node.op == "GlobalAveragePool" else MAX, global_pooling=True))
