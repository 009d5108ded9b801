"""ReduceMean, ReduceSum, ReduceMax and ReduceMin over contiguous non-batch axes, as pooling.

BVLC Caffe's Reduction layer only reduces all trailing axes, and OpenCV does
not read it; a Pooling layer does the job: the input is viewed (Reshape) as
``[N, before, reduced, after]``, pooled with a ``reduced x 1`` window, and
viewed back as the IR output.  A mean is an AVE pool, a sum the mean times the
count (Power), a max a MAX pool, a min ``-max(-x)``, an L2 norm
``sqrt(count * mean(x^2))``.  Reductions over the
batch axis or over axes with others between them are refused, as are
ReduceProd and ReduceLogSumExp (no such pooling).
"""

from __future__ import annotations

import math

from mmconv.emitters.base import norm_axis
from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

MAX, AVE = pb.PoolingParameter.MAX, pb.PoolingParameter.AVE


@HANDLERS.register("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2")
def reduce(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    shape = ctx.static_shape(node, x)
    rank = len(shape)
    axes = sorted({norm_axis(int(a), rank) for a in node.attr("axes")}) or list(range(rank))
    if 0 in axes:
        raise ctx.unsupported(node, "it reduces over the batch axis; Caffe layers work per "
                              "sample")
    lo, hi = axes[0], axes[-1] + 1
    if axes != list(range(lo, hi)):
        raise ctx.unsupported(node, f"axes {axes} are not contiguous")
    view = [0, math.prod(shape[1:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:])]
    blob = ctx.blob(x)
    if node.op == "ReduceMin":
        blob = ctx.power(blob, scale=-1.0, hint="neg")
    elif node.op == "ReduceL2":
        blob = ctx.power(blob, power=2.0, hint="square")
    (blob,) = ctx.layer("Reshape", [blob], hint="view", reshape_param=pb.ReshapeParameter(
        shape=pb.BlobShape(dim=view)))
    (blob,) = ctx.layer("Pooling", [blob], hint="reduce", pooling_param=pb.PoolingParameter(
        pool=MAX if node.op in ("ReduceMax", "ReduceMin") else AVE, kernel_h=view[2],
        kernel_w=1, stride_h=1, stride_w=1))
    if node.op == "ReduceSum":
        blob = ctx.power(blob, scale=float(view[2]), hint="sum")
    elif node.op == "ReduceL2":  # sqrt(count * mean(x^2))
        blob = ctx.power(blob, power=0.5, scale=float(view[2]), hint="norm")
    elif node.op == "ReduceMin":
        blob = ctx.power(blob, scale=-1.0, hint="min")
    out = ctx.static_shape(node, node.outputs[0])
    ctx.final(node, "Reshape", [blob], reshape_param=pb.ReshapeParameter(
        shape=pb.BlobShape(dim=[0, *out[1:]])))
