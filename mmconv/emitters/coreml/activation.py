"""Activations: MIL has most of them as one op; the rest are short compositions."""

from __future__ import annotations

import numpy as np

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_ONE_OP = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus"}


@HANDLERS.register(*_ONE_OP)
def emit_plain(ctx: EmitContext, node: Node) -> None:
    ctx.call(_ONE_OP[node.op], node.outputs[0], x=ctx.var(node.inputs[0]))


@HANDLERS.register("Elu")
def emit_elu(ctx: EmitContext, node: Node) -> None:
    ctx.call("elu", node.outputs[0], x=ctx.var(node.inputs[0]), alpha=float(node.attr("alpha")))


@HANDLERS.register("LeakyRelu")
def emit_leaky_relu(ctx: EmitContext, node: Node) -> None:
    ctx.call("leaky_relu", node.outputs[0], x=ctx.var(node.inputs[0]),
             alpha=float(node.attr("alpha")))


@HANDLERS.register("HardSigmoid")
def emit_hard_sigmoid(ctx: EmitContext, node: Node) -> None:
    """MIL's sigmoid_hard is max(0, min(1, alpha * x + beta)), the IR's formula."""
    ctx.call("sigmoid_hard", node.outputs[0], x=ctx.var(node.inputs[0]),
             alpha=float(node.attr("alpha")), beta=float(node.attr("beta")))


@HANDLERS.register("Selu")
def emit_selu(ctx: EmitContext, node: Node) -> None:
    """gamma * elu(x, alpha): MIL has no selu."""
    elu = ctx.call("elu", hint="elu", x=ctx.var(node.inputs[0]), alpha=float(node.attr("alpha")))
    ctx.call("mul", node.outputs[0], x=elu, y=float(node.attr("gamma")))


@HANDLERS.register("PRelu")
def emit_prelu(ctx: EmitContext, node: Node) -> None:
    """MIL prelu takes one slope per channel (axis 1) of a rank >= 3 input; other slopes
    (shared, per element, or computed) are max(x, 0) + slope * min(x, 0)."""
    x, slope = node.inputs[0], node.inputs[1]
    rank = ctx.rank(x)
    array = ctx.weight(slope)
    channels = ctx.static_shape(x)[1] if rank >= 2 else 0
    s_shape = ctx.static_shape(slope)
    padded = (1,) * (rank - len(s_shape)) + s_shape
    per_channel = (array is not None and rank >= 3 and len(s_shape) <= rank
                   and padded[1] in (1, channels)
                   and ctx.static_shape(node.outputs[0]) == ctx.static_shape(x)
                   and all(d == 1 for i, d in enumerate(padded) if i != 1))
    if per_channel and array is not None:
        target = [1] * rank
        target[1] = channels
        per_c = np.broadcast_to(array.reshape(padded), target).reshape(channels)
        alpha = ctx.weight_var(slope, per_c.astype(np.float32))
        ctx.call("prelu", node.outputs[0], x=ctx.var(x), alpha=alpha)
        return
    pos = ctx.call("relu", hint="pos", x=ctx.var(x))
    neg = ctx.call("minimum", hint="neg", x=ctx.var(x), y=0.0)
    scaled = ctx.call("mul", hint="scaled", x=neg, y=ctx.var(slope))
    ctx.call("add", node.outputs[0], x=pos, y=scaled)


@HANDLERS.register("Softmax")
def emit_softmax(ctx: EmitContext, node: Node) -> None:
    ctx.call("softmax", node.outputs[0], x=ctx.var(node.inputs[0]),
             axis=ctx.axis_attr(node, ctx.rank(node.inputs[0])))


@HANDLERS.register("LogSoftmax")
def emit_log_softmax(ctx: EmitContext, node: Node) -> None:
    """x - logsumexp(x) along the axis (stable, unlike log(softmax(x)))."""
    x = ctx.var(node.inputs[0])
    axis = ctx.axis_attr(node, ctx.rank(node.inputs[0]))
    lse = ctx.call("reduce_log_sum_exp", hint="lse", x=x, axes=[axis], keep_dims=True)
    ctx.call("sub", node.outputs[0], x=x, y=lse)


@HANDLERS.register("Hardmax")
def emit_hardmax(ctx: EmitContext, node: Node) -> None:
    """one_hot(argmax) along the axis, as float (ties: whichever maximum Core ML's
    reduce_argmax picks; the IR takes the first)."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = ctx.axis_attr(node, rank)
    size = ctx.static_shape(x)[axis]
    idx = ctx.call("reduce_argmax", hint="argmax", x=ctx.var(x), axis=axis, keep_dims=False)
    ctx.call("one_hot", node.outputs[0], indices=idx, one_hot_vector_size=size, axis=axis,
             on_value=1.0, off_value=0.0)


@HANDLERS.register("Gelu")
def emit_gelu(ctx: EmitContext, node: Node) -> None:
    """MIL gelu: EXACT (erf) or TANH_APPROXIMATION, the IR's two forms."""
    mode = {"none": "EXACT", "tanh": "TANH_APPROXIMATION"}.get(str(node.attr("approximate")))
    if mode is None:
        raise ctx.unsupported(node, f"Gelu approximate={node.attr('approximate')!r}")
    ctx.call("gelu", node.outputs[0], x=ctx.var(node.inputs[0]), mode=mode)


@HANDLERS.register("HardSwish")
def emit_hard_swish(ctx: EmitContext, node: Node) -> None:
    """x * sigmoid_hard(x, 1/6, 1/2): MIL has no hard swish at iOS15."""
    x = ctx.var(node.inputs[0])
    gate = ctx.call("sigmoid_hard", hint="gate", x=x, alpha=1.0 / 6.0, beta=0.5)
    ctx.call("mul", node.outputs[0], x=x, y=gate)


@HANDLERS.register("Mish")
def emit_mish(ctx: EmitContext, node: Node) -> None:
    """x * tanh(softplus(x))."""
    x = ctx.var(node.inputs[0])
    soft = ctx.call("softplus", hint="softplus", x=x)
    ctx.call("mul", node.outputs[0], x=x, y=ctx.call("tanh", hint="tanh", x=soft))


@HANDLERS.register("Softsign")
def emit_softsign(ctx: EmitContext, node: Node) -> None:
    ctx.call("softsign", node.outputs[0], x=ctx.var(node.inputs[0]))
