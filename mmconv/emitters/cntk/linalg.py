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
    """numpy.matmul: ``times`` where B is a matrix or vector per sample (A of any rank);
    a batched product (B of rank >= 3 per sample, e.g. attention's ``q @ k^T``) as a
    broadcast product and a sum, which ``times`` cannot express."""
    a, b = node.inputs[:2]
    b_rank = len(ctx.sample_shape(b))
    if b_rank >= 3 and len(ctx.sample_shape(a)) >= 2:
        _batched_matmul(ctx, node)
        return
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


def _batched_matmul(ctx: EmitContext, node: Node) -> None:
    """``A[..., T, D] @ B[..., D, S]`` per sample: A as ``[..., T, D, 1]`` times B as
    ``[..., 1, D, S]`` (CNTK broadcasts size-1 axes like numpy), summed over D and
    reshaped to the output.  Exact up to summation order; it holds a ``T*D*S`` product
    per leading index, which is small for the attention blocks this is for."""
    a, b = node.inputs[:2]
    sa, sb = _per_sample(ctx, a, b), _per_sample(ctx, b, a)
    lead = max(len(sa), len(sb)) - 2
    pa = (1,) * (lead - len(sa) + 2) + sa[:-2]
    pb = (1,) * (lead - len(sb) + 2) + sb[:-2]
    ea = ctx.let(f"C.reshape({ctx.ref(a)}, {ints((*pa, sa[-2], sa[-1], 1))})", "a")
    eb = ctx.let(f"C.reshape({ctx.ref(b)}, {ints((*pb, 1, sb[-2], sb[-1]))})", "b")
    summed = ctx.let(f"C.reduce_sum(C.element_times({ea}, {eb}), axis={lead + 1})", "sum")
    out = ctx.shape(node.outputs[0])[1:] if ctx.batched(a) or ctx.batched(b) \
        else ctx.shape(node.outputs[0])
    ctx.assign(node, f"C.reshape({summed}, {ints(out)}, {ctx.name_kw(node)})")


def _per_sample(ctx: EmitContext, x: str, other: str) -> tuple[int, ...]:
    """``x``'s shape per sample of ``other``: a batch-less operand of the batched one's
    full rank loses its leading axes (they face the batch, so they must be 1)."""
    shape = ctx.sample_shape(x)
    if ctx.batched(other) and not ctx.batched(x) and ctx.rank(x) >= ctx.rank(other):
        lead = ctx.rank(x) - ctx.rank(other) + 1
        if any(d != 1 for d in shape[:lead]):
            raise ctx.unsupported(None, f"operand {x!r} {list(shape)} varies along the batch axis")
        shape = shape[lead:]
    return shape
