"""Shape ops with layout bookkeeping instead of transposes.

- Concat, Slice, Pad: axes/pads remapped to the Keras tensor's layout.
- Flatten of a channels-last map: a Keras Flatten whose column order is
  recorded (:class:`Flat`), so a following Dense permutes its weights instead.
- Reshape: a channels-last value stays channels-last when the reshape keeps
  the batch and channel axes (only spatial axes regroup); any other reshape
  needs the IR's element order, so the value is first brought back to it (a
  counted ``internal`` transpose).
- Transpose: no op; the value's layout changes, a Permute is written only where a
  consumer needs another layout.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import (
    HANDLERS,
    EmitContext,
    Flat,
    channels_last,
    identity,
    inverse,
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
    """No op of its own: the result is the input's Keras tensor with a different layout.

    A transpose is written only when a consumer needs the value in a layout it is not
    in (:meth:`EmitContext.get`).  So the boundary transposes a channels-last source
    brings into the IR (NHWC input -> NCHW, NCHW -> NHWC output) cancel against the
    Keras layers' own channels-last layout: Keras -> Keras carries none.
    """
    x = node.inputs[0]
    have = ctx.perm_of(x)
    perm = tuple(int(p) for p in node.attr("perm"))
    # keras_x = ir_x.transpose(have) and ir_out = ir_x.transpose(perm), so
    # keras_x = ir_out.transpose(inverse(perm)[have])
    back = inverse(perm)
    ctx.alias(node, ctx.var(x), tuple(back[h] for h in have))


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
