"""Reductions (``C.reduce_*``), ArgMax/ArgMin (``C.argmax``/``C.argmin``) and CumSum.

Reductions run over a sample's static axes; one over the batch axis (IR axis
0 of a batched value, or "all axes") has no per-sample meaning and is
refused.  Sum, Max, Min and Mean over the time axis alone of a sequence (IR axis 1)
are CNTK's sequence reductions.  CNTK keeps a reduced axis with size 1; without keepdims the result
is reshaped to the IR's output shape.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Node

REDUCE = {"ReduceSum": "C.reduce_sum", "ReduceMean": "C.reduce_mean",
          "ReduceMax": "C.reduce_max", "ReduceMin": "C.reduce_min",
          "ReduceProd": "C.reduce_prod", "ReduceLogSumExp": "C.reduce_log_sum_exp",
          "ReduceL2": "C.reduce_l2"}


def _finish(ctx: EmitContext, node: Node, expr: str, keepdims: bool) -> None:
    if keepdims:
        ctx.assign(node, f"{expr}, {ctx.name_kw(node)})")
        return
    reduced = ctx.let(expr + ")", "keepdims")
    x = node.inputs[0]
    lead = 2 if x in ctx.sequence else 1 if ctx.batched(x) else 0  # CNTK's dynamic axes
    target = ctx.shape(node.outputs[0])[lead:]
    ctx.assign(node, f"C.reshape({reduced}, {ints(target)}, {ctx.name_kw(node)})")  # type: ignore[arg-type]


#: Reductions over a sequence's time axis (IR axis 1 of a CNTK sequence).
SEQUENCE_REDUCE = {"ReduceSum": "C.sequence.reduce_sum", "ReduceMax": "C.sequence.reduce_max"}


def _over_time(ctx: EmitContext, node: Node) -> None:
    """A reduction over the time axis of a sequence, as ``C.sequence.reduce_sum/max``
    (what ``cntk.sequence.reduce_*`` models hold); Mean is the sum over the length
    (a sum of ones), Min the negated max of the negation.  The result is an ordinary
    batched value."""
    x = ctx.ref(node.inputs[0])
    if node.op == "ReduceMin":
        expr = f"C.negate(C.sequence.reduce_max(C.negate({x})))"
    elif node.op == "ReduceMean":
        ones = f"C.sequence.broadcast_as(C.constant(1, dtype={x}.dtype), {x})"
        expr = f"C.element_divide(C.sequence.reduce_sum({x}), C.sequence.reduce_sum({ones}))"
    else:
        expr = f"{SEQUENCE_REDUCE[node.op]}({x})"
    shape = ctx.shape(node.outputs[0])[1:]
    ctx.assign(node, f"C.reshape({expr}, {ints(shape)}, {ctx.name_kw(node)})",  # type: ignore[arg-type]
               batched=True, sequence=False)


@HANDLERS.register(*REDUCE)
def emit_reduce(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    axes = [int(a) % rank for a in node.attr("axes")] or list(range(rank))
    if x in ctx.sequence and sorted(set(axes)) == [1] and \
            node.op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean"):
        _over_time(ctx, node)
        return
    cntk_axes = tuple(ctx.axis(x, a) for a in sorted(set(axes)))
    _finish(ctx, node, f"{REDUCE[node.op]}({ctx.ref(x)}, axis={literal(cntk_axes)}",
            bool(node.attr("keepdims")))


@HANDLERS.register("ArgMax", "ArgMin")
def emit_arg(ctx: EmitContext, node: Node) -> None:
    """The index comes back as a float (CNTK has no integer tensors)."""
    if node.attr("select_last_index"):
        raise ctx.unsupported(node, "select_last_index (CNTK returns the first extreme)")
    x = node.inputs[0]
    fn = "C.argmax" if node.op == "ArgMax" else "C.argmin"
    axis = ctx.axis(x, int(node.attr("axis")))
    _finish(ctx, node, f"{fn}({ctx.ref(x)}, axis={axis}", bool(node.attr("keepdims")))


@HANDLERS.register("CumSum")
def emit_cumsum(ctx: EmitContext, node: Node) -> None:
    """CNTK 2.7 has no cumulative sum: a product with a 0/1 triangular matrix along the
    first or last axis of a sample (``times`` contracts exactly those), exact up to
    summation order."""
    x = node.inputs[0]
    axis = ctx.axis(x, int(node.attr("axis")))
    sample = ctx.sample_shape(x)
    n = sample[axis]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    # y[j] = sum_i x[i] * T[i, j]
    if node.attr("reverse"):
        mask = i > j if node.attr("exclusive") else i >= j
    else:
        mask = i < j if node.attr("exclusive") else i <= j
    tri = mask.astype(ctx.cntk_dtype(ctx.dtype(x)))
    if axis == len(sample) - 1:
        ctx.assign(node, f"C.times({ctx.ref(x)}, {ctx.new_const(tri, 'triangle')}, "
                         f"{ctx.name_kw(node)})")
    elif axis == 0:
        ctx.assign(node, f"C.times({ctx.new_const(tri.T.copy(), 'triangle')}, {ctx.ref(x)}, "
                         f"{ctx.name_kw(node)})")
    else:
        raise ctx.unsupported(node, f"CumSum along a middle axis ({axis} of {list(sample)})")
