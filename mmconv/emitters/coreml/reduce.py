"""Reductions, arg reductions and CumSum: one MIL op each.

ArgMax/ArgMin give int32 in Core ML (the IR's are int64); MIL does not say
which index wins a tie, so ``select_last_index`` is refused.
"""

from __future__ import annotations

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_REDUCE = {"ReduceMax": "reduce_max", "ReduceMin": "reduce_min", "ReduceMean": "reduce_mean",
           "ReduceSum": "reduce_sum", "ReduceProd": "reduce_prod",
           "ReduceLogSumExp": "reduce_log_sum_exp", "ReduceL2": "reduce_l2_norm"}


@HANDLERS.register(*_REDUCE)
def emit_reduce(ctx: EmitContext, node: Node) -> None:
    """Empty ``axes`` means every axis, as in the IR."""
    rank = ctx.rank(node.inputs[0])
    axes = [a + rank if a < 0 else a for a in node.attr("axes")] or list(range(rank))
    ctx.call(_REDUCE[node.op], node.outputs[0], x=ctx.var(node.inputs[0]), axes=axes,
             keep_dims=bool(node.attr("keepdims")))


@HANDLERS.register("ArgMax", "ArgMin")
def emit_arg(ctx: EmitContext, node: Node) -> None:
    if node.attr("select_last_index"):
        raise ctx.unsupported(node, "select_last_index: Core ML does not define which index "
                              "wins a tie")
    op = "reduce_argmax" if node.op == "ArgMax" else "reduce_argmin"
    ctx.call(op, node.outputs[0], x=ctx.var(node.inputs[0]),
             axis=ctx.axis_attr(node, ctx.rank(node.inputs[0])),
             keep_dims=bool(node.attr("keepdims")))


@HANDLERS.register("CumSum")
def emit_cumsum(ctx: EmitContext, node: Node) -> None:
    ctx.call("cumsum", node.outputs[0], x=ctx.var(node.inputs[0]),
             axis=ctx.axis_attr(node, ctx.rank(node.inputs[0])),
             exclusive=bool(node.attr("exclusive")), reverse=bool(node.attr("reverse")))
