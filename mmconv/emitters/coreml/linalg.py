"""Dense and MatMul: MIL linear (weight [out, in], the IR's layout) and matmul."""

from __future__ import annotations

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("Dense")
def emit_dense(ctx: EmitContext, node: Node) -> None:
    """linear for a constant kernel on a rank 1-3 input; else matmul (transposed
    kernel) plus the bias."""
    x, w, b = node.inputs[0], node.inputs[1], node.input(2)
    if ctx.weight(w) is not None and ctx.rank(x) <= 3 and (not b or ctx.weight(b) is not None):
        ctx.call("linear", node.outputs[0], x=ctx.var(x), weight=ctx.var(w),
                 bias=ctx.var(b) if b else None)
        return
    if not b:
        ctx.call("matmul", node.outputs[0], x=ctx.var(x), y=ctx.var(w), transpose_y=True)
        return
    prod = ctx.call("matmul", hint="matmul", x=ctx.var(x), y=ctx.var(w), transpose_y=True)
    ctx.call("add", node.outputs[0], x=prod, y=ctx.var(b))


@HANDLERS.register("MatMul")
def emit_matmul(ctx: EmitContext, node: Node) -> None:
    """numpy matmul; a rank-1 operand is made a matrix and its axis dropped after, as
    numpy does (MIL matmul wants rank >= 2 operands in Core ML)."""
    a, b = node.inputs[0], node.inputs[1]
    x, y = ctx.var(a), ctx.var(b)
    squeeze = []
    if ctx.rank(a) == 1:
        x = ctx.call("expand_dims", hint="a_row", x=x, axes=[0])
        squeeze.append(-2)
    if ctx.rank(b) == 1:
        y = ctx.call("expand_dims", hint="b_col", x=y, axes=[-1])
        squeeze.append(-1)
    if not squeeze:
        ctx.call("matmul", node.outputs[0], x=x, y=y)
        return
    prod = ctx.call("matmul", hint="matmul", x=x, y=y)
    ctx.call("squeeze", node.outputs[0], x=prod, axes=squeeze)
