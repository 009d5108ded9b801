"""Reductions (Reduce*, ArgMax/ArgMin) and CumSum.

The IR keeps axes static; ONNX takes them as an input from opset 13 (ReduceSum)
or 18 (the others), which :meth:`EmitContext.reduce` handles.  Empty IR axes
("all") are written out, so no ONNX default (or noop_with_empty_axes) matters.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.onnx.context import HANDLERS, EmitContext, axis_of
from mmconv.ir.core import Node

REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
          "ReduceLogSumExp")


@HANDLERS.register(*REDUCE)
def emit_reduce(ctx: EmitContext, node: Node) -> None:
    """One Reduce* node; where its axes go (attribute or input) is the context's concern."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    axes = [a + rank if a < 0 else a for a in node.attr("axes")] or list(range(rank))
    ctx.reduce(node.op, x, axes, bool(node.attr("keepdims")), node.outputs, node.name)


@HANDLERS.register("ArgMax", "ArgMin")
def emit_arg(ctx: EmitContext, node: Node) -> None:
    """select_last_index exists from opset 12; it is only written when set."""
    last = bool(node.attr("select_last_index"))
    if last:
        ctx.require(node, 12, "select_last_index")
    ctx.add(node.op, [node.inputs[0]], node.outputs, name=node.name,
            axis=axis_of(node, ctx.rank(node.inputs[0])), keepdims=int(node.attr("keepdims")),
            select_last_index=1 if last else None)


@HANDLERS.register("CumSum")
def emit_cumsum(ctx: EmitContext, node: Node) -> None:
    """ONNX CumSum (opset 11) takes the axis as a 0-d int64 input."""
    ctx.require(node, 11)
    axis = ctx.const(np.asarray(axis_of(node, ctx.rank(node.inputs[0])), dtype=np.int64),
                     "axis")
    ctx.add("CumSum", [node.inputs[0], axis], node.outputs, name=node.name,
            exclusive=int(node.attr("exclusive")), reverse=int(node.attr("reverse")))
