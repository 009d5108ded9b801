"""Pooling: Max/Average pooling 1-3D ("same" resolved exactly, TF's average excludes
the padding from the count) and global pooling with and without keepdims."""

from __future__ import annotations

from mmconv.errors import UnsupportedError
from mmconv.frontends.keras.context import KerasContext, Tensor, identity
from mmconv.frontends.keras.converters import CONVERTERS, cfg
from mmconv.frontends.keras.converters.conv import ints, same_pads, spatial_perm
from mmconv.frontends.keras.model import Layer

#: class name (Keras' "Pooling" spelling and its "Pool" alias) -> (IR op, spatial rank)
POOLS = {f"{kind}{word}{n}D": ("MaxPool" if kind == "Max" else "AveragePool", n)
         for kind in ("Max", "Average") for word in ("Pooling", "Pool") for n in (1, 2, 3)}


@CONVERTERS.register(*POOLS)
def pool(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    op, n = POOLS[layer.class_name]
    t = xs[0]
    perm = spatial_perm(layer, len(t.perm))
    x = ctx.in_perm(t, perm, layer.name)
    kernel = ints(cfg(layer, "pool_size", 2), n)
    strides_cfg = cfg(layer, "strides")
    strides = kernel if strides_cfg is None else ints(strides_cfg, n)
    padding = str(cfg(layer, "padding", "valid")).lower()
    if padding == "same":
        pads = same_pads(list(ctx.shape(x)[2:]), kernel, strides, [1] * n,
                         f"{ctx.path}: layer {layer.name!r}")
    elif padding == "valid":
        pads = [0] * (2 * n)
    else:
        raise UnsupportedError(f"{ctx.path}: layer {layer.name!r}: padding {padding!r}")
    attrs: dict = {"kernel_shape": kernel, "strides": strides, "pads": pads}
    if op == "AveragePool":
        attrs["count_include_pad"] = False
    return [Tensor(ctx.add(op, [x], layer.name, **attrs), perm)]


GLOBAL = {f"Global{kind}{word}{n}D": f"Global{kind}Pool"
          for kind in ("Max", "Average") for word in ("Pooling", "Pool") for n in (1, 2, 3)}


@CONVERTERS.register(*GLOBAL)
def global_pool(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = xs[0]
    perm = spatial_perm(layer, len(t.perm))
    x = ctx.in_perm(t, perm, layer.name)
    keep = bool(cfg(layer, "keepdims", False))
    y = ctx.add(GLOBAL[layer.class_name], [x], layer.name if keep else f"{layer.name}/pool")
    if keep:
        return [Tensor(y, perm)]
    return [Tensor(ctx.add("Flatten", [y], layer.name, axis=1), identity(2))]
