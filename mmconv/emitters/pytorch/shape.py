"""Shape ops: ``torch.cat``, ``flatten``/``reshape``, ``F.pad``, indexing, ``permute``.

Reshape targets are written with the static sizes the IR knows; a copied
dynamic dim (the batch) is read from the tensor at run time, so the dynamic
batch keeps working in eager mode and in TorchScript.
"""

from __future__ import annotations

from mmconv.emitters.base import norm_axis
from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


@HANDLERS.register("Concat")
def emit_concat(ctx: EmitContext, node: Node) -> None:
    parts = ", ".join(ctx.value(i) for i in node.inputs)
    axis = norm_axis(int(node.attr("axis")), ctx.rank(node.inputs[0]))
    ctx.assign(node, f"torch.cat([{parts}], dim={axis})")


@HANDLERS.register("Flatten")
def emit_flatten(ctx: EmitContext, node: Node) -> None:
    """ONNX Flatten: 2-D [prod(shape[:axis]), prod(shape[axis:])], row-major."""
    x = ctx.value(node.inputs[0])
    rank = ctx.rank(node.inputs[0])
    axis = norm_axis(int(node.attr("axis")), rank) if rank else 0
    if axis == 0:
        expr = f"{x}.reshape(1, -1)"
    elif axis == rank:
        expr = f"{x}.reshape(-1, 1)"
    elif axis == 1:
        expr = f"torch.flatten({x}, 1)"
    else:
        expr = f"torch.flatten(torch.flatten({x}, {axis}), 0, {axis - 1})"
    ctx.assign(node, expr)


@HANDLERS.register("Reshape")
def emit_reshape(ctx: EmitContext, node: Node) -> None:
    """0 copies the input's dim (static when known, else read at run time); -1 stays."""
    x_name = node.inputs[0]
    x = ctx.value(x_name)
    in_shape = ctx.shape(x_name)
    dims = []
    for i, d in enumerate(int(v) for v in node.attr("shape")):
        if d == 0:
            dims.append(str(in_shape[i]) if in_shape[i] is not None else f"{x}.shape[{i}]")
        else:
            dims.append(str(d))
    ctx.assign(node, f"{x}.reshape([{', '.join(dims)}])")


@HANDLERS.register("Transpose")
def emit_transpose(ctx: EmitContext, node: Node) -> None:
    perm = [int(p) for p in node.attr("perm")]
    ctx.assign(node, f"{ctx.value(node.inputs[0])}.permute({perm})")


@HANDLERS.register("Pad")
def emit_pad(ctx: EmitContext, node: Node) -> None:
    """F.pad lists pads from the last axis backwards; leading unpadded axes are left out
    (reflect/replicate pad only trailing axes)."""
    x = ctx.value(node.inputs[0])
    rank = ctx.rank(node.inputs[0])
    pads = [int(p) for p in node.attr("pads")]
    begin, end = pads[:rank], pads[rank:]
    first = next((i for i in range(rank) if begin[i] or end[i]), rank)
    if first == rank:
        ctx.assign(node, x)
        return
    order: list[int] = []
    for i in range(rank - 1, first - 1, -1):
        order += [begin[i], end[i]]
    mode = str(node.attr("mode"))
    if mode == "constant":
        ctx.assign(node, f"F.pad({x}, {order}, value={literal(float(node.attr('value')))})")
        return
    if rank - first > 3:
        raise ctx.unsupported(node, f"{mode} padding of {rank - first} trailing axes "
                              "(PyTorch pads at most 3)")
    ctx.assign(node, f"F.pad({x}, {order}, mode={literal(_PAD_MODES[mode])})")


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


@HANDLERS.register("Slice")
def emit_slice(ctx: EmitContext, node: Node) -> None:
    """Python indexing; a negative step (which PyTorch indexing lacks) becomes a flip of
    that axis and a positive step, with ONNX's clamping done at emit time."""
    x_name = node.inputs[0]
    shape = ctx.shape(x_name)
    rank = len(shape)
    starts, ends = list(node.attr("starts")), list(node.attr("ends"))
    axes = [norm_axis(int(a), rank) for a in node.attr("axes")] or list(range(len(starts)))
    steps = list(node.attr("steps")) or [1] * len(starts)
    index = [":"] * rank
    flips = []
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        size = shape[axis]
        if step > 0:
            index[axis] = _slice_text(start, end, step, size)
            continue
        flips.append(axis)
        if size is None:
            index[axis] = _mirrored_text(start, end, -step, f"{ctx.value(x_name)}.shape[{axis}]")
            continue
        start = _clamp(start + size if start < 0 else start, 0, size - 1)
        end = _clamp(end + size if end < 0 else end, -1, size - 1)
        # after flipping, element i sits at size - 1 - i
        index[axis] = _slice_text(size - 1 - start, size - 1 - end, -step, size)
    x = ctx.value(x_name)
    if flips:
        x = f"torch.flip({x}, {sorted(flips)})"
    while index and index[-1] == ":":
        index.pop()
    ctx.assign(node, f"{x}[{', '.join(index)}]" if index else x)


def _mirrored_text(start: int, end: int, step: int, size: str) -> str:
    """``a:b:c`` over the flipped axis of runtime length ``size`` for an ONNX slice with
    step ``-step`` (element i sits at size - 1 - i): start s >= 0 is -(s + 1) and end
    -m is m - 1, Python's clamping being ONNX's there; a start -k is k - 1 but capped at
    size - 1 (ONNX clamps it to the first element); an end e >= 0 is -(e + 1), with
    Python's empty ``:0`` written as such."""
    if start >= 0:
        a = f"{-(start + 1)}" if start + 1 < 2**31 - 1 else ""
    elif start == -1:
        a = ""
    else:
        a = f"min({-start - 1}, {size} - 1)"
    b = "" if -end - 1 >= 2**31 - 1 else str(-end - 1)  # end -m: m - 1, or all of it
    if end >= 0:
        b = str(-(end + 1))
    c = "" if step == 1 else f":{step}"
    return f"{a}:{b}{c}"


def _slice_text(start: int, end: int, step: int, size: int | None) -> str:
    """``a:b:c`` with defaults omitted; Python's clamping equals ONNX's for step > 0."""
    a = "" if start == 0 else str(start)
    b = "" if size is not None and end >= size else str(end)
    if size is None and end >= 2**31 - 1:
        b = ""
    c = "" if step == 1 else f":{step}"
    return f"{a}:{b}{c}"


@HANDLERS.register("Gather")
def emit_gather(ctx: EmitContext, node: Node) -> None:
    """Indexing along the axis (``x[:, idx]``, numpy's rule for the output shape); a
    weight table with runtime indices on axis 0 is an ``nn.Embedding``.  Negative
    weight indices are made non-negative at emit time, runtime ones at run time (with
    the axis length read from X when it is dynamic)."""
    x_name, idx_name = node.inputs[:2]
    rank = ctx.rank(x_name)
    axis = norm_axis(int(node.attr("axis")), rank)
    size = ctx.shape(x_name)[axis]
    table, idx = ctx.weight(x_name), ctx.weight(idx_name)
    if idx is not None and idx.ndim == 0:
        # Python indexing counts a negative index from the end, as ONNX does
        i = int(idx) + (size if int(idx) < 0 and size is not None else 0)
        ctx.assign(node, f"{ctx.value(x_name)}[{', '.join([':'] * axis + [str(i)])}]")
        return
    index = ctx.value(idx_name)
    if idx is None or (idx < 0).any():
        length = str(size) if size is not None else f"{ctx.value(x_name)}.shape[{axis}]"
        index = f"torch.where({index} < 0, {index} + {length}, {index})"
    if ctx.dtype(idx_name) != "int64":
        index = f"{index}.long()"
    if table is not None and axis == 0 and table.ndim == 2 and idx is None:
        layer = ctx.layer(node, f"nn.Embedding({table.shape[0]}, {table.shape[1]}"
                                f"{ctx.dtype_kw(x_name)})", {"weight": table})
        ctx.assign(node, f"{layer}({index})")
        return
    ctx.assign(node, f"{ctx.value(x_name)}[{', '.join([':'] * axis + [index])}]")


@HANDLERS.register("Expand")
def emit_expand(ctx: EmitContext, node: Node) -> None:
    """``expand`` to the output shape (-1 keeps a dynamic dim of X; with batch_like, the
    first dim is that tensor's batch, read at run time)."""
    dims = ["-1" if d is None else str(d) for d in ctx.shape(node.outputs[0])]
    if node.input(1):
        dims[0] = f"{ctx.value(node.input(1))}.shape[0]"
    ctx.assign(node, f"{ctx.value(node.inputs[0])}.expand([{', '.join(dims)}])")


@HANDLERS.register("Tile")
def emit_tile(ctx: EmitContext, node: Node) -> None:
    """``Tensor.repeat`` with one count per axis is numpy's tile."""
    reps = [int(r) for r in node.attr("repeats")]
    ctx.assign(node, f"{ctx.value(node.inputs[0])}.repeat({reps})")
