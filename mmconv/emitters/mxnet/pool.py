"""Pooling as MXNet ``Pooling``: MaxPool, AveragePool and the global pools.

MXNet pools with one symmetric ``pad`` per axis and an output-size rule
(``pooling_convention``: ``valid`` floors, ``full`` ceils).  Its windows are
clipped to the input (max) and, for averages, divided by the clipped window
(``count_include_pad=False``) or by the window clipped to input + pad (True),
which is the IR's rule.  Plan per node:

- equal pads on both ends and the same output size as the IR: the layer alone;
- unequal pads: the padding goes explicit (``Pad`` with float32's lowest value
  for max, zeros for an average that counts padding) and the layer pads
  nothing; an average that must *not* count padding keeps the begin pad on the
  layer when MXNet's size rule then lands on the IR's size, else it is an
  explicitly padded average rescaled per output position by a constant
  (:func:`_average_excluding_pads`).

MXNet pooling has no dilation: a dilated pool is one strided ``slice`` per kernel
tap, combined (:func:`_dilated_pool`).
"""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.emitters.mxnet.conv import LOWEST, pad_spatial
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs

_TYPE = {"MaxPool": "max", "AveragePool": "avg", "GlobalMaxPool": "max",
         "GlobalAveragePool": "avg"}


def mxnet_out(size: int, kernel: int, stride: int, pad: int, full: bool) -> int:
    """MXNet's pooled length (``Pooling`` shape inference, 1.9.1)."""
    span = size + 2 * pad - kernel
    return 1 + (math.ceil(span / stride) if full else span // stride)


@HANDLERS.register("MaxPool", "AveragePool")
def emit_pool(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    kernel = [int(k) for k in node.attr("kernel_shape")]
    n = len(kernel)
    if n not in (1, 2, 3) or ctx.rank(x) != n + 2:
        raise ctx.unsupported(node, f"{n}-D pooling (MXNet has 1-D, 2-D and 3-D)")
    strides, dilations, begins, ends = spatial_attrs(node, n)
    spatial, out = ctx.shape(x)[2:], ctx.shape(node.outputs[0])[2:]
    if None in spatial or None in out:
        raise ctx.unsupported(node, "pooling over dynamic spatial axes")
    want = [int(d) for d in out]  # type: ignore[arg-type]
    if any(d != 1 for d in dilations):
        _dilated_pool(ctx, node, kernel, strides, dilations, begins, ends,
                      [int(d) for d in spatial], want)  # type: ignore[arg-type]
        return
    is_max = node.op == "MaxPool"
    include = not is_max and bool(node.attr("count_include_pad"))

    def convention(pads: list[int], sizes: tuple[int, ...] | list[int]) -> str | None:
        for full in (False, True):
            if [mxnet_out(sizes[i], kernel[i], strides[i], pads[i], full)
                    for i in range(n)] == want:
                return "full" if full else "valid"
        return None

    data = ctx.input(x)
    pads = list(begins)
    conv = convention(pads, spatial) if begins == ends else None
    if conv is None and not is_max and not include:
        # padding must not be counted: on the layer (symmetric) when MXNet's size rule
        # fits, else an explicit zero pad and a per-position divisor correction
        conv = convention(pads, spatial)
        if conv is None:
            _average_excluding_pads(ctx, node, kernel, strides, begins, ends,
                                    [int(d) for d in spatial], want)  # type: ignore[arg-type]
            return
    elif conv is None:
        data = pad_spatial(ctx, x, data, begins, ends,
                           value=LOWEST if is_max else 0.0)
        padded = [s + b + e for s, b, e in zip(spatial, begins, ends, strict=True)]
        pads = [0] * n
        conv = convention(pads, padded)
        if conv is None:
            raise ctx.unsupported(node, "MXNet's pooling output size rules do not reach the IR's "
                                  f"{want}")
    ctx.emit_op(node, "Pooling", [data], kernel=tuple(kernel), pool_type=_TYPE[node.op],
                stride=tuple(strides), pad=tuple(pads), pooling_convention=conv,
                count_include_pad=include if not is_max else None)


def _average_excluding_pads(ctx: EmitContext, node: Node, kernel: list[int],
                            strides: list[int], begins: list[int], ends: list[int],
                            spatial: list[int], want: list[int]) -> None:
    """Average of the unpadded elements of each window, for pads MXNet cannot place.

    The input is zero-padded explicitly and average-pooled counting everything
    (MXNet divides by the window clipped to the padded input); a constant then
    rescales each output position from that divisor to the number of real input
    elements in its window (separable: one factor per axis, multiplied).
    """
    x = node.inputs[0]
    n = len(kernel)
    padded = [s + b + e for s, b, e in zip(spatial, begins, ends, strict=True)]
    factor = np.ones([1, 1, *want])
    for axis in range(n):
        start = np.arange(want[axis]) * strides[axis]
        stop = np.minimum(start + kernel[axis], padded[axis])
        lo, hi = begins[axis], begins[axis] + spatial[axis]
        valid = np.minimum(stop, hi) - np.maximum(start, lo)
        if (valid <= 0).any():
            raise ctx.unsupported(node, "an average pooling window that holds only padding")
        shape = [1] * (n + 2)
        shape[axis + 2] = want[axis]
        factor = factor * ((stop - start) / valid).reshape(shape)
    conv = None
    for full in (False, True):
        if [mxnet_out(padded[i], kernel[i], strides[i], 0, full) for i in range(n)] == want:
            conv = "full" if full else "valid"
            break
    if conv is None:
        raise ctx.unsupported(node, "MXNet's pooling output size rules do not reach the "
                              f"IR's {want}")
    data = pad_spatial(ctx, x, ctx.input(x), begins, ends)
    pooled = ctx.op("Pooling", [data], "sum_pool", kernel=tuple(kernel), pool_type="avg",
                    stride=tuple(strides), pad=(0,) * n, pooling_convention=conv,
                    count_include_pad=True)
    scale = ctx.new_param(factor.astype(ctx.mx_dtype(ctx.dtype(x))), "divisor_fix")
    ctx.emit_op(node, "broadcast_mul", [pooled, scale])


def _dilated_pool(ctx: EmitContext, node: Node, kernel: list[int], strides: list[int],
                  dilations: list[int], begins: list[int], ends: list[int],
                  spatial: list[int], want: list[int]) -> None:
    """Dilated pooling, which MXNet's ``Pooling`` lacks: one strided ``slice`` of the
    (explicitly padded) input per kernel tap, combined with ``broadcast_maximum`` or
    summed and divided by a constant per-position count of the taps that count
    (inside the input, or inside input + padding with ``count_include_pad``)."""
    x = node.inputs[0]
    n = len(kernel)
    is_max = node.op == "MaxPool"
    # room for every tap of every window (a ceil_mode window may overhang the end pad)
    extra = [max(e, (o - 1) * s + (k - 1) * d + 1 - (size + b))
             for e, o, s, k, d, size, b in zip(ends, want, strides, kernel, dilations, spatial,
                                               begins, strict=True)]
    data = pad_spatial(ctx, x, ctx.input(x), begins, extra, value=LOWEST if is_max else 0.0)
    taps = []
    for tap in np.ndindex(*kernel):
        starts = [t * d for t, d in zip(tap, dilations, strict=True)]
        stops = [b + (o - 1) * s + 1 for b, o, s in zip(starts, want, strides, strict=True)]
        taps.append(ctx.op("slice", [data], f"tap{'_'.join(map(str, tap))}",
                           begin=(None, None, *starts), end=(None, None, *stops),
                           step=(None, None, *strides)))
    if is_max:
        result = taps[0]
        for i, tap_entry in enumerate(taps[1:], 1):
            last = i == len(taps) - 1
            result = (ctx.emit_op(node, "broadcast_maximum", [result, tap_entry]) if last
                      else ctx.op("broadcast_maximum", [result, tap_entry], f"max{i}"))
        if len(taps) == 1:
            ctx.alias(node, result)
        return
    total = ctx.op("add_n", taps, "sum", num_args=len(taps)) if len(taps) > 1 else taps[0]
    include = bool(node.attr("count_include_pad"))
    count = np.ones([1, 1, *want])
    for axis in range(n):
        pos = (np.arange(want[axis])[:, None] * strides[axis]
               + np.arange(kernel[axis])[None, :] * dilations[axis])  # padded coordinates
        lo = 0 if include else begins[axis]
        hi = (begins[axis] + spatial[axis] + (ends[axis] if include else 0))
        valid = ((pos >= lo) & (pos < hi)).sum(axis=1)
        if (valid == 0).any():
            raise ctx.unsupported(node, "an average pooling window that holds only padding")
        shape = [1] * (n + 2)
        shape[axis + 2] = want[axis]
        count = count * valid.reshape(shape)
    scale = ctx.new_param((1.0 / count).astype(ctx.mx_dtype(ctx.dtype(x))), "divisor")
    ctx.emit_op(node, "broadcast_mul", [total, scale])


@HANDLERS.register("GlobalMaxPool", "GlobalAveragePool")
def emit_global_pool(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    n = ctx.rank(x) - 2
    if n not in (1, 2, 3):
        raise ctx.unsupported(node, f"global pooling of a rank-{n + 2} tensor")
    ctx.emit_op(node, "Pooling", [ctx.input(x)], kernel=(1,) * n, pool_type=_TYPE[node.op],
                global_pool=True)
