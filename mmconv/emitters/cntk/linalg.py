"""Dense and MatMul as ``C.times``.

``times(x, W)`` contracts x's last axis with W's first, so the IR's ``[out, in]``
Dense weight is stored transposed (``[in, out]``) once, at emit time; the
network itself never transposes anything.
"""

from __future__ import annotations

from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.ir.core import Node


@HANDLERS.register("Dense")
def emit_dense(ctx: EmitContext, node: Node) -> None:
    x, w = node.inputs[:2]
    if not ctx.is_weight(w):
        raise ctx.unsupported(node, "a Dense weight computed at run time")
    if len(ctx.sample_shape(x)) != 1 and ctx.batched(x):
        raise ctx.unsupported(node, f"Dense on {list(ctx.shape(x))}; the IR wants [N, in]")
    times = f"C.times({ctx.ref(x)}, {ctx.param(w, lambda a: a.T, 'in_out')}"
    bias = node.input(2)
    if bias:
        b = ctx.param(bias) if ctx.is_weight(bias) else ctx.ref(bias)
        ctx.assign(node, f"C.plus({times}), {b}, {ctx.name_kw(node)})")
    else:
        ctx.assign(node, f"{times}, {ctx.name_kw(node)})")


@HANDLERS.register("MatMul")
def emit_matmul(ctx: EmitContext, node: Node) -> None:
    """numpy.matmul for the cases ``times`` expresses: B of rank 1 or 2 (per sample),
    A of any rank."""
    a, b = node.inputs[:2]
    b_rank = len(ctx.sample_shape(b))
    if b_rank not in (1, 2) or len(ctx.sample_shape(a)) < 1:
        raise ctx.unsupported(node, f"MatMul of {list(ctx.shape(a))} and {list(ctx.shape(b))} "
                              "(CNTK times: B must be a matrix or vector per sample)")
    if b_rank == 2:
        ctx.assign(node, f"C.times({ctx.ref(a)}, {ctx.ref(b)}, {ctx.name_kw(node)})")
        return
    # times wants an output axis: B as a one-column matrix, then the column dropped
    k = ctx.sample_shape(b)[0]
    col = ctx.const(b, lambda w: w.reshape(k, 1), "column") if ctx.is_weight(b) else \
        f"C.reshape({ctx.ref(b)}, {ints((k, 1))})"
    out = ctx.sample_shape(a)[:-1]
    ctx.assign(node, f"C.reshape(C.times({ctx.ref(a)}, {col}), {ints(out)}, "
                     f"{ctx.name_kw(node)})")
