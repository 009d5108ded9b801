"""Convolutions: Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D, Conv*Transpose.

Keras kernels are ``(*window, in, out)``; the IR's are ``(out, in/groups, *window)``
(``(in, out/groups, *window)`` for transposed convolutions), so kernels are
transposed once here.  TF's "same" padding is resolved to explicit pads with the
odd pixel at the END (``pad_total // 2`` before), exactly as TensorFlow computes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.frontends.keras.context import KerasContext, Tensor, channels_first, identity
from mmconv.frontends.keras.converters import CONVERTERS, cfg
from mmconv.frontends.keras.converters.activation import apply_activation
from mmconv.frontends.keras.model import Layer


def ints(value: object, n: int) -> list[int]:
    if isinstance(value, int):
        return [value] * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, int)
                                                                     for v in value):
        return list(value)
    raise UnsupportedError(f"expected {n} integers, got {value!r}")


def spatial_perm(layer: Layer, rank: int) -> tuple[int, ...]:
    """The layout that makes the IR value channels-first for this layer's data_format."""
    return identity(rank) if cfg(layer, "data_format") == "channels_first" else \
        channels_first(rank)


def same_pads(sizes: list[int | None], kernel: list[int], strides: list[int],
              dilations: list[int], where: str) -> list[int]:
    """TF "SAME": output ceil(in / stride); the extra padded pixel goes at the end."""
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        if size is None:
            raise UnsupportedError(f"{where}: 'same' padding on a dynamic spatial axis")
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _conv_pads(ctx: KerasContext, layer: Layer, x: str, kernel: list[int], strides: list[int],
               dilations: list[int]) -> list[int]:
    padding = str(cfg(layer, "padding", "valid")).lower()
    if padding == "valid":
        return [0] * (2 * len(kernel))
    if padding == "same":
        return same_pads(list(ctx.shape(x)[2:]), kernel, strides, dilations,
                         f"{ctx.path}: layer {layer.name!r}")
    if padding == "causal":  # Conv1D: all the padding before
        return [(kernel[0] - 1) * dilations[0], 0]
    raise UnsupportedError(f"{ctx.path}: layer {layer.name!r}: padding {padding!r}")


def _bias(ctx: KerasContext, layer: Layer, vars_: dict, n: int, dtype: str) -> list[str]:
    if "bias" not in vars_:
        return []
    return [ctx.weight(layer, "bias", ctx.read(layer, "bias", vars_["bias"]), dtype)]


def _finish(ctx: KerasContext, layer: Layer, y: str, perm: tuple[int, ...]) -> list[Tensor]:
    t = Tensor(y, perm)
    return [apply_activation(ctx, t, cfg(layer, "activation"), f"{layer.name}/activation")]


def _out_name(layer: Layer) -> str:
    act = cfg(layer, "activation")
    return layer.name if act in (None, "linear") else f"{layer.name}/conv"


@dataclass
class _Window:
    """What every convolution reads first: its input channels-first and its window."""

    n: int
    perm: tuple[int, ...]
    x: str
    cin: int
    kernel: list[int]
    strides: list[int]
    dilations: list[int]


def _window(ctx: KerasContext, layer: Layer, t: Tensor) -> _Window:
    rank = len(t.perm)
    n = rank - 2
    perm = spatial_perm(layer, rank)
    x = ctx.in_perm(t, perm, layer.name)
    return _Window(n, perm, x, ctx.shape(x)[1], ints(cfg(layer, "kernel_size"), n),
                   ints(cfg(layer, "strides", 1), n), ints(cfg(layer, "dilation_rate", 1), n))


@CONVERTERS.register("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D",
                     "Convolution3D")
def conv(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    win = _window(ctx, layer, xs[0])
    n, perm, x, cin = win.n, win.perm, win.x, win.cin
    kernel, strides, dilations = win.kernel, win.strides, win.dilations
    groups = int(cfg(layer, "groups", 1) or 1)
    filters = int(cfg(layer, "filters"))
    expected = [("kernel", (*kernel, cin // groups, filters))]
    if cfg(layer, "use_bias", True):
        expected.append(("bias", (filters,)))
    vars_ = ctx.variables(layer, expected)
    dtype = ctx.dtype(x)
    k = ctx.read(layer, "kernel", vars_["kernel"])
    w = ctx.weight(layer, "kernel", k.transpose(n + 1, n, *range(n)), dtype)
    pads = _conv_pads(ctx, layer, x, kernel, strides, dilations)
    y = ctx.add("Conv", [x, w, *_bias(ctx, layer, vars_, filters, dtype)], _out_name(layer),
                strides=strides, pads=pads, dilations=dilations, group=groups)
    return _finish(ctx, layer, y, perm)


@CONVERTERS.register("DepthwiseConv1D", "DepthwiseConv2D")
def depthwise(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    win = _window(ctx, layer, xs[0])
    n, perm, x, cin = win.n, win.perm, win.x, win.cin
    kernel, strides, dilations = win.kernel, win.strides, win.dilations
    mult = int(cfg(layer, "depth_multiplier", 1))
    expected = [("kernel", (*kernel, cin, mult))]
    if cfg(layer, "use_bias", True):
        expected.append(("bias", (cin * mult,)))
    vars_ = ctx.variables(layer, expected)
    dtype = ctx.dtype(x)
    k = ctx.read(layer, "kernel", vars_["kernel"])
    w = ctx.weight(layer, "kernel", _depthwise_kernel(k, n), dtype)
    pads = _conv_pads(ctx, layer, x, kernel, strides, dilations)
    y = ctx.add("Conv", [x, w, *_bias(ctx, layer, vars_, cin * mult, dtype)], _out_name(layer),
                strides=strides, pads=pads, dilations=dilations, group=cin)
    return _finish(ctx, layer, y, perm)


def _depthwise_kernel(k: np.ndarray, n: int) -> np.ndarray:
    """(*window, C, M) -> (C*M, 1, *window): output channel c*M + m reads input c."""
    window = k.shape[:n]
    cm = k.shape[n] * k.shape[n + 1]
    return k.reshape(*window, cm).transpose(n, *range(n)).reshape(cm, 1, *window)


@CONVERTERS.register("SeparableConv1D", "SeparableConv2D")
def separable(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    win = _window(ctx, layer, xs[0])
    n, perm, x, cin = win.n, win.perm, win.x, win.cin
    kernel, strides, dilations = win.kernel, win.strides, win.dilations
    mult = int(cfg(layer, "depth_multiplier", 1))
    filters = int(cfg(layer, "filters"))
    expected = [("depthwise_kernel", (*kernel, cin, mult)),
                ("pointwise_kernel", (*[1] * n, cin * mult, filters))]
    if cfg(layer, "use_bias", True):
        expected.append(("bias", (filters,)))
    vars_ = ctx.variables(layer, expected)
    dtype = ctx.dtype(x)
    dk = ctx.read(layer, "depthwise_kernel", vars_["depthwise_kernel"])
    pk = ctx.read(layer, "pointwise_kernel", vars_["pointwise_kernel"])
    dw = ctx.weight(layer, "depthwise_kernel", _depthwise_kernel(dk, n), dtype)
    pw = ctx.weight(layer, "pointwise_kernel", pk.transpose(n + 1, n, *range(n)), dtype)
    pads = _conv_pads(ctx, layer, x, kernel, strides, dilations)
    mid = ctx.add("Conv", [x, dw], f"{layer.name}/depthwise", strides=strides, pads=pads,
                  dilations=dilations, group=cin)
    y = ctx.add("Conv", [mid, pw, *_bias(ctx, layer, vars_, filters, dtype)], _out_name(layer))
    return _finish(ctx, layer, y, perm)


@CONVERTERS.register("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
                     "Convolution2DTranspose", "Deconvolution2D")
def conv_transpose(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    win = _window(ctx, layer, xs[0])
    n, perm, x, cin = win.n, win.perm, win.x, win.cin
    kernel, strides, dilations = win.kernel, win.strides, win.dilations
    filters = int(cfg(layer, "filters"))
    out_pad = cfg(layer, "output_padding")
    expected = [("kernel", (*kernel, filters, cin))]
    if cfg(layer, "use_bias", True):
        expected.append(("bias", (filters,)))
    vars_ = ctx.variables(layer, expected)
    dtype = ctx.dtype(x)
    k = ctx.read(layer, "kernel", vars_["kernel"])
    w = ctx.weight(layer, "kernel", k.transpose(n + 1, n, *range(n)), dtype)
    padding = str(cfg(layer, "padding", "valid")).lower()
    sizes = list(ctx.shape(x)[2:])
    begin, end, extra = [], [], []
    for i in range(n):
        size, kk, s, d = sizes[i], kernel[i], strides[i], dilations[i]
        if size is None:
            raise UnsupportedError(f"{ctx.path}: layer {layer.name!r}: dynamic spatial size")
        keff = (kk - 1) * d + 1
        op = None if out_pad is None else ints(out_pad, n)[i]
        # keras.src.utils.conv_utils.deconv_output_length
        if padding == "same":
            out = size * s if op is None else (size - 1) * s + keff - 2 * (keff // 2) + op
        else:
            out = size * s + max(keff - s, 0) if op is None else (size - 1) * s + keff + op
        full = (size - 1) * s + keff  # the transposed conv without any cropping
        total = full - out
        if total >= 0:
            b = total // 2 if padding == "same" else 0
            # TF crops like the forward conv's SAME padding: the extra pixel at the end
            begin.append(b)
            end.append(total - b)
            extra.append(0)
        else:
            begin.append(0)
            end.append(0)
            extra.append(-total)
    y = ctx.add("ConvTranspose", [x, w, *_bias(ctx, layer, vars_, filters, dtype)],
                _out_name(layer), strides=strides, pads=begin + end, dilations=dilations,
                output_padding=extra)
    return _finish(ctx, layer, y, perm)
