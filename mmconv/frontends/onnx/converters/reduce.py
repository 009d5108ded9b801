"""Reductions (axes an attribute until opset 13 for ReduceSum, 18 for the others, an input
after) and ArgMax/ArgMin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters._util import ints

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode

#: ONNX reduction -> (IR op, the unary op applied first, the one applied after)
_REDUCE = {
    "ReduceMean": ("ReduceMean", None, None), "ReduceSum": ("ReduceSum", None, None),
    "ReduceMax": ("ReduceMax", None, None), "ReduceMin": ("ReduceMin", None, None),
    "ReduceProd": ("ReduceProd", None, None), "ReduceL2": ("ReduceL2", None, None),
    "ReduceLogSumExp": ("ReduceLogSumExp", None, None),
    "ReduceL1": ("ReduceSum", "Abs", None), "ReduceSumSquare": ("ReduceSum", "Square", None),
    "ReduceLogSum": ("ReduceSum", None, "Log"),
}


def _reduce(ctx: OnnxContext, node: OnnxNode, axes: tuple[int, ...] | None) -> None:
    op, before, after = _REDUCE[node.op]
    x = ctx.x(node, 0)
    keepdims = bool(node.attr("keepdims", 1))
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            ctx.set(node, x)
            return
        axes = ()
    if before == "Abs":
        x = ctx.add("Abs", [x], f"{node.name}/abs")
    elif before == "Square":
        x = ctx.add("Mul", [x, x], f"{node.name}/square")
    name = f"{node.name}/reduce" if after else node.name
    y = ctx.add(op, [x], name, axes=axes, keepdims=keepdims)
    if after:
        y = ctx.add(after, [y], node.name)
    ctx.set(node, y)


def _attr_axes(ctx: OnnxContext, node: OnnxNode) -> None:
    axes = node.attr("axes")
    _reduce(ctx, node, ints(axes) if axes is not None else None)


def _input_axes(ctx: OnnxContext, node: OnnxNode) -> None:
    axes = ctx.need_static(node, 1, "the axes")
    _reduce(ctx, node, ints(axes.reshape(-1)) if axes is not None else None)


for _op in _REDUCE:
    CONVERTERS.register(_op, since=1)(_attr_axes)
    CONVERTERS.register(_op, since=13 if _op == "ReduceSum" else 18)(_input_axes)


def _arg(op: str):
    def convert(ctx: OnnxContext, node: OnnxNode) -> None:
        ctx.simple(node, op, 1, axis=int(node.attr("axis", 0)),
                   keepdims=bool(node.attr("keepdims", 1)),
                   select_last_index=bool(node.attr("select_last_index", 0)))

    convert.__name__ = f"convert_{op.lower()}"
    return convert


CONVERTERS.register("ArgMax", since=1)(_arg("ArgMax"))
CONVERTERS.register("ArgMin", since=1)(_arg("ArgMin"))
