"""Reductions over axes (ONNX Reduce*, ArgMax/ArgMin) and the running sum CumSum.

Axes are static attributes (ONNX moved them to an input in opsets 13/18; the
IR keeps them static because every frontend knows them when it converts, and
the emitter picks the form its target opset wants).
"""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import need, norm_axis
from mmconv.ir.registry import Attr, op

_REDUCE_ATTRS = {
    "axes": Attr("ints", (), "the axes to reduce (negative counts from the end); empty "
                 "means every axis"),
    "keepdims": Attr("bool", True, "keep each reduced axis with size 1"),
}


def _reduced_axes(node: Node, rank: int) -> list[int]:
    axes = [norm_axis(node, a, rank) for a in node.attr("axes")] or list(range(rank))
    if len(set(axes)) != len(axes):
        raise IRError(f"node {node.name!r} ({node.op}): axes {list(node.attr('axes'))} repeat")
    return axes


def _infer_reduce(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    axes = set(_reduced_axes(node, x.rank))
    if node.attr("keepdims"):
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return [(x.dtype, shape)]


_REDUCE = {
    "ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "maximum", "ReduceMin": "minimum",
    "ReduceProd": "product", "ReduceLogSumExp": "log(sum(exp(X)))",
    "ReduceL2": "Euclidean norm sqrt(sum(X^2))",
}
for _name, _what in _REDUCE.items():
    op(_name, onnx=_name, inputs=["X"], attrs=_REDUCE_ATTRS,
       doc=f"""The {_what} of X over ``axes`` (all axes when empty), as ONNX {_name}
       with noop_with_empty_axes=0.""")(_infer_reduce)


def _infer_arg(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    axis = norm_axis(node, node.attr("axis"), x.rank)
    if node.attr("keepdims"):
        shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i != axis)
    return [("int64", shape)]


_ARG_ATTRS = {
    "axis": Attr("int", 0, "the axis searched"),
    "keepdims": Attr("bool", True, "keep the searched axis with size 1"),
    "select_last_index": Attr("bool", False, "on ties, the last index instead of the first"),
}
op("ArgMax", onnx="ArgMax", inputs=["X"], attrs=_ARG_ATTRS,
   doc="""int64 index of the largest element along ``axis`` (the first one on ties unless
   select_last_index), as ONNX ArgMax.""")(_infer_arg)
op("ArgMin", onnx="ArgMin", inputs=["X"], attrs=_ARG_ATTRS,
   doc="""int64 index of the smallest element along ``axis`` (the first one on ties unless
   select_last_index), as ONNX ArgMin.""")(_infer_arg)


@op(
    "CumSum",
    onnx="CumSum",
    inputs=["X"],
    attrs={
        "axis": Attr("int", doc="the axis summed along"),
        "exclusive": Attr("bool", False, "leave the current element out of its own sum"),
        "reverse": Attr("bool", False, "sum from the end of the axis"),
    },
    doc="""Running sum along ``axis``, as ONNX CumSum with the axis static. Frontends use it
    to number the entries of a dynamic axis (e.g. the batch index of each ROI).""",
)
def infer_cumsum(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    norm_axis(node, node.attr("axis"), x.rank)
    return [(x.dtype, x.shape)]
