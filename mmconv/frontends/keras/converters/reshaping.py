"""ZeroPadding, Cropping and UpSampling layers (1-3D).

Padding and cropping work in whatever layout their input is in (their axes are
mapped); UpSampling is an IR Resize, which wants channels-first.
"""

from __future__ import annotations

from mmconv.errors import UnsupportedError
from mmconv.frontends.keras.context import KerasContext, Tensor
from mmconv.frontends.keras.converters import CONVERTERS, cfg
from mmconv.frontends.keras.converters.conv import spatial_perm
from mmconv.frontends.keras.model import Layer


def _pairs(value: object, n: int, where: str) -> list[tuple[int, int]]:
    """Keras' padding/cropping spec (int, (a, b) per axis, or per-axis ints) as pairs."""
    if isinstance(value, int):
        return [(value, value)] * n
    if isinstance(value, list) and len(value) == n:
        out = []
        for v in value:
            if isinstance(v, int):
                out.append((v, v))
            elif isinstance(v, list) and len(v) == 2 and all(isinstance(u, int) for u in v):
                out.append((v[0], v[1]))
            else:
                raise UnsupportedError(f"{where}: bad spec {value!r}")
        return out
    if n == 1 and isinstance(value, list) and len(value) == 2 and \
            all(isinstance(u, int) for u in value):
        return [(value[0], value[1])]
    raise UnsupportedError(f"{where}: bad spec {value!r}")


def _spatial_axes(layer: Layer, rank: int) -> list[int]:
    """The Keras axes a padding/cropping layer works on."""
    if cfg(layer, "data_format") == "channels_first":
        return list(range(2, rank))
    return list(range(1, rank - 1))


@CONVERTERS.register("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def zero_padding(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = ctx.unflat(xs[0], layer.name)
    rank = len(t.perm)
    axes = _spatial_axes(layer, rank)
    pairs = _pairs(cfg(layer, "padding", 1), len(axes), f"{ctx.path}: {layer.name!r}")
    begin, end = [0] * rank, [0] * rank
    for a, (b, e) in zip(axes, pairs, strict=True):
        begin[ctx.ir_axis(t, a)], end[ctx.ir_axis(t, a)] = b, e
    return [ctx.like(t, ctx.add("Pad", [t.value], layer.name, pads=begin + end))]


@CONVERTERS.register("Cropping1D", "Cropping2D", "Cropping3D")
def cropping(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = ctx.unflat(xs[0], layer.name)
    rank = len(t.perm)
    axes = _spatial_axes(layer, rank)
    pairs = _pairs(cfg(layer, "cropping", 1), len(axes), f"{ctx.path}: {layer.name!r}")
    kshape = ctx.keras_shape(t)
    starts, ends, ir_axes = [], [], []
    for a, (b, e) in zip(axes, pairs, strict=True):
        if kshape[a] is None:
            raise UnsupportedError(f"{ctx.path}: {layer.name!r}: cropping a dynamic axis")
        starts.append(b)
        ends.append(kshape[a] - e)
        ir_axes.append(ctx.ir_axis(t, a))
    return [ctx.like(t, ctx.add("Slice", [t.value], layer.name, starts=starts, ends=ends,
                                axes=ir_axes))]


@CONVERTERS.register("UpSampling1D", "UpSampling2D", "UpSampling3D")
def upsampling(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = xs[0]
    rank = len(t.perm)
    n = rank - 2
    perm = spatial_perm(layer, rank)
    x = ctx.in_perm(t, perm, layer.name)
    size = cfg(layer, "size", 2)
    sizes = [size] * n if isinstance(size, int) else list(size)
    if len(sizes) != n or not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise UnsupportedError(f"{ctx.path}: {layer.name!r}: bad size {size!r}")
    interp = str(cfg(layer, "interpolation", "nearest"))
    if interp == "nearest":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    elif interp == "bilinear":
        # tf.image.resize(bilinear, antialias=False): half-pixel centers
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        raise UnsupportedError(f"{ctx.path}: {layer.name!r}: interpolation {interp!r}")
    scales = [1.0, 1.0, *(float(s) for s in sizes)]
    return [Tensor(ctx.add("Resize", [x], layer.name, scales=scales, **attrs), perm)]
