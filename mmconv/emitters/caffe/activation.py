"""Activations: Caffe's ReLU, PReLU, ELU, Sigmoid, TanH, BNLL and Softmax layers.

PReLU with one slope per channel (or one for all) is Caffe's PReLU; other
slopes are ``relu(x) - slope * relu(-x)`` with a Scale layer holding them.
SELU is an ELU scaled by a Power layer (gamma * ELU_alpha(x) is SELU exactly);
LogSoftmax is Softmax then Log; HardSigmoid a Power layer and the Clip
decomposition of :mod:`.elementwise`.  Hardmax has no Caffe form (no handler).
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.emitters.caffe.elementwise import clip_blob, scale_layer
from mmconv.ir.core import Node


@HANDLERS.register("Relu")
def relu(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "ReLU", [ctx.blob(node.inputs[0])])


@HANDLERS.register("LeakyRelu")
def leaky_relu(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "ReLU", [ctx.blob(node.inputs[0])],
              relu_param=pb.ReLUParameter(negative_slope=float(node.attr("alpha"))))


@HANDLERS.register("Sigmoid")
def sigmoid(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "Sigmoid", [ctx.blob(node.inputs[0])])


@HANDLERS.register("Tanh")
def tanh(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "TanH", [ctx.blob(node.inputs[0])])


@HANDLERS.register("Softplus")
def softplus(ctx: EmitContext, node: Node) -> None:
    """Caffe's BNLL ("binomial normal log likelihood") is log(1 + exp(x)): softplus."""
    ctx.final(node, "BNLL", [ctx.blob(node.inputs[0])])


@HANDLERS.register("Elu")
def elu(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "ELU", [ctx.blob(node.inputs[0])],
              elu_param=pb.ELUParameter(alpha=float(node.attr("alpha"))))


@HANDLERS.register("Selu")
def selu(ctx: EmitContext, node: Node) -> None:
    """gamma * ELU_alpha(x): an ELU layer, then a Power layer scaling by gamma."""
    (y,) = ctx.layer("ELU", [ctx.blob(node.inputs[0])], hint="elu",
                     elu_param=pb.ELUParameter(alpha=float(node.attr("alpha"))))
    ctx.power(y, scale=float(node.attr("gamma")), node=node)


@HANDLERS.register("PRelu")
def prelu(ctx: EmitContext, node: Node) -> None:
    """Caffe's PReLU has one slope per channel (axis 1), or one shared slope."""
    x, slope_name = node.inputs
    slope = ctx.need_weight(node, slope_name, "the slope")
    shape = ctx.static_shape(node, x)
    channels = shape[1] if len(shape) > 1 else 1
    if slope.size == 1:
        ctx.final(node, "PReLU", [ctx.blob(x)], blobs=[slope.reshape(1)],
                  prelu_param=pb.PReLUParameter(channel_shared=True))
        return
    # the slope must vary along the channel axis only: [C], [C,1,...] or [1,C,1,...]
    dims = (1,) * (len(shape) - slope.ndim) + slope.shape
    per_channel = (len(dims) == len(shape) and len(shape) > 1 and dims[1] == channels
                   and all(d == 1 for i, d in enumerate(dims) if i != 1))
    if per_channel:
        ctx.final(node, "PReLU", [ctx.blob(x)], blobs=[slope.reshape(channels)])
        return
    if np.broadcast_shapes(slope.shape, shape) != shape:
        raise ctx.unsupported(node, f"slope of shape {list(slope.shape)} broadcasts the input "
                              f"{list(ctx.shape(x))} up; Caffe layers keep their input's shape")
    # other slopes: relu(x) - slope * relu(-x) (one of the two terms is 0: exact)
    bx = ctx.blob(x)
    pos = ctx.layer("ReLU", [bx], hint="pos")[0]
    neg = ctx.layer("ReLU", [ctx.power(bx, scale=-1.0, hint="neg")], hint="relu_neg")[0]
    scaled = scale_layer(ctx, None, neg, shape, -slope.astype(np.float64), None, node,
                         "slope")
    ctx.final(node, "Eltwise", [pos, scaled],
              eltwise_param=pb.EltwiseParameter(operation=pb.EltwiseParameter.SUM))


def _softmax(ctx: EmitContext, node: Node, log: bool) -> None:
    x = node.inputs[0]
    axis = ctx.axis_attr(node)
    param = pb.SoftmaxParameter(axis=axis)
    if not log:
        ctx.final(node, "Softmax", [ctx.blob(x)], softmax_param=param)
        return
    (y,) = ctx.layer("Softmax", [ctx.blob(x)], hint="softmax", softmax_param=param)
    ctx.final(node, "Log", [y])


@HANDLERS.register("Softmax")
def softmax(ctx: EmitContext, node: Node) -> None:
    _softmax(ctx, node, log=False)


@HANDLERS.register("LogSoftmax")
def log_softmax(ctx: EmitContext, node: Node) -> None:
    """Softmax then Log (Caffe has no LogSoftmax): exact unless a probability
    underflows to 0 in float32, i.e. inputs more than ~87 apart along the axis."""
    _softmax(ctx, node, log=True)


@HANDLERS.register("HardSigmoid")
def hard_sigmoid(ctx: EmitContext, node: Node) -> None:
    """max(0, min(1, alpha * x + beta)): a Power layer, then the Clip decomposition."""
    y = ctx.power(ctx.blob(node.inputs[0]), scale=float(node.attr("alpha")),
                  shift=float(node.attr("beta")), hint="affine")
    clip_blob(ctx, node, y, 0.0, 1.0)


@HANDLERS.register("Softsign")
def softsign(ctx: EmitContext, node: Node) -> None:
    """x / (1 + |x|): AbsVal, Power (1 + a)^-1, Eltwise PROD."""
    x = ctx.blob(node.inputs[0])
    (a,) = ctx.layer("AbsVal", [x], hint="abs")
    inv = ctx.power(a, power=-1.0, shift=1.0, hint="inv")
    ctx.final(node, "Eltwise", [x, inv],
              eltwise_param=pb.EltwiseParameter(operation=pb.EltwiseParameter.PROD))


@HANDLERS.register("HardSwish")
def hard_swish(ctx: EmitContext, node: Node) -> None:
    """x * clip(x / 6 + 1/2, 0, 1): a Power layer, the Clip decomposition, Eltwise PROD."""
    x = ctx.blob(node.inputs[0])
    gate = clip_blob(ctx, None, ctx.power(x, scale=1.0 / 6.0, shift=0.5, hint="affine"), 0.0,
                     1.0)
    ctx.final(node, "Eltwise", [x, gate],
              eltwise_param=pb.EltwiseParameter(operation=pb.EltwiseParameter.PROD))


@HANDLERS.register("Mish")
def mish(ctx: EmitContext, node: Node) -> None:
    """x * tanh(softplus(x)): BNLL, TanH, Eltwise PROD."""
    x = ctx.blob(node.inputs[0])
    (sp,) = ctx.layer("BNLL", [x], hint="softplus")
    (t,) = ctx.layer("TanH", [sp], hint="tanh")
    ctx.final(node, "Eltwise", [x, t],
              eltwise_param=pb.EltwiseParameter(operation=pb.EltwiseParameter.PROD))
