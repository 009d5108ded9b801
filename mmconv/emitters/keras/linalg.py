"""Dense and MatMul as Keras ``Dense`` layers where the right operand is a weight.

Dense weights are stored [in, out] (Keras) from the IR's [out, in]; after a
Flatten of a channels-last map the rows are permuted from CHW to HWC order
here, so no transpose is needed before the Flatten.
"""

from __future__ import annotations

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, Flat, identity
from mmconv.ir.core import Node


@HANDLERS.register("Dense")
def emit_dense(ctx: EmitContext, node: Node) -> None:
    x, w_name, b_name = node.inputs[0], node.inputs[1], node.input(2)
    w = ctx.need_weight(node, w_name, "the weight matrix")
    bias = ctx.need_weight(node, b_name, "the bias") if b_name else None
    layout = ctx.layout(x)
    if isinstance(layout, Flat):
        kernel = w[:, list(layout.index)].T
        xs = ctx.var(x)
    else:
        kernel = w.T
        xs = ctx.plain(x)
    name = ctx.out(node)
    ctx.define(node, f"layers.Dense({int(w.shape[0])}, use_bias={bias is not None}, "
                     f"name={literal(name)}{ctx.dtype_kw(x)})({xs})",
               identity(ctx.rank(node.outputs[0])))
    params = [("kernel", kernel)]
    if bias is not None:
        params.append(("bias", bias.reshape(-1)))
    ctx.set_weights(name, params)


@HANDLERS.register("MatMul")
def emit_matmul(ctx: EmitContext, node: Node) -> None:
    """A @ W with a 2-D weight W is a bias-free Dense on the last axis; else ops.matmul."""
    a, b = node.inputs[:2]
    wb = ctx.weight(b)
    out_layout = identity(ctx.rank(node.outputs[0]))
    name = ctx.out(node)
    if wb is not None and wb.ndim in (1, 2) and ctx.runtime(a) and ctx.rank(a) >= 2:
        units = 1 if wb.ndim == 1 else int(wb.shape[1])
        dense = (f"layers.Dense({units}, use_bias=False, name={literal(name)}"
                 f"{ctx.dtype_kw(a)})({ctx.plain(a)})")
        ctx.define(node, dense if wb.ndim == 2 else f"ops.squeeze({dense}, axis=-1)",
                   out_layout)
        ctx.set_weights(name, [("kernel", wb.reshape(wb.shape[0], -1))])
        return
    ctx.define(node, f"ops.matmul({ctx.plain(a)}, {ctx.plain(b)})", out_layout)
