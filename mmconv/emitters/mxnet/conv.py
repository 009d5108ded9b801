"""Conv and ConvTranspose as MXNet ``Convolution`` / ``Deconvolution``.

The IR's OIHW kernel (and ``[C_in, C_out/group, ...]`` transposed kernel) is
MXNet's weight layout already, so weights pass through untouched.  MXNet pads
symmetrically (one ``pad`` per spatial axis): pads that differ between the
two ends (TensorFlow-style "same" with stride 2) become an explicit ``Pad``
of the difference in front (:func:`pad_spatial`), the symmetric part stays on
the layer.  A transposed convolution with unequal pads is computed unpadded
and cropped with ``slice`` (the IR's ``output_padding`` becomes MXNet's
``adj`` where the crop needs rows past the unpadded output).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext, Entry
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs

#: float32's lowest value: the constant a max pool's explicit padding is filled with
#: (MXNet's attribute parser has no spelling of -inf that every operator takes).
LOWEST = -3.4028234663852886e38


def pad_spatial(ctx: EmitContext, x: str, entry: Entry, begins: list[int], ends: list[int],
                mode: str = "constant", value: float = 0.0) -> Entry:
    """``entry`` (IR value ``x``, [N, C, *spatial]) padded on its spatial axes."""
    return pad_axes(ctx, x, entry, [0, 0, *begins], [0, 0, *ends], mode, value)


def _spec(dims: Sequence[int | None], keep_batch: bool) -> tuple[int, ...]:
    """A ``Reshape`` target: static dims as they are, a dynamic batch (axis 0) as 0 (copy)
    when ``keep_batch``, one other dynamic dim as -1."""
    out = []
    for i, d in enumerate(dims):
        out.append(int(d) if d is not None else (0 if i == 0 and keep_batch else -1))
    return tuple(out)


def pad_axes(ctx: EmitContext, x: str, entry: Entry, begins: Sequence[int],
             ends: Sequence[int], mode: str = "constant", value: float = 0.0) -> Entry:
    """``entry`` (IR value ``x``) padded by ``begins``/``ends`` (one per axis).

    MXNet's ``Pad`` takes only 4-D and 5-D tensors and pads only their axes from 2
    on.  Other tensors are viewed that way by a ``Reshape``: the axes before the
    first padded one become the two leading axes (merged or filled with 1s), the
    padded run of at most three axes follows (a 1 in front when it is one axis),
    and a ``Reshape`` restores the IR's rank after the pad.
    """
    rank = len(begins)
    padded = [i for i in range(rank) if begins[i] or ends[i]]
    if not padded:
        return entry
    first = padded[0]
    run = rank - first
    if run > 3:
        raise ctx.unsupported(None, f"padding {run} trailing axes (MXNet Pad pads at most 3)")
    b, e = [int(v) for v in begins[first:]], [int(v) for v in ends[first:]]
    shape = ctx.shape(x)
    direct = first >= 2 and rank in (4, 5)
    if not direct:
        lead = list(shape[:first])
        if first == 0:
            view: list[int | None] = [1, 1]
        elif first == 1:
            view = [lead[0], 1]
        elif first == 2:
            view = lead
        else:
            rest = lead[1:]
            if None in rest:
                raise ctx.unsupported(None, "padding behind dynamic axes")
            view = [lead[0], int(np.prod(rest))]  # type: ignore[arg-type]
        segment = list(shape[first:])
        if run == 1:
            segment, b, e = [1, *segment], [0, *b], [0, *e]
        entry = ctx.op("Reshape", [entry], "view", shape=_spec(view + segment, first > 0))
    width: list[int] = [0, 0, 0, 0]
    for pb, pe in zip(b, e, strict=True):
        width += [pb, pe]
    entry = ctx.op("Pad", [entry], "pad", mode=mode, pad_width=tuple(width),
                   constant_value=float(value) if mode == "constant" else None)
    if not direct:
        out = [None if d is None else int(d) + int(pb) + int(pe)
               for d, pb, pe in zip(shape, begins, ends, strict=True)]
        entry = ctx.op("Reshape", [entry], "unview", shape=_spec(out, first > 0))
    return entry


def split_pads(begins: list[int], ends: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(symmetric pad for the layer, extra begin pad, extra end pad) per axis."""
    sym = [min(b, e) for b, e in zip(begins, ends, strict=True)]
    return (sym, [b - s for b, s in zip(begins, sym, strict=True)],
            [e - s for e, s in zip(ends, sym, strict=True)])


def _bias(ctx: EmitContext, node: Node) -> list[Entry]:
    bias = node.input(2)
    if not bias:
        return []
    if ctx.is_weight(bias):
        return [ctx.param(bias, lambda a: a.reshape(-1), "flat")]
    return [ctx.input(bias)]


@HANDLERS.register("Conv")
def emit_conv(ctx: EmitContext, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    n = ctx.rank(w) - 2
    if n not in (1, 2, 3):
        raise ctx.unsupported(node, f"{n}-D convolution (MXNet has 1-D, 2-D and 3-D)")
    strides, dilations, begins, ends = spatial_attrs(node, n)
    sym, extra_b, extra_e = split_pads(begins, ends)
    data = pad_spatial(ctx, x, ctx.input(x), extra_b, extra_e)
    kernel = tuple(int(d) for d in ctx.static_shape(w)[2:])
    group = int(node.attr("group"))
    weight = ctx.input(w)
    bias = _bias(ctx, node)
    ctx.emit_op(node, "Convolution", [data, weight, *bias], kernel=kernel,
                stride=tuple(strides), dilate=tuple(dilations), pad=tuple(sym),
                num_filter=int(ctx.static_shape(w)[0]), num_group=group,
                no_bias=not bias)


@HANDLERS.register("ConvTranspose")
def emit_conv_transpose(ctx: EmitContext, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    n = ctx.rank(w) - 2
    if n not in (1, 2, 3):
        raise ctx.unsupported(node, f"{n}-D transposed convolution (MXNet has 1-D, 2-D and 3-D)")
    strides, dilations, begins, ends = spatial_attrs(node, n)
    out_pad = [int(p) for p in (node.attr("output_padding") or [0] * n)]
    wshape = ctx.static_shape(w)
    group = int(node.attr("group"))
    kernel = tuple(int(d) for d in wshape[2:])
    inputs = [ctx.input(x), ctx.input(w)]
    bias = _bias(ctx, node)
    common = {"kernel": kernel, "stride": tuple(strides), "dilate": tuple(dilations),
              "num_filter": int(wshape[1]) * group, "num_group": group}
    if begins == ends:
        ctx.emit_op(node, "Deconvolution", [*inputs, *bias], pad=tuple(begins),
                    adj=tuple(out_pad), no_bias=not bias, **common)
        return
    # unpadded: F = (in-1)*s + d*(k-1) + 1 rows; the IR keeps [b, F - e + op)
    adj = [max(0, op - e) for op, e in zip(out_pad, ends, strict=True)]
    full = ctx.op("Deconvolution", [*inputs, *bias], "full", pad=(0,) * n, adj=tuple(adj),
                  no_bias=not bias, **common)
    out_shape = ctx.shape(node.outputs[0])
    starts = (None, None, *begins)
    stops = (None, None, *(b + int(d) for b, d in zip(begins, out_shape[2:], strict=True)))  # type: ignore[arg-type]
    ctx.emit_op(node, "slice", [full], begin=starts, end=stops)
