"""Reductions as MXNet's ``sum``/``mean``/``max``/``min``/``prod`` (axes + ``keepdims``).

- ReduceLogSumExp: ``log(sum(exp(x - m))) + m`` with ``m`` the max over the
  axes (MXNet has no such operator; the shift keeps exp from overflowing).
- ArgMax/ArgMin: MXNet returns indices as floats: a ``Cast`` to the IR's
  int64 follows.  Ties go to the first index in both; ``select_last_index``
  reverses the axis first and maps the index back.
- CumSum: a product with a triangular matrix of ones over the (static) axis,
  which is what MXNet 1.x's legacy operators can say (``dot`` contracts the
  last axis; other axes are moved there and back with ``transpose``).
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceProd": "prod"}


def _axes(ctx: EmitContext, node: Node) -> tuple[int, ...]:
    rank = ctx.rank(node.inputs[0])
    axes = list(node.attr("axes") or [])
    return tuple(sorted(int(a) % rank for a in axes)) if axes else tuple(range(rank))


@HANDLERS.register(*_REDUCE)
def emit_reduce(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, _REDUCE[node.op], [ctx.input(node.inputs[0])], axis=_axes(ctx, node),
                keepdims=bool(node.attr("keepdims")))


@HANDLERS.register("ReduceLogSumExp")
def emit_log_sum_exp(ctx: EmitContext, node: Node) -> None:
    x = ctx.input(node.inputs[0])
    axes = _axes(ctx, node)
    peak = ctx.op("max", [x], "max", axis=axes, keepdims=True)
    shifted = ctx.op("exp", [ctx.op("broadcast_sub", [x, peak], "shifted")], "exp")
    total = ctx.op("log", [ctx.op("sum", [shifted], "sum", axis=axes, keepdims=True)], "log")
    result = ctx.op("broadcast_add", [total, peak], "lse")
    if node.attr("keepdims"):
        ctx.alias(node, result)
    else:
        ctx.emit_op(node, "squeeze", [result], axis=axes)


@HANDLERS.register("ArgMax", "ArgMin")
def emit_arg(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = int(node.attr("axis")) % rank
    keep = bool(node.attr("keepdims"))
    op = "argmax" if node.op == "ArgMax" else "argmin"
    data = ctx.input(x)
    last = bool(node.attr("select_last_index"))
    if last:
        size = ctx.shape(x)[axis]
        if size is None:
            raise ctx.unsupported(node, "select_last_index along a dynamic axis")
        data = ctx.op("reverse", [data], "reverse", axis=axis)
    index = ctx.op(op, [data], op, axis=axis, keepdims=keep)
    if last:
        index = ctx.op("_rminus_scalar", [index], "unreverse", scalar=float(int(size) - 1))
    dtype = ctx.mx_dtype(ctx.dtype(node.outputs[0]))
    ctx.emit_op(node, "Cast", [index], dtype=dtype)


@HANDLERS.register("CumSum")
def emit_cumsum(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = int(node.attr("axis")) % rank
    size = ctx.shape(x)[axis]
    if size is None:
        raise ctx.unsupported(node, "a running sum along a dynamic axis")
    n = int(size)
    i, j = np.indices((n, n))
    # out[j] = sum_i x[i] * T[i, j]
    if node.attr("reverse"):
        tri = (i > j) if node.attr("exclusive") else (i >= j)
    else:
        tri = (i < j) if node.attr("exclusive") else (i <= j)
    dtype = ctx.mx_dtype(ctx.dtype(x))
    if dtype not in ("float32", "float64", "float16"):
        raise ctx.unsupported(node, f"a running sum of {dtype} (MXNet's dot is float-only)")
    matrix = ctx.new_param(tri.astype(dtype), "triangle")
    data = ctx.input(x)
    if axis == rank - 1:
        ctx.emit_op(node, "dot", [data, matrix])
        return
    perm = [*range(axis), *range(axis + 1, rank), axis]
    inverse = [perm.index(k) for k in range(rank)]
    moved = ctx.op("transpose", [data], "to_last", axes=tuple(perm))
    summed = ctx.op("dot", [moved, matrix], "dot")
    ctx.emit_op(node, "transpose", [summed], axes=tuple(inverse))
