"""Dense and MatMul as ``FullyConnected``, ``dot`` and ``batch_dot``.

The IR's Dense weight is ``[out, in]``, MXNet's ``FullyConnected`` weight
layout.  ``FullyConnected`` flattens its input to 2-D by default; the IR's
Dense input is 2-D already, and any other rank is written with
``flatten=False`` (the product over the last axis, the IR's meaning).
A MatMul by a 2-D weight is a bias-free ``FullyConnected`` with the weight
stored transposed once; 2-D x 2-D (or a vector) is ``dot``, 3-D x 3-D with equal batch
``batch_dot`` (higher ranks with equal batch axes merged into one first); broadcasting
batch axes is refused.
"""

from __future__ import annotations

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext, Entry
from mmconv.emitters.mxnet.symbol import AttrValue
from mmconv.ir.core import Node


def _fully_connected(ctx: EmitContext, node: Node, inputs: list[Entry], **attrs: AttrValue
                     ) -> None:
    """``FullyConnected`` computing the node's output.

    MXNet's CPU ``FullyConnected`` has no float16 kernel ("only supported by
    CuDNN"): a float16 layer runs in float32, its inputs and parameters cast up
    at run time and the result cast back.
    """
    if ctx.dtype(node.outputs[0]) != "float16":
        ctx.emit_op(node, "FullyConnected", inputs, **attrs)
        return
    wide = [ctx.op("Cast", [inputs[0]], "to_float32", dtype="float32")]
    for i, entry in enumerate(inputs[1:], 1):
        wide.append(ctx.op("Cast", [entry], f"to_float32_{i}", dtype="float32"))
    fc = ctx.op("FullyConnected", wide, "float32", **attrs)
    ctx.emit_op(node, "Cast", [fc], dtype="float16")


@HANDLERS.register("Dense")
def emit_dense(ctx: EmitContext, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    bias = node.input(2)
    inputs = [ctx.input(x), ctx.input(w)]
    if bias:
        inputs.append(ctx.param(bias, lambda a: a.reshape(-1), "flat")
                      if ctx.is_weight(bias) else ctx.input(bias))
    _fully_connected(ctx, node, inputs, num_hidden=int(ctx.static_shape(w)[0]),
                     no_bias=not bias, flatten=False if ctx.rank(x) != 2 else None)


@HANDLERS.register("MatMul")
def emit_matmul(ctx: EmitContext, node: Node) -> None:
    a, b = node.inputs
    ra, rb = ctx.rank(a), ctx.rank(b)
    if rb == 2 and ctx.is_weight(b) and ra >= 2:
        w = ctx.param(b, lambda m: m.T.copy(), "transposed")
        _fully_connected(ctx, node, [ctx.input(a), w], num_hidden=int(ctx.static_shape(b)[1]),
                         no_bias=True, flatten=False if ra != 2 else None)
    elif ra <= 2 and rb <= 2:
        ctx.emit_op(node, "dot", [ctx.input(a), ctx.input(b)])
    elif ra == 3 and rb == 3 and ctx.shape(a)[0] == ctx.shape(b)[0]:
        ctx.emit_op(node, "batch_dot", [ctx.input(a), ctx.input(b)])
    elif ra == rb > 3 and ctx.shape(a)[:-2] == ctx.shape(b)[:-2] and None not in (
            *ctx.shape(a)[-2:], *ctx.shape(b)[-2:]):
        # equal batch axes: merged into one for batch_dot, split again after
        sa, sb = ctx.shape(a), ctx.shape(b)
        a3 = ctx.op("Reshape", [ctx.input(a)], "a3", shape=(-1, int(sa[-2]), int(sa[-1])))
        b3 = ctx.op("Reshape", [ctx.input(b)], "b3", shape=(-1, int(sb[-2]), int(sb[-1])))
        product = ctx.op("batch_dot", [a3, b3], "batch_dot")
        out = ctx.shape(node.outputs[0])
        if None in out[1:]:
            raise ctx.unsupported(node, "a batched matrix product with dynamic inner axes")
        ctx.emit_op(node, "Reshape", [product],
                    shape=(-1, *(int(d) for d in out[1:])))  # type: ignore[arg-type]
    else:
        raise ctx.unsupported(node, f"matrix product of ranks {ra} and {rb} with broadcast batch "
                              "axes (MXNet has dot and 3-D batch_dot)")
