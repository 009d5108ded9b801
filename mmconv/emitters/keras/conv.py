"""Convolutions: ``layers.ConvND`` / ``DepthwiseConvND`` / ``ConvNDTranspose``, channels-last.

Kernels are transposed once, here (OIHW -> HWIO).  Explicit pads become
``padding='same'`` only where TensorFlow's SAME would put exactly the same
pixels (TF puts the odd one at the end; the IR's pads may not), else a
``ZeroPaddingND`` layer; ConvTranspose pads become a ``CroppingND``.  Keras
refuses strides with dilation: the stride-1 convolution is subsampled instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, channels_last, tuple_or_int
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(begin, end) padding of TensorFlow's SAME for one axis of static ``size``."""
    span = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def padding_mode(sizes: Sequence[int | None], kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int], begin: Sequence[int], end: Sequence[int]) -> str:
    """'valid', 'same' (only if exactly TF's SAME) or 'explicit'."""
    if not any(begin) and not any(end):
        return "valid"
    if any(s is None for s in sizes):
        return "explicit"
    same = [tf_same_pads(int(s), k, st, d)  # type: ignore[arg-type]
            for s, k, st, d in zip(sizes, kernel, strides, dilations, strict=True)]
    if same == list(zip(begin, end, strict=True)):
        return "same"
    return "explicit"


def pad_spec(begin: Sequence[int], end: Sequence[int]) -> str:
    """The ``padding``/``cropping`` argument of ZeroPaddingND/CroppingND."""
    pairs = tuple((int(b), int(e)) for b, e in zip(begin, end, strict=True))
    return literal(pairs[0] if len(pairs) == 1 else pairs)


def zero_pad(ctx: EmitContext, node: Node, x: str, begin: Sequence[int],
             end: Sequence[int]) -> str:
    """A named ``ZeroPaddingND`` layer in front of a window op; returns its variable."""
    n = len(begin)
    ident = ctx.ident(f"{node.name}_pad")
    ctx.line(f"{ident} = layers.ZeroPadding{n}D({pad_spec(begin, end)}, name={literal(ident)}"
             f"{ctx.dtype_kw(node.inputs[0])})({x})")
    return ident


def check_rank(ctx: EmitContext, node: Node, n: int) -> None:
    if n not in (1, 2, 3):
        raise ctx.unsupported(node, f"{n}-d windows (Keras has 1-, 2- and 3-d layers)")


@HANDLERS.register("Conv")
def emit_conv(ctx: EmitContext, node: Node) -> None:
    """ConvND (groups=), or DepthwiseConvND when every input channel is its own group."""
    x, w_name, b_name = node.inputs[0], node.inputs[1], node.input(2)
    w = ctx.need_weight(node, w_name, "the kernel")
    bias = ctx.need_weight(node, b_name, "the bias") if b_name else None
    n = w.ndim - 2
    check_rank(ctx, node, n)
    kernel = list(w.shape[2:])
    strides, dilations, begin, end = spatial_attrs(node, n)
    group = int(node.attr("group"))
    sizes = ctx.shape(x)[2:]
    mode = padding_mode(sizes, kernel, strides, dilations, begin, end)
    xs = ctx.cl(x)
    if mode == "explicit":
        xs = zero_pad(ctx, node, xs, begin, end)
    padding = "same" if mode == "same" else "valid"
    subsample = any(d > 1 for d in dilations) and any(s > 1 for s in strides)
    if subsample and padding == "same":
        xs = zero_pad(ctx, node, xs, begin, end)
        padding = "valid"
    layer_strides = [1] * n if subsample else strides
    out_ch, in_per_group = int(w.shape[0]), int(w.shape[1])
    channels = in_per_group * group
    name = ctx.out(node)
    common = (f"{tuple_or_int(kernel)}, strides={tuple_or_int(layer_strides)}, "
              f"padding={literal(padding)}, dilation_rate={tuple_or_int(dilations)}, "
              f"use_bias={bias is not None}")
    target = name if not subsample else ctx.ident(f"{node.name}_stride1")
    if group > 1 and in_per_group == 1:
        mult = out_ch // group
        expr = (f"layers.DepthwiseConv{n}D({common}, depth_multiplier={mult}, "
                f"name={literal(target)}{ctx.dtype_kw(x)})({xs})")
        k = w.reshape(channels, mult, *kernel).transpose(*range(2, 2 + n), 0, 1)
        params = [("depthwise_kernel", k)]
    else:
        groups = f", groups={group}" if group > 1 else ""
        expr = (f"layers.Conv{n}D({out_ch}, {common}{groups}, name={literal(target)}"
                f"{ctx.dtype_kw(x)})({xs})")
        params = [("kernel", w.transpose(*range(2, 2 + n), 1, 0))]
    if bias is not None:
        params.append(("bias", bias.reshape(-1)))
    layout = channels_last(ctx.rank(node.outputs[0]))
    if not subsample:
        ctx.define(node, expr, layout)
        ctx.set_weights(name, params)
        return
    ctx.line(f"{target} = {expr}")
    ctx.set_weights(target, params)
    steps = ", ".join(f"::{s}" for s in strides)
    ctx.define(node, f"{target}[:, {steps}, :]  # strides {tuple(strides)} with dilation",
               layout)


@HANDLERS.register("ConvTranspose")
def emit_conv_transpose(ctx: EmitContext, node: Node) -> None:
    """ConvNDTranspose with 'valid' padding and output_padding, then CroppingND for the pads.

    Keras's 'valid' transposed conv is the IR's without pads; the IR's pads cut
    the full result, so cropping them gives exactly the IR's output.
    """
    x, w_name, b_name = node.inputs[0], node.inputs[1], node.input(2)
    w = ctx.need_weight(node, w_name, "the kernel")
    bias = ctx.need_weight(node, b_name, "the bias") if b_name else None
    n = w.ndim - 2
    check_rank(ctx, node, n)
    if int(node.attr("group")) != 1:
        raise ctx.unsupported(node, "grouped transposed convolution (Keras has no groups "
                                    "for ConvNDTranspose)")
    strides, dilations, begin, end = spatial_attrs(node, n)
    if any(d > 1 for d in dilations):
        # TF has no dilated transposed conv on CPU: the same kernel with the holes
        # filled by zeros is exactly equivalent.
        spread = np.zeros((*w.shape[:2], *((k - 1) * d + 1 for k, d in
                                           zip(w.shape[2:], dilations, strict=True))), w.dtype)
        spread[(slice(None), slice(None), *(slice(None, None, d) for d in dilations))] = w
        w, dilations = spread, [1] * n
    out_pad = list(node.attr("output_padding")) or [0] * n
    kernel = list(w.shape[2:])
    out_ch = int(w.shape[1])
    name = ctx.out(node)
    # Always explicit: without it Keras makes a 'valid' output longer when k < stride.
    op_kw = f", output_padding={tuple_or_int(out_pad)}"
    xs = ctx.cl(x)
    expr = (f"layers.Conv{n}DTranspose({out_ch}, {tuple_or_int(kernel)}, "
            f"strides={tuple_or_int(strides)}, padding='valid'{op_kw}, "
            f"dilation_rate={tuple_or_int(dilations)}, use_bias={bias is not None}, "
            f"name={literal(name)}{ctx.dtype_kw(x)})({xs})")
    params = [("kernel", np.ascontiguousarray(w.transpose(*range(2, 2 + n), 1, 0)))]
    if bias is not None:
        params.append(("bias", bias.reshape(-1)))
    layout = channels_last(ctx.rank(node.outputs[0]))
    if not any(begin) and not any(end):
        ctx.define(node, expr, layout)
        ctx.set_weights(name, params)
        return
    ctx.line(f"{name} = {expr}")
    ctx.set_weights(name, params)
    crop = ctx.ident(f"{node.name}_crop")
    ctx.line(f"{crop} = layers.Cropping{n}D({pad_spec(begin, end)}, name={literal(crop)}"
             f"{ctx.dtype_kw(x)})({name})")
    ctx.alias(node, crop, layout)
