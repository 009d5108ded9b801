"""Shape ops: Concat, Flatten, Pad, Reshape, Slice, Transpose.

- Reshape: the IR's ``shape`` attribute has ONNX's meaning (``0`` copies the
  input's dim, ``-1`` is inferred), which is MXNet ``Reshape``'s for those two
  values; it is written as it is.
- Flatten: ``Flatten`` is MXNet's axis-1 flatten; other axes are a ``Reshape``.
- Slice: ``slice`` with one (begin, end, step) per axis, ``None`` for "all";
  indices are clamped at emit time as ONNX does wherever the dim is static; on a
  dynamic axis (step 1) MXNet clamps negative and too-large indices itself.
- Gather: ``take``; Expand: ``broadcast_to`` (``broadcast_like`` for the batch);
  Tile: ``tile``.
- Pad: ``Pad`` (constant, edge, reflect), which pads the trailing axes of a
  4-D or 5-D tensor; other ranks are viewed so by ``Reshape``
  (:func:`.conv.pad_axes`); a run of more than three padded axes is refused.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.emitters.mxnet.conv import pad_axes
from mmconv.ir.core import Node

#: An ``end`` at or above this means "to the end of the axis" (ONNX's INT_MAX idiom).
OPEN_END = 2**31 - 1


@HANDLERS.register("Concat")
def emit_concat(ctx: EmitContext, node: Node) -> None:
    names = [n for n in node.inputs if n]
    rank = ctx.rank(names[0])
    axis = int(node.attr("axis")) % rank
    ctx.emit_op(node, "Concat", [ctx.input(n) for n in names], dim=axis, num_args=len(names))


@HANDLERS.register("Transpose")
def emit_transpose(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, "transpose", [ctx.input(node.inputs[0])],
                axes=tuple(int(p) for p in node.attr("perm")))


@HANDLERS.register("Reshape")
def emit_reshape(ctx: EmitContext, node: Node) -> None:
    shape = tuple(int(d) for d in node.attr("shape"))
    if any(d < -1 for d in shape):
        raise ctx.unsupported(node, f"reshape target {list(shape)}")
    ctx.emit_op(node, "Reshape", [ctx.input(node.inputs[0])], shape=shape)


@HANDLERS.register("Flatten")
def emit_flatten(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    shape = ctx.shape(x)
    axis = int(node.attr("axis")) % (len(shape) + 1) if shape else 0
    if axis == 1:
        ctx.emit_op(node, "Flatten", [ctx.input(x)])
    elif axis == 0:
        ctx.emit_op(node, "Reshape", [ctx.input(x)], shape=(1, -1))
    else:
        rest = shape[axis:]
        if None in rest:
            raise ctx.unsupported(node, "flattening dynamic axes after the batch axis")
        ctx.emit_op(node, "Reshape", [ctx.input(x)],
                    shape=(-1, int(np.prod(rest))))  # type: ignore[arg-type]


def _clamp(start: int, end: int, step: int, dim: int) -> tuple[int | None, int | None]:
    """ONNX Slice clamping on a static dim; MXNet's (begin, end) (``None``: open)."""
    if start < 0:
        start += dim
    if end < 0 and end > -OPEN_END:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
        return start, (None if end >= dim else end)
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    return start, (None if end < 0 else end)


@HANDLERS.register("Slice")
def emit_slice(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    shape = ctx.shape(x)
    rank = len(shape)
    starts = [int(v) for v in node.attr("starts")]
    ends = [int(v) for v in node.attr("ends")]
    axes = [int(a) % rank for a in (node.attr("axes") or range(len(starts)))]
    steps = [int(s) for s in (node.attr("steps") or [1] * len(starts))]
    begin: list[int | None] = [None] * rank
    end: list[int | None] = [None] * rank
    step: list[int | None] = [None] * rank
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        if st == 0:
            raise ctx.unsupported(node, "slice step 0")
        dim = shape[a]
        if dim is None:
            # step 1: MXNet reads negative begin/end and clamps as Python (= ONNX) slicing
            # does, at run time (CNTK's sequence.last is [-1:] of the dynamic time axis)
            if st != 1:
                raise ctx.unsupported(node, f"a stepped slice of dynamic axis {a}")
            begin[a] = s or None
            end[a] = None if e >= OPEN_END else e
        else:
            begin[a], end[a] = _clamp(s, e, st, int(dim))
            if st > 0 and begin[a] == 0:
                begin[a] = None
        step[a] = st if st != 1 else None
    out = ctx.shape(node.outputs[0])
    if any(d == 0 for d in out):
        raise ctx.unsupported(node, "an empty slice")
    ctx.emit_op(node, "slice", [ctx.input(x)], begin=tuple(begin), end=tuple(end),
                step=tuple(step) if any(v is not None for v in step) else None)


@HANDLERS.register("Pad")
def emit_pad(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    rank = ctx.rank(x)
    pads = [int(p) for p in node.attr("pads")]
    begins, ends = pads[:rank], pads[rank:]
    mode = str(node.attr("mode"))
    padded = pad_axes(ctx, x, ctx.input(x), begins, ends, mode, float(node.attr("value")))
    ctx.alias(node, padded)


@HANDLERS.register("Tile")
def emit_tile(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, "tile", [ctx.input(node.inputs[0])],
                reps=tuple(int(r) for r in node.attr("repeats")))


@HANDLERS.register("Gather")
def emit_gather(ctx: EmitContext, node: Node) -> None:
    """``take`` (the IR's output shape).  Constant indices are made non-negative at emit
    time (``mode="clip"``); run-time ones use ``mode="wrap"``, which reads a negative
    index from the end.  A scalar index (stored as one element: MXNet has no 0-d arrays)
    is taken as ``[i]`` and the axis squeezed away."""
    x, indices = node.inputs
    rank = ctx.rank(x)
    axis = ctx.axis_attr(node, rank)
    idx = ctx.weight(indices)
    if idx is not None:
        dim = ctx.shape(x)[axis]
        if dim is None and (idx < 0).any():
            raise ctx.unsupported(node, "negative indices into a dynamic axis")
        fixed = np.where(idx < 0, idx + (dim or 0), idx).astype(idx.dtype)
        index = ctx.param(indices, lambda a: fixed.reshape(a.shape).astype(a.dtype),
                          "nonnegative")
        mode = "clip"
    else:
        index = ctx.input(indices)
        mode = "wrap"
    if ctx.rank(indices) == 0:
        taken = ctx.op("take", [ctx.input(x), index], "take", axis=axis, mode=mode)
        ctx.emit_op(node, "squeeze", [taken], axis=(axis,))
    else:
        ctx.emit_op(node, "take", [ctx.input(x), index], axis=axis, mode=mode)


@HANDLERS.register("Expand")
def emit_expand(ctx: EmitContext, node: Node) -> None:
    """``broadcast_to`` (its 0 keeps the input's dim) after bringing X to the output's
    rank; a ``batch_like`` input gives axis 0 with ``broadcast_like`` on that axis."""
    x = node.inputs[0]
    batch_like = node.input(1)
    out = ctx.shape(node.outputs[0])
    rank = len(out)
    target = list(node.attr("shape"))
    target = [1] * (rank - len(target)) + target
    data = ctx.full_rank(x, rank)
    xshape = (1,) * (rank - ctx.rank(x)) + tuple(ctx.shape(x))
    if batch_like:
        data = ctx.op("broadcast_like", [data, ctx.input(batch_like)], "batch",
                      lhs_axes=(0,), rhs_axes=(0,))
        target[0] = 0
    spec = []
    for t, d in zip(target, xshape, strict=True):
        t = int(t)
        spec.append(0 if t in (0, -1, 1) or t == d else t)
    if all(v == 0 for v in spec):
        ctx.alias(node, data)
        return
    ctx.emit_op(node, "broadcast_to", [data], shape=tuple(spec))
