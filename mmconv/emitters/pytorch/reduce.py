"""Reductions, ArgMax/ArgMin and CumSum as ``torch`` calls with the axes spelled out
(non-negative; the IR's empty axes, meaning all, written as every axis)."""

from __future__ import annotations

from mmconv.emitters.base import norm_axis
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_REDUCE = {"ReduceSum": "torch.sum", "ReduceMean": "torch.mean", "ReduceMax": "torch.amax",
           "ReduceMin": "torch.amin", "ReduceLogSumExp": "torch.logsumexp"}


def _axes(ctx: EmitContext, node: Node) -> list[int]:
    rank = ctx.rank(node.inputs[0])
    return sorted({norm_axis(int(a), rank) for a in node.attr("axes")}) or list(range(rank))


@HANDLERS.register(*_REDUCE)
def emit_reduce(ctx: EmitContext, node: Node) -> None:
    x = ctx.value(node.inputs[0])
    keep = bool(node.attr("keepdims"))
    ctx.assign(node, f"{_REDUCE[node.op]}({x}, dim={_axes(ctx, node)}, keepdim={keep})")


@HANDLERS.register("ReduceL2")
def emit_reduce_l2(ctx: EmitContext, node: Node) -> None:
    x = ctx.value(node.inputs[0])
    keep = bool(node.attr("keepdims"))
    ctx.assign(node, f"torch.linalg.vector_norm({x}, 2.0, dim={_axes(ctx, node)}, "
                     f"keepdim={keep})")


@HANDLERS.register("ReduceProd")
def emit_reduce_prod(ctx: EmitContext, node: Node) -> None:
    """torch.prod takes one dim: one call per axis, last axis first so the others keep
    their positions when keepdims is false."""
    expr = ctx.value(node.inputs[0])
    keep = bool(node.attr("keepdims"))
    for axis in reversed(_axes(ctx, node)):
        expr = f"torch.prod({expr}, dim={axis}, keepdim={keep})"
    ctx.assign(node, expr)


@HANDLERS.register("ArgMax", "ArgMin")
def emit_arg(ctx: EmitContext, node: Node) -> None:
    """torch.argmax/argmin return the first index on ties; select_last_index searches
    the flipped axis and maps the index back."""
    x_name = node.inputs[0]
    x = ctx.value(x_name)
    axis = norm_axis(int(node.attr("axis")), ctx.rank(x_name))
    keep = bool(node.attr("keepdims"))
    fn = "torch.argmax" if node.op == "ArgMax" else "torch.argmin"
    if not node.attr("select_last_index"):
        ctx.assign(node, f"{fn}({x}, dim={axis}, keepdim={keep})")
        return
    size = ctx.shape(x_name)[axis]
    last = f"{size - 1}" if size is not None else f"({x}.shape[{axis}] - 1)"
    ctx.assign(node, f"{last} - {fn}(torch.flip({x}, [{axis}]), dim={axis}, keepdim={keep})")


@HANDLERS.register("CumSum")
def emit_cumsum(ctx: EmitContext, node: Node) -> None:
    x = ctx.value(node.inputs[0])
    axis = norm_axis(int(node.attr("axis")), ctx.rank(node.inputs[0]))
    src = f"torch.flip({x}, [{axis}])" if node.attr("reverse") else x
    expr = f"torch.cumsum({src}, dim={axis})"
    if node.attr("exclusive"):
        expr = f"{expr} - {src}"
    if node.attr("reverse"):
        expr = f"torch.flip({expr}, [{axis}])"
    ctx.assign(node, expr)
