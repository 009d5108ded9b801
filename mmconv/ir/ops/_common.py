"""Shape arithmetic shared by the op families' inference functions."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mmconv.errors import IRError
from mmconv.ir.core import Dim, Node, Shape, Value


def need(node: Node, inputs: list[Value | None], index: int) -> Value:
    """Input ``index`` of ``node``, which must be present."""
    value = inputs[index] if index < len(inputs) else None
    if value is None:
        raise IRError(f"node {node.name!r} ({node.op}): input {index} is missing")
    return value


def same(node: Node, inputs: list[Value | None]) -> list[tuple[str, Shape]]:
    """Output has the first input's dtype and shape (elementwise unary ops)."""
    x = need(node, inputs, 0)
    return [(x.dtype, x.shape)]


def norm_axis(node: Node, axis: int, rank: int) -> int:
    """``axis`` made non-negative; an error naming the node if out of range."""
    if not -rank <= axis < rank:
        raise IRError(f"node {node.name!r} ({node.op}): axis {axis} out of range for rank {rank}")
    return axis % rank


def broadcast(node: Node, shapes: Sequence[Shape]) -> Shape:
    """Numpy-style (ONNX multidirectional) broadcasting of static shapes."""
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for i in range(rank):
        dims = {s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0}
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise IRError(
                f"node {node.name!r} ({node.op}): shapes {[list(s) for s in shapes]} "
                "do not broadcast"
            )
        if known:
            out.append(known.pop())
        elif None in dims:
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def spatial_attrs(node: Node, n: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """strides, dilations, pads_begin, pads_end for ``n`` spatial axes, defaults filled in."""
    strides = list(node.attr("strides")) or [1] * n
    dilations = list(node.attr("dilations")) or [1] * n
    pads = list(node.attr("pads")) or [0] * (2 * n)
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n:
        raise IRError(
            f"node {node.name!r} ({node.op}): strides/dilations need {n} values and pads "
            f"{2 * n} (begin..., end...), got {strides}, {dilations}, {pads}"
        )
    if any(s <= 0 for s in strides) or any(d <= 0 for d in dilations) or any(p < 0 for p in pads):
        raise IRError(f"node {node.name!r} ({node.op}): strides/dilations must be > 0, pads >= 0")
    return strides, dilations, pads[:n], pads[n:]


def window_out(
    size: Dim, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int,
    ceil_mode: bool = False,
) -> Dim:
    """Output length of a sliding window (conv/pool) along one axis, as ONNX defines it.

    With ``ceil_mode`` a last partial window counts only if it starts inside the
    input or the begin padding (ONNX/onnxruntime, and CNTK's ``ceilOutDim``).
    """
    if size is None:
        return None
    span = (kernel - 1) * dilation + 1
    total = size + pad_begin + pad_end - span
    if total < 0:
        return 0
    if not ceil_mode:
        return total // stride + 1
    out = math.ceil(total / stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out
