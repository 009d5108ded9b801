"""Activations as MXNet ``Activation``/``LeakyReLU``/``softmax`` (one node where MXNet has one).

- Relu, Sigmoid, Tanh, Softplus: ``Activation`` (``softrelu`` is softplus).
- Elu, LeakyRelu, PRelu: ``LeakyReLU`` (``elu``, ``leaky``, ``prelu``); a PRelu
  slope that is one value per channel (``[C]``, CNTK's ``[C, 1, 1]``) or a
  single value is MXNet's ``gamma``; any other slope shape is spelled
  ``max(x, 0) + slope * min(x, 0)``.
- Selu: ``LeakyReLU(act_type="selu")`` has fixed constants; other alpha/gamma
  are ``gamma * elu(x, alpha)``.
- HardSigmoid: ``hard_sigmoid``.  Hardmax: ``one_hot(argmax)`` along the axis.
- Softsign: ``Activation(softsign)``; Gelu: ``LeakyReLU(gelu)`` (erf form; the
  tanh approximation spelled out); HardSwish: ``x * hard_sigmoid(x, 1/6, 1/2)``;
  Mish: ``x * tanh(softrelu(x))``.
- Softmax, LogSoftmax: ``softmax``/``log_softmax`` with ``axis`` (one axis,
  the IR's opset-13 meaning).
"""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_ACTIVATION = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softrelu",
               "Softsign": "softsign"}
#: MXNet's SELU constants (src/operator/leaky_relu-inl.h).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_GAMMA = 1.0507009873554804934193349852946


@HANDLERS.register(*_ACTIVATION)
def emit_activation(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, "Activation", [ctx.input(node.inputs[0])], act_type=_ACTIVATION[node.op])


@HANDLERS.register("Elu")
def emit_elu(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, "LeakyReLU", [ctx.input(node.inputs[0])], act_type="elu",
                slope=float(node.attr("alpha")))


@HANDLERS.register("LeakyRelu")
def emit_leaky_relu(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, "LeakyReLU", [ctx.input(node.inputs[0])], act_type="leaky",
                slope=float(node.attr("alpha")))


@HANDLERS.register("Selu")
def emit_selu(ctx: EmitContext, node: Node) -> None:
    x = ctx.input(node.inputs[0])
    alpha, gamma = float(node.attr("alpha")), float(node.attr("gamma"))
    if math.isclose(alpha, SELU_ALPHA, rel_tol=1e-6) and math.isclose(gamma, SELU_GAMMA,
                                                                     rel_tol=1e-6):
        ctx.emit_op(node, "LeakyReLU", [x], act_type="selu")
        return
    elu = ctx.op("LeakyReLU", [x], "elu", act_type="elu", slope=alpha)
    ctx.emit_op(node, "_mul_scalar", [elu], scalar=gamma)


@HANDLERS.register("PRelu")
def emit_prelu(ctx: EmitContext, node: Node) -> None:
    x, slope = node.inputs
    shape, xshape = ctx.shape(slope), ctx.shape(x)
    size = int(np.prod(shape)) if None not in shape else -1  # type: ignore[arg-type]
    # numpy broadcasting aligns the slope's trailing axes with X's
    padded = (1,) * (len(xshape) - len(shape)) + tuple(shape)
    per_channel = (ctx.is_weight(slope) and len(xshape) >= 2 and len(padded) == len(xshape)
                   and padded[1] == xshape[1]
                   and all(d == 1 for i, d in enumerate(padded) if i != 1))
    if ctx.is_weight(slope) and size == 1:
        gamma = ctx.param(slope, lambda a: a.reshape(1), "scalar")
        ctx.emit_op(node, "LeakyReLU", [ctx.input(x), gamma], act_type="prelu")
    elif per_channel:
        gamma = ctx.param(slope, lambda a: a.reshape(-1), "flat")
        ctx.emit_op(node, "LeakyReLU", [ctx.input(x), gamma], act_type="prelu")
    else:
        rank = max(len(shape), len(xshape))
        xe = ctx.input(x)
        pos = ctx.op("relu", [xe], "pos")
        neg = ctx.op("_minimum_scalar", [xe], "neg", scalar=0.0)
        scaled = ctx.op("broadcast_mul", [neg, ctx.full_rank(slope, rank)], "scaled")
        ctx.emit_op(node, "broadcast_add", [pos, scaled])


@HANDLERS.register("HardSigmoid")
def emit_hard_sigmoid(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, "hard_sigmoid", [ctx.input(node.inputs[0])],
                alpha=float(node.attr("alpha")), beta=float(node.attr("beta")))


def axis_of(ctx: EmitContext, node: Node, name: str) -> int:
    """The node's ``axis`` made non-negative for ``name``'s rank."""
    rank = ctx.rank(name)
    axis = int(node.attr("axis"))
    if not -rank <= axis < rank:
        raise ctx.unsupported(node, f"axis {axis} out of range for rank {rank}")
    return axis % rank


@HANDLERS.register("Softmax", "LogSoftmax")
def emit_softmax(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    op = "softmax" if node.op == "Softmax" else "log_softmax"
    ctx.emit_op(node, op, [ctx.input(x)], axis=axis_of(ctx, node, x))


@HANDLERS.register("Hardmax")
def emit_hardmax(ctx: EmitContext, node: Node) -> None:
    """one_hot(argmax) appends the class axis last; a transpose puts it back in place."""
    x = node.inputs[0]
    axis = axis_of(ctx, node, x)
    rank = ctx.rank(x)
    depth = ctx.shape(x)[axis]
    if depth is None:
        raise ctx.unsupported(node, "hardmax along a dynamic axis")
    dtype = ctx.mx_dtype(ctx.dtype(node.outputs[0]))
    index = ctx.op("argmax", [ctx.input(x)], "argmax", axis=axis)
    if axis == rank - 1:
        ctx.emit_op(node, "one_hot", [index], depth=int(depth), dtype=dtype)
        return
    hot = ctx.op("one_hot", [index], "one_hot", depth=int(depth), dtype=dtype)
    perm = [*range(axis), rank - 1, *range(axis, rank - 1)]
    ctx.emit_op(node, "transpose", [hot], axes=tuple(perm))


@HANDLERS.register("Gelu")
def emit_gelu(ctx: EmitContext, node: Node) -> None:
    """``LeakyReLU(act_type="gelu")`` is MXNet's erf form; the tanh approximation is
    spelled out: x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))."""
    x = ctx.input(node.inputs[0])
    if node.attr("approximate") != "tanh":
        ctx.emit_op(node, "LeakyReLU", [x], act_type="gelu")
        return
    cube = ctx.op("_mul_scalar", [ctx.op("_power_scalar", [x], "cube", scalar=3.0)],
                  "cube_scaled", scalar=0.044715)
    inner = ctx.op("_mul_scalar", [ctx.op("elemwise_add", [x, cube], "inner")], "scaled",
                   scalar=math.sqrt(2.0 / math.pi))
    gate = ctx.op("_plus_scalar", [ctx.op("tanh", [inner], "tanh")], "gate", scalar=1.0)
    half = ctx.op("_mul_scalar", [x], "half", scalar=0.5)
    ctx.emit_op(node, "elemwise_mul", [half, gate])


@HANDLERS.register("HardSwish")
def emit_hard_swish(ctx: EmitContext, node: Node) -> None:
    x = ctx.input(node.inputs[0])
    gate = ctx.op("hard_sigmoid", [x], "gate", alpha=1.0 / 6.0, beta=0.5)
    ctx.emit_op(node, "elemwise_mul", [x, gate])


@HANDLERS.register("Mish")
def emit_mish(ctx: EmitContext, node: Node) -> None:
    x = ctx.input(node.inputs[0])
    gate = ctx.op("tanh", [ctx.op("Activation", [x], "softplus", act_type="softrelu")], "gate")
    ctx.emit_op(node, "elemwise_mul", [x, gate])
