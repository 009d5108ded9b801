"""Reductions as MXNet's ``sum``/``mean``/``max``/``min``/``prod`` (axes + ``keepdims``).

- ReduceL2: ``sqrt(sum(square(x)))``.
- ReduceLogSumExp: ``log(sum(exp(x - m))) + m`` with ``m`` the max over the
  axes (MXNet has no such operator; the shift keeps exp from overflowing).
- ArgMax/ArgMin: MXNet returns indices as floats: a ``Cast`` to the IR's
  int64 follows.  Ties go to the first index in both; ``select_last_index``
  reverses the axis first and maps the index back.
- CumSum: a product with a triangular matrix of ones over the axis, which is
  what MXNet 1.x's legacy operators can say: a constant for a static axis
  (``dot`` contracts the last axis; other axes are moved there and back with
  ``transpose``), built at run time from ``arange_like`` for a dynamic one.
"""

from __future__ import annotations

from typing import Any

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


@HANDLERS.register("ReduceL2")
def emit_reduce_l2(ctx: EmitContext, node: Node) -> None:
    """sqrt(sum(x^2)): MXNet's ``norm`` reads a 2-tuple of axes as matrix norms."""
    squares = ctx.op("square", [ctx.input(node.inputs[0])], "square")
    total = ctx.op("sum", [squares], "sum", axis=_axes(ctx, node),
                   keepdims=bool(node.attr("keepdims")))
    ctx.emit_op(node, "sqrt", [total])


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


def _triangle(i: Any, j: Any, exclusive: bool, reverse: bool) -> Any:
    """T[i, j]: whether x[i] counts in out[j] (numpy arrays or MXNet comparison names)."""
    if reverse:
        return (i > j) if exclusive else (i >= j)
    return (i < j) if exclusive else (i <= j)


_COMPARE = {(False, False): "broadcast_lesser_equal", (True, False): "broadcast_lesser",
            (False, True): "broadcast_greater_equal", (True, True): "broadcast_greater"}


def _cumsum_dynamic(ctx: EmitContext, node: Node, axis: int) -> None:
    """A running sum along a dynamic axis (the frontends number the batch this way): the
    triangle is built at run time from ``arange_like`` indices, the axis moved first and
    the rest flattened, so one ``dot`` sums and ``reshape_like`` restores the shape."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    data = ctx.input(x)
    perm = [axis, *range(axis), *range(axis + 1, rank)]
    if axis != 0:
        data = ctx.op("transpose", [data], "to_front", axes=tuple(perm))
    flat = ctx.op("Reshape", [data], "flat", shape=(0, -1))
    index = ctx.op("_contrib_arange_like", [data], "index", axis=0)
    rows = ctx.op("Reshape", [index], "i", shape=(-1, 1))
    cols = ctx.op("Reshape", [index], "j", shape=(1, -1))
    key = (bool(node.attr("exclusive")), bool(node.attr("reverse")))
    tri = ctx.op(_COMPARE[key], [rows, cols], "triangle")
    summed = ctx.op("dot", [tri, flat], "dot", transpose_a=True)
    if axis == 0:
        ctx.emit_op(node, "reshape_like", [summed, data])
        return
    shaped = ctx.op("reshape_like", [summed, data], "shaped")
    inverse = [perm.index(k) for k in range(rank)]
    ctx.emit_op(node, "transpose", [shaped], axes=tuple(inverse))


@HANDLERS.register("CumSum")
def emit_cumsum(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = int(node.attr("axis")) % rank
    size = ctx.shape(x)[axis]
    if size is None:
        _cumsum_dynamic(ctx, node, axis)
        return
    n = int(size)
    i, j = np.indices((n, n))
    # out[j] = sum_i x[i] * T[i, j]
    tri = _triangle(i, j, bool(node.attr("exclusive")), bool(node.attr("reverse")))
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
