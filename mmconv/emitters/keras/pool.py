"""Pooling: ``MaxPoolingND`` / ``AveragePoolingND`` / global pools, channels-last.

Keras pools have no explicit pads, no ceil mode and no count_include_pad, so:
pads equal to TF's SAME use ``padding='same'`` (exactly equivalent); other pads
and ceil mode's extra end are padded explicitly (the dtype's lowest value for
max, which never wins; zeros for average) and the average is corrected by a
constant factor map (window size / counted positions, computed at emit time)
wherever the IR's divisor differs from Keras's full-window one.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, channels_last, tuple_or_int
from mmconv.emitters.keras.conv import check_rank, padding_mode, zero_pad
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs


def _divisor_factor(sizes: list[int], outs: list[int], kernel: list[int], strides: list[int],
                    begin: list[int], end: list[int], include_pad: bool) -> np.ndarray:
    """prod(kernel) / (positions the IR counts) per output position."""
    per_axis = []
    for size, out, k, s, pb, pe in zip(sizes, outs, kernel, strides, begin, end, strict=True):
        lo, hi = (-pb, size + pe) if include_pad else (0, size)
        counts = [sum(1 for j in range(o * s - pb, o * s - pb + k) if lo <= j < hi)
                  for o in range(out)]
        per_axis.append(np.asarray(counts, dtype=np.float64))
    count = np.ones(outs)
    for i, c in enumerate(per_axis):
        shape = [1] * len(outs)
        shape[i] = len(c)
        count = count * c.reshape(shape)
    return float(np.prod(kernel)) / count


@HANDLERS.register("MaxPool", "AveragePool")
def emit_pool(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    kernel = [int(k) for k in node.attr("kernel_shape")]
    n = len(kernel)
    check_rank(ctx, node, n)
    strides, dilations, begin, end = spatial_attrs(node, n)
    if any(d != 1 for d in dilations):
        raise ctx.unsupported(node, "dilated pooling (Keras pools have no dilation)")
    is_max = node.op == "MaxPool"
    include_pad = not is_max and bool(node.attr("count_include_pad"))
    sizes_opt = ctx.shape(x)[2:]
    outs_opt = ctx.shape(node.outputs[0])[2:]
    xs = ctx.cl(x)
    name = ctx.out(node)
    cls = f"{'Max' if is_max else 'Average'}Pooling{n}D"
    layout = channels_last(ctx.rank(node.outputs[0]))
    mode = padding_mode(sizes_opt, kernel, strides, dilations, begin, end)
    if (mode != "valid" or node.attr("ceil_mode")) and any(s is None for s in sizes_opt):
        raise ctx.unsupported(node, "pads or ceil_mode need static spatial sizes")
    sizes = [int(s) for s in sizes_opt if s is not None]
    outs = [int(o) for o in outs_opt if o is not None]
    extra = [0] * n
    if sizes and len(sizes) == n:
        extra = [max(0, (o - 1) * s + k - (size + pb + pe))
                 for o, s, k, size, pb, pe in zip(outs, strides, kernel, sizes, begin, end,
                                                  strict=True)]
    if mode == "same" and (any(extra) or include_pad):
        mode = "explicit"
    if mode == "valid" and any(extra):
        mode = "explicit"
    window = f"{tuple_or_int(kernel)}, strides={tuple_or_int(strides)}"
    if mode in ("valid", "same"):
        ctx.define(node, f"layers.{cls}({window}, padding={literal(mode)}, "
                         f"name={literal(name)}{ctx.dtype_kw(x)})({xs})", layout)
        return
    ends = [e + x_ for e, x_ in zip(end, extra, strict=True)]
    if is_max:
        lowest = float(np.finfo(np.dtype(ctx.dtype(x))).min)
        ident = ctx.ident(f"{node.name}_pad")
        widths = [[0, 0], *([b, e] for b, e in zip(begin, ends, strict=True)), [0, 0]]
        ctx.line(f"{ident} = ops.pad({xs}, {literal(widths)}, constant_values={literal(lowest)})"
                 "  # padding never wins the max")
        ctx.define(node, f"layers.{cls}({window}, padding='valid', name={literal(name)}"
                         f"{ctx.dtype_kw(x)})({ident})", layout)
        return
    padded = zero_pad(ctx, node, xs, begin, ends)
    factor = _divisor_factor(sizes, outs, kernel, strides, begin, end, include_pad)
    pool_expr = (f"layers.{cls}({window}, padding='valid', name={literal(name)}"
                 f"{ctx.dtype_kw(x)})({padded})")
    if np.all(factor == 1.0):
        ctx.define(node, pool_expr, layout)
        return
    ctx.line(f"{name} = {pool_expr}")
    fixed = ctx.ident(f"{node.name}_divisor")
    const = factor.reshape(1, *outs, 1).astype(ctx.dtype(x))
    ctx.line(f"{fixed} = ops.multiply({name}, {ctx.const(const, 'divisor_factor')})"
             "  # divide by the positions the IR counts")
    ctx.alias(node, fixed, layout)


@HANDLERS.register("GlobalAveragePool", "GlobalMaxPool")
def emit_global_pool(ctx: EmitContext, node: Node) -> None:
    """Global pools with keepdims=True: [N, 1, 1, C] is the channels-last [N, C, 1, 1]."""
    x = node.inputs[0]
    n = ctx.rank(x) - 2
    check_rank(ctx, node, n)
    kind = "Average" if node.op == "GlobalAveragePool" else "Max"
    ctx.define(node, f"layers.Global{kind}Pooling{n}D(keepdims=True, "
                     f"name={literal(ctx.out(node))}{ctx.dtype_kw(x)})({ctx.cl(x)})",
               channels_last(ctx.rank(node.outputs[0])))


