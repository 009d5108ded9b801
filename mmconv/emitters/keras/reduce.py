"""Reductions, ArgMax/ArgMin, CumSum: ``keras.ops`` calls with axes remapped to the
Keras tensor's layout (reducing H and W of an NCHW value reduces axes 1 and 2 of
its NHWC tensor); no transpose."""

from __future__ import annotations

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_FN = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
       "ReduceProd": "prod", "ReduceLogSumExp": "logsumexp", "ReduceL2": "sum"}


def _after_drop(layout: tuple[int, ...], dropped: set[int]) -> tuple[int, ...]:
    """The layout of the result once the IR axes ``dropped`` are removed."""
    kept = [a for a in layout if a not in dropped]
    renumber = {a: i for i, a in enumerate(sorted(kept))}
    return tuple(renumber[a] for a in kept)


@HANDLERS.register(*_FN)
def emit_reduce(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    layout = ctx.perm_of(x)
    axes = sorted({a % rank for a in node.attr("axes")}) if node.attr("axes") else \
        list(range(rank))
    keepdims = bool(node.attr("keepdims"))
    k_axes = tuple(sorted(layout.index(a) for a in axes))
    out_layout = layout if keepdims else _after_drop(layout, set(axes))
    ex = ctx.var(x)
    if node.op == "ReduceL2":
        ctx.define(node, f"ops.sqrt(ops.sum(ops.square({ex}), axis={literal(k_axes)}, "
                         f"keepdims={keepdims}))", out_layout)
        return
    ctx.define(node, f"ops.{_FN[node.op]}({ex}, axis={literal(k_axes)}, "
                     f"keepdims={keepdims})", out_layout)


@HANDLERS.register("ArgMax", "ArgMin")
def emit_arg(ctx: EmitContext, node: Node) -> None:
    """int64 like the IR (Keras returns int32); select_last_index searches the flipped axis."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = int(node.attr("axis")) % rank
    layout = ctx.perm_of(x)
    k = layout.index(axis)
    keepdims = bool(node.attr("keepdims"))
    fn = "argmax" if node.op == "ArgMax" else "argmin"
    ex = ctx.var(x)
    if node.attr("select_last_index"):
        size = ctx.shape(x)[axis]
        if size is None:
            raise ctx.unsupported(node, "select_last_index on a dynamic axis")
        expr = f"ops.subtract({size - 1}, ops.{fn}(ops.flip({ex}, axis={k}), axis={k}, " \
               f"keepdims={keepdims}))"
    else:
        expr = f"ops.{fn}({ex}, axis={k}, keepdims={keepdims})"
    out_layout = layout if keepdims else _after_drop(layout, {axis})
    ctx.define(node, f"ops.cast({expr}, 'int64')", out_layout)


@HANDLERS.register("CumSum")
def emit_cumsum(ctx: EmitContext, node: Node) -> None:
    """exclusive: minus the element itself; reverse: summed over the flipped axis."""
    x = node.inputs[0]
    layout = ctx.perm_of(x)
    k = layout.index(int(node.attr("axis")) % ctx.rank(x))
    ex = ctx.var(x)
    expr = f"ops.flip(ops.cumsum(ops.flip({ex}, axis={k}), axis={k}), axis={k})" \
        if node.attr("reverse") else f"ops.cumsum({ex}, axis={k})"
    if node.attr("exclusive"):
        expr = f"ops.subtract({expr}, {ex})"
    ctx.define(node, expr, layout)
