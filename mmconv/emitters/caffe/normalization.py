"""BatchNormalization as Caffe's BatchNorm + Scale pair, and LRN.

Caffe splits inference batch normalization in two layers, as every Caffe
model does: BatchNorm (blobs: mean, variance and the moving-average factor,
here 1) normalizes, Scale (gamma, beta) scales and shifts.  A per-element BN
(``spatial=False``, CNTK's default) folds into one Scale layer whose blobs
cover the whole sample.  LRN's bias ``k`` is written as ``k = 1`` with alpha
divided by ``k`` and a Power layer scaling by ``k ** -beta`` (the same
function): OpenCV ignores Caffe's ``k``.  LayerNormalization has no Caffe layer (no handler).
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.emitters.caffe.elementwise import scale_layer
from mmconv.ir.core import Node


@HANDLERS.register("BatchNormalization")
def batch_norm(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    gamma, beta, mean, var = (ctx.need_weight(node, p, f"the {what}").astype(np.float64)
                              for p, what in zip(node.inputs[1:5],
                                                 ("scale", "bias", "mean", "variance"),
                                                 strict=True))
    eps = float(node.attr("epsilon"))
    shape = ctx.static_shape(node, x)
    if len(shape) < 2:
        raise ctx.unsupported(node, f"batch normalization of {list(ctx.shape(x))}")
    if not node.attr("spatial"):
        inv = gamma / np.sqrt(var + eps)
        scale_layer(ctx, node, ctx.blob(x), shape, inv.reshape(shape[1:]),
                    (beta - mean * inv).reshape(shape[1:]))
        return
    channels = shape[1]
    (normed,) = ctx.layer(
        "BatchNorm", [ctx.blob(x)], hint="bn",
        blobs=[mean.reshape(channels), var.reshape(channels), np.ones(1)],
        batch_norm_param=pb.BatchNormParameter(use_global_stats=True, eps=eps))
    ctx.final(node, "Scale", [normed], blobs=[gamma.reshape(channels), beta.reshape(channels)],
              scale_param=pb.ScaleParameter(axis=1, num_axes=1, bias_term=True))


@HANDLERS.register("LRN")
def lrn(ctx: EmitContext, node: Node) -> None:
    size = int(node.attr("size"))
    if size % 2 == 0:
        raise ctx.unsupported(node, f"LRN size {size} is even; Caffe's window is centred "
                              "(odd sizes only)")
    if ctx.rank(node.inputs[0]) != 4:
        raise ctx.unsupported(node, "Caffe's LRN works on 4-D blobs only")
    alpha, beta, k = float(node.attr("alpha")), float(node.attr("beta")), float(node.attr("bias"))
    if k <= 0:
        raise ctx.unsupported(node, f"LRN bias {k} <= 0")
    # x / (k + a/n S)^b = k^-b * x / (1 + (a/k)/n S)^b: LRN with k = 1 (OpenCV reads no
    # k from a Caffe file) and a Power layer for the constant factor
    param = pb.LRNParameter(local_size=size, alpha=alpha / k, beta=beta)
    if k == 1.0:
        ctx.final(node, "LRN", [ctx.blob(node.inputs[0])], lrn_param=param)
        return
    (y,) = ctx.layer("LRN", [ctx.blob(node.inputs[0])], hint="lrn", lrn_param=param)
    ctx.power(y, scale=k ** -beta, node=node)
