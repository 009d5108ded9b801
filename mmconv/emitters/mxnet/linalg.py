"""Dense and MatMul as ``FullyConnected``, ``dot`` and ``batch_dot``.

The IR's Dense weight is ``[out, in]``, MXNet's ``FullyConnected`` weight
layout.  ``FullyConnected`` flattens its input to 2-D by default; the IR's
Dense input is 2-D already, and any other rank is written with
``flatten=False`` (the product over the last axis, the IR's meaning).
A MatMul by a 2-D weight is a bias-free ``FullyConnected`` with the weight
stored transposed once; 2-D x 2-D (or a vector) is ``dot``, 3-D x 3-D with equal batch
``batch_dot``; other batch broadcasting is refused.
"""

from __future__ import annotations

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("Dense")
def emit_dense(ctx: EmitContext, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    bias = node.input(2)
    inputs = [ctx.input(x), ctx.input(w)]
    if bias:
        inputs.append(ctx.param(bias, lambda a: a.reshape(-1), "flat")
                      if ctx.is_weight(bias) else ctx.input(bias))
    ctx.emit_op(node, "FullyConnected", inputs, num_hidden=int(ctx.static_shape(w)[0]),
                no_bias=not bias, flatten=False if ctx.rank(x) != 2 else None)


@HANDLERS.register("MatMul")
def emit_matmul(ctx: EmitContext, node: Node) -> None:
    a, b = node.inputs
    ra, rb = ctx.rank(a), ctx.rank(b)
    if rb == 2 and ctx.is_weight(b) and ra >= 2:
        w = ctx.param(b, lambda m: m.T.copy(), "transposed")
        ctx.emit_op(node, "FullyConnected", [ctx.input(a), w],
                    num_hidden=int(ctx.static_shape(b)[1]), no_bias=True,
                    flatten=False if ra != 2 else None)
    elif ra <= 2 and rb <= 2:
        ctx.emit_op(node, "dot", [ctx.input(a), ctx.input(b)])
    elif ra == 3 and rb == 3 and ctx.shape(a)[0] == ctx.shape(b)[0]:
        ctx.emit_op(node, "batch_dot", [ctx.input(a), ctx.input(b)])
    else:
        raise ctx.unsupported(node, f"matrix product of ranks {ra} and {rb} with broadcast batch "
                              "axes (MXNet has dot and 3-D batch_dot)")
