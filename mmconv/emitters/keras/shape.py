"""Shape ops with layout bookkeeping instead of transposes.

- Concat, Slice, Pad: axes/pads remapped to the Keras tensor's layout.
- Flatten of a channels-last map: a Keras Flatten whose column order is
  recorded (:class:`Flat`), so a following Dense permutes its weights instead.
- Reshape: a channels-last value stays channels-last when the reshape keeps
  the batch and channel axes (only spatial axes regroup); any other reshape
  needs the IR's element order, so the value is first brought back to it (a
  counted ``internal`` transpose).
- Transpose: one Permute from wherever the value is to the IR's result.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import (
    HANDLERS,
    EmitContext,
    Flat,
    channels_last,
    compose,
    identity,
    operands,
)
from mmconv.ir.core import Node, Shape


def _keeps_batch(in_shape: Shape, target: Shape) -> bool:
    """Whether a reshape leaves axis 0 alone: equal static batch sizes, or equal static
    per-sample sizes (two dynamic batch axes alone prove nothing: [N, 3, 5] -> [-1, 5]
    merges the batch)."""
    if not in_shape or not target or in_shape[0] != target[0]:
        return False
    if in_shape[0] is not None:
        return True
    dims = [*in_shape[1:], *target[1:]]
    return all(d is not None for d in dims) and \
        int(np.prod(in_shape[1:], dtype=np.int64)) == int(np.prod(target[1:], dtype=np.int64))


def _reshape_expr(ctx: EmitContext, node: Node, x_expr: str, in_shape: Shape,
                  target: Shape) -> str:
    """``layers.Reshape`` when the batch axis is kept, else ``ops.reshape`` (-1 for it)."""
    rest = target[1:]
    if _keeps_batch(in_shape, target) and all(d is not None for d in rest):
        return (f"layers.Reshape({literal(tuple(int(d) for d in rest))}, "  # type: ignore[arg-type]
                f"name={literal(ctx.out(node))}{ctx.dtype_kw(node.inputs[0])})({x_expr})")
    spec = tuple(node.attr("shape")) if node.op == "Reshape" else ()
    copied = [i for i, d in enumerate(target) if d is None]
    if len(copied) == 2 and copied[0] == 0 and len(spec) == len(target) and all(
            spec[i] == 0 and i < len(in_shape) and in_shape[i] is None for i in copied):
        # batch and time copied in place ([N, T, 2, 5] -> [N, T, 10]): Keras infers T
        rest = tuple(-1 if d is None else int(d) for d in target[1:])
        return (f"layers.Reshape({literal(rest)}, name={literal(ctx.out(node))}"
                f"{ctx.dtype_kw(node.inputs[0])})({x_expr})")
    if sum(d is None for d in target) > 1:
        raise ctx.unsupported(node, f"reshape to {target} with more than one dynamic axis")
    dims = tuple(-1 if d is None else int(d) for d in target)
    return f"ops.reshape({x_expr}, {literal(dims)})"


@HANDLERS.register("Reshape")
def emit_reshape(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    in_shape, out_shape = ctx.shape(x), ctx.shape(node.outputs[0])
    layout = ctx.layout(x)
    rank = len(in_shape)
    if (rank >= 3 and layout == channels_last(rank) and len(out_shape) >= 2
            and out_shape[:2] == in_shape[:2] and in_shape[1] is not None
            and _keeps_batch(in_shape, out_shape)):
        target = (out_shape[0], *out_shape[2:], out_shape[1])
        held = (in_shape[0], *in_shape[2:], in_shape[1])
        ctx.define(node, _reshape_expr(ctx, node, ctx.var(x), held, target),
                   channels_last(len(out_shape)))
        return
    ctx.define(node, _reshape_expr(ctx, node, ctx.plain(x), in_shape, out_shape),
               identity(len(out_shape)))


@HANDLERS.register("Flatten")
def emit_flatten(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    shape = ctx.shape(x)
    axis = int(node.attr("axis"))
    axis = axis + len(shape) if axis < 0 else axis
    layout = ctx.layout(x)
    name = literal(ctx.out(node))
    if axis == 1:
        if (not isinstance(layout, Flat) and layout != identity(len(shape)) and layout[0] == 0
                and all(d is not None for d in shape[1:])):
            dims = [int(d) for d in shape[1:]]  # type: ignore[arg-type]
            order = np.arange(int(np.prod(dims))).reshape(dims)
            index = order.transpose([p - 1 for p in layout[1:]]).ravel()
            ctx.define(node, f"layers.Flatten(name={name}{ctx.dtype_kw(x)})({ctx.var(x)})",
                       Flat(tuple(int(i) for i in index), x))
            return
        ctx.define(node, f"layers.Flatten(name={name}{ctx.dtype_kw(x)})({ctx.plain(x)})",
                   identity(2))
        return
    out = ctx.shape(node.outputs[0])
    ctx.define(node, _reshape_expr(ctx, node, ctx.plain(x), shape, out),
               identity(2))


@HANDLERS.register("Transpose")
def emit_transpose(ctx: EmitContext, node: Node) -> None:
    """The IR's own transpose, composed with the input's layout: one op or none."""
    x = node.inputs[0]
    have = ctx.perm_of(x)
    perm = tuple(int(p) for p in node.attr("perm"))
    # keras_out = ir_x.transpose(perm) = keras_x.transpose(compose(have, perm))
    total = compose(have, perm)
    out_layout = identity(len(perm))
    if total == identity(len(perm)):
        ctx.alias(node, ctx.var(x), out_layout)
        return
    if total[0] == 0:
        expr = (f"layers.Permute({literal(total[1:])}, name={literal(ctx.out(node))}"
                f"{ctx.dtype_kw(x)})({ctx.var(x)})")
    else:
        expr = f"ops.transpose({ctx.var(x)}, {literal(total)})"
    ctx.define(node, expr, out_layout)


@HANDLERS.register("Concat")
def emit_concat(ctx: EmitContext, node: Node) -> None:
    """``layers.Concatenate`` on the axis's position in the shared layout."""
    for v in node.inputs:
        if ctx.runtime(v):
            ctx.perm_of(v)  # a Flat operand is brought to IR order first
    exprs, layout = operands(ctx, node, node.inputs)
    assert not isinstance(layout, Flat)
    rank = ctx.rank(node.outputs[0])
    axis = layout.index(int(node.attr("axis")) % rank)
    if all(ctx.runtime(v) for v in node.inputs) and len(exprs) > 1:
        expr = (f"layers.Concatenate(axis={axis}, name={literal(ctx.out(node))}"
                f"{ctx.dtype_kw(node.inputs[0])})([{', '.join(exprs)}])")
    else:
        expr = f"ops.concatenate([{', '.join(exprs)}], axis={axis})"
    ctx.define(node, expr, layout)


def _index(ctx: EmitContext, node: Node, x: str, per_axis: dict[int, slice]) -> str:
    """``x[...]`` text with a slice on the given Keras axes and ``:`` elsewhere."""
    parts = []
    last = max(per_axis) if per_axis else -1
    for k in range(last + 1):
        s = per_axis.get(k, slice(None))
        text = ":".join("" if v is None else str(v) for v in (s.start, s.stop)) + (
            f":{s.step}" if s.step not in (None, 1) else "")
        parts.append(text)
    return f"{x}[{', '.join(parts)}]"


@HANDLERS.register("Slice")
def emit_slice(ctx: EmitContext, node: Node) -> None:
    """Python slicing on the Keras tensor; static bounds resolved as ONNX clamps them."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    layout = ctx.perm_of(x)
    starts, ends = list(node.attr("starts")), list(node.attr("ends"))
    axes = [a % rank for a in node.attr("axes")] or list(range(len(starts)))
    steps = list(node.attr("steps")) or [1] * len(starts)
    shape = ctx.shape(x)
    per_axis = {}
    for a, start, end, step in zip(axes, starts, ends, steps, strict=True):
        dim = shape[a]
        if dim is not None:
            lo, hi, st = slice(start, end, step).indices(int(dim))
            s = slice(lo, None if (st < 0 and hi < 0) else hi, st)
        else:
            s = slice(start, end, step)
        per_axis[layout.index(a)] = s
    ctx.define(node, _index(ctx, node, ctx.var(x), per_axis), layout)


@HANDLERS.register("Pad")
def emit_pad(ctx: EmitContext, node: Node) -> None:
    """constant/reflect: ``ops.pad``; edge: the border slice repeated and concatenated."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    layout = ctx.perm_of(x)
    pads = list(node.attr("pads"))
    widths = [[int(pads[a]), int(pads[rank + a])] for a in layout]
    mode = node.attr("mode")
    ex = ctx.var(x)
    if mode == "constant":
        value = float(node.attr("value"))
        if not ctx.dtype(x).startswith("float"):
            value = int(value)  # type: ignore[assignment]
        ctx.define(node, f"ops.pad({ex}, {literal(widths)}, constant_values={literal(value)})",
                   layout)
        return
    if mode == "reflect":
        ctx.define(node, f"ops.pad({ex}, {literal(widths)}, mode='reflect')", layout)
        return
    cur = ex
    todo = [(k, b, e) for k, (b, e) in enumerate(widths) if b or e]
    for i, (k, b, e) in enumerate(todo):
        parts = []
        if b:
            parts.append(f"ops.repeat({_index(ctx, node, cur, {k: slice(0, 1)})}, {b}, axis={k})")
        parts.append(cur)
        if e:
            parts.append(f"ops.repeat({_index(ctx, node, cur, {k: slice(-1, None)})}, {e}, "
                         f"axis={k})")
        expr = f"ops.concatenate([{', '.join(parts)}], axis={k})"
        if i == len(todo) - 1:
            ctx.define(node, expr, layout)
            return
        step = ctx.ident(f"{node.name}_edge{k}")
        ctx.line(f"{step} = {expr}")
        cur = step
    ctx.alias(node, ex, layout)


def _after_drop(layout: tuple[int, ...], dropped: int) -> tuple[int, ...]:
    """The layout once IR axis ``dropped`` is gone (the others renumbered)."""
    return tuple(a - (a > dropped) for a in layout if a != dropped)


@HANDLERS.register("Gather")
def emit_gather(ctx: EmitContext, node: Node) -> None:
    """``ops.take`` along where the axis sits in the Keras tensor (a scalar or 1-D index
    keeps the layout; higher-rank indices take the IR's order); a weight table read
    at runtime indices along axis 0 is a ``layers.Embedding``.  Negative indices are
    made non-negative (at emit time for weights), as ``take`` needs them."""
    x, idx_name = node.inputs[:2]
    rank = ctx.rank(x)
    axis = int(node.attr("axis")) % rank
    size = ctx.shape(x)[axis]
    table, idx = ctx.weight(x), ctx.weight(idx_name)
    if idx is not None:
        if (idx < 0).any():
            if size is None:
                raise ctx.unsupported(node, "negative indices along a dynamic axis")
            idx = np.where(idx < 0, idx + size, idx).astype(idx.dtype)
        index = str(int(idx)) if idx.ndim == 0 else ctx.const(idx, "indices")
    else:
        if size is None:
            raise ctx.unsupported(node, "runtime indices along a dynamic axis")
        i = ctx.plain(idx_name)
        index = f"ops.where(ops.less({i}, 0), ops.add({i}, {size}), {i})"
    if table is not None:
        if axis == 0 and table.ndim == 2 and idx is None:
            name = ctx.out(node)
            ctx.define(node, f"layers.Embedding({table.shape[0]}, {table.shape[1]}, "
                             f"name={literal(name)}{ctx.dtype_kw(x)})({index})",
                       identity(ctx.rank(node.outputs[0])))
            ctx.set_weights(name, [("embeddings", table)])
            return
        ctx.define(node, f"ops.take({ctx.const(table, 'table')}, {index}, axis={axis})",
                   identity(ctx.rank(node.outputs[0])))
        return
    idx_rank = ctx.rank(idx_name)
    if idx_rank <= 1:
        layout = ctx.perm_of(x)
        out_layout = _after_drop(layout, axis) if idx_rank == 0 else layout
        ctx.define(node, f"ops.take({ctx.var(x)}, {index}, axis={layout.index(axis)})",
                   out_layout)
        return
    ctx.define(node, f"ops.take({ctx.plain(x)}, {index}, axis={axis})",
               identity(ctx.rank(node.outputs[0])))


def _expand_to_batch(ctx: EmitContext, node: Node) -> None:
    """X broadcast to the static rest of the output, plus zeros [N, 1, ...] made from
    batch_like (zeros_like of its mean over the other axes: its values never matter)."""
    x, like = node.inputs[0], node.input(1)
    out = ctx.shape(node.outputs[0])
    static = (1, *(int(d) for d in out[1:]))  # type: ignore[arg-type]
    array = ctx.weight(x)
    if array is not None:
        ex = ctx.const(np.broadcast_to(array, static).astype(array.dtype), "value")
    else:
        ex = f"ops.broadcast_to({ctx.plain(x)}, {literal(static)})"
    layout = ctx.perm_of(like)
    batch_axis = layout.index(0)
    others = tuple(i for i in range(ctx.rank(like)) if i != batch_axis)
    lv = ctx.var(like)
    zeros = f"ops.zeros_like(ops.mean({lv}, axis={literal(others)}))" if others else \
        f"ops.zeros_like({lv})"
    ones = (-1,) + (1,) * (len(out) - 1)
    zeros = f"ops.cast(ops.reshape({zeros}, {literal(ones)}), {literal(ctx.dtype(x))})"
    ctx.define(node, f"ops.add({ex}, {zeros})", identity(len(out)))


@HANDLERS.register("Expand")
def emit_expand(ctx: EmitContext, node: Node) -> None:
    """``ops.broadcast_to`` when the output is static; with the dynamic batch kept from X,
    a broadcasting add of zeros (or of False for bools) of the other dims; with
    batch_like, zeros carrying that tensor's batch."""
    if node.input(1):
        _expand_to_batch(ctx, node)
        return
    x = node.inputs[0]
    out = ctx.shape(node.outputs[0])
    if ctx.rank(x) == len(out):
        layout = ctx.perm_of(x)
        ex = ctx.var(x)
    else:
        layout, ex = identity(len(out)), ctx.plain(x)
    target = [out[a] for a in layout]
    if all(d is not None for d in target):
        ctx.define(node, f"ops.broadcast_to({ex}, {literal(tuple(target))})", layout)
        return
    ones = tuple(1 if d is None else int(d) for d in target)
    dtype = ctx.dtype(x)
    if dtype == "bool":
        expr = f"ops.logical_or({ex}, ops.zeros({literal(ones)}, dtype='bool'))"
    else:
        expr = f"ops.add({ex}, ops.zeros({literal(ones)}, dtype={literal(dtype)}))"
    ctx.define(node, expr, layout)


@HANDLERS.register("Tile")
def emit_tile(ctx: EmitContext, node: Node) -> None:
    """``ops.tile`` with the repeats in the Keras tensor's axis order."""
    x = node.inputs[0]
    layout = ctx.perm_of(x)
    reps = [int(node.attr("repeats")[a]) for a in layout]
    ctx.define(node, f"ops.tile({ctx.var(x)}, {literal(tuple(reps))})", layout)
