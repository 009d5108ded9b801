"""Shape manipulation: flatten, reshape, transpose, concatenate."""

from __future__ import annotations

import math

from mmconv.errors import IRError
from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import need, norm_axis
from mmconv.ir.registry import Attr, op


def _prod(dims: tuple) -> int | None:
    return None if any(d is None for d in dims) else math.prod(dims)


@op(
    "Flatten",
    onnx="Flatten",
    inputs=["X"],
    attrs={"axis": Attr("int", 1, "axes before it form the first output axis")},
    doc="""Reshape to 2-D [prod(shape[:axis]), prod(shape[axis:])] in row-major
    (C) order.""",
)
def infer_flatten(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    axis = node.attr("axis")
    if not 0 <= axis <= x.rank:
        raise IRError(f"node {node.name!r} (Flatten): axis {axis} out of range")
    return [(x.dtype, (_prod(x.shape[:axis]) if axis else 1, _prod(x.shape[axis:])))]


@op(
    "Reshape",
    onnx="Reshape",
    inputs=["X"],
    attrs={"shape": Attr("ints", doc="target shape; 0 copies the input's dim, -1 is inferred")},
    doc="""Row-major reshape to a static target shape (ONNX Reshape with allowzero=0,
    the shape given as an attribute).""",
)
def infer_reshape(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    target = list(node.attr("shape"))
    out: list[int | None] = []
    for i, d in enumerate(target):
        if d == 0:
            if i >= x.rank:
                raise IRError(f"node {node.name!r} (Reshape): 0 at axis {i} beyond input rank")
            out.append(x.shape[i])
        elif d < -1:
            raise IRError(f"node {node.name!r} (Reshape): invalid dim {d}")
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise IRError(f"node {node.name!r} (Reshape): more than one -1 in {target}")
    total = _prod(x.shape)
    if -1 in out:
        rest = [d for d in out if d != -1]
        known = _prod(tuple(rest))
        idx = out.index(-1)
        if total is not None and known:
            if total % known:
                raise IRError(f"node {node.name!r} (Reshape): {list(x.shape)} -> {target}")
            out[idx] = total // known
        elif x.shape and x.shape[0] is None and None in rest:
            out[idx] = _prod(x.shape[1:]) // (_prod(tuple(d for d in rest if d)) or 1)
        else:
            out[idx] = None
    elif total is not None and None not in out and _prod(tuple(out)) != total:
        raise IRError(f"node {node.name!r} (Reshape): {list(x.shape)} cannot become {target}")
    return [(x.dtype, tuple(out))]


@op(
    "Transpose",
    onnx="Transpose",
    inputs=["X"],
    attrs={"perm": Attr("ints", doc="output axis i is input axis perm[i]")},
    doc="""Permute axes: Y.shape[i] = X.shape[perm[i]].""",
)
def infer_transpose(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    perm = node.attr("perm")
    if sorted(perm) != list(range(x.rank)):
        raise IRError(f"node {node.name!r} (Transpose): perm {list(perm)} for rank {x.rank}")
    return [(x.dtype, tuple(x.shape[p] for p in perm))]


@op(
    "Concat",
    onnx="Concat",
    inputs=["inputs*"],
    attrs={"axis": Attr("int", doc="the axis to join along")},
    doc="""Join tensors of equal shape except along axis.""",
)
def infer_concat(node: Node, inputs: list[Value | None]) -> list[tuple]:
    vals = [need(node, inputs, i) for i in range(len(inputs))]
    if not vals:
        raise IRError(f"node {node.name!r} (Concat): no inputs")
    rank = vals[0].rank
    axis = norm_axis(node, node.attr("axis"), rank)
    out = list(vals[0].shape)
    for v in vals[1:]:
        if v.rank != rank:
            raise IRError(f"node {node.name!r} (Concat): inputs differ in rank")
        a, b = out[axis], v.shape[axis]
        out[axis] = None if a is None or b is None else a + b
    return [(vals[0].dtype, tuple(out))]
