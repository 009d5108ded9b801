"""BatchNormalization (inference: moving statistics) and LayerNormalization."""

from __future__ import annotations

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.frontends.keras.context import KerasContext, Tensor, channels_first, identity
from mmconv.frontends.keras.converters import CONVERTERS, cfg
from mmconv.frontends.keras.model import Layer


def _axes(value: object, rank: int) -> list[int]:
    axes = value if isinstance(value, list) else [value]
    if not all(isinstance(a, int) and -rank <= a < rank for a in axes):
        raise UnsupportedError(f"bad axis {value!r} for a rank-{rank} tensor")
    return sorted(a + rank if a < 0 else a for a in axes)


@CONVERTERS.register("BatchNormalization")
def batch_norm(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = ctx.unflat(xs[0], layer.name)
    rank = len(t.perm)
    axes = _axes(cfg(layer, "axis", -1), rank)
    if len(axes) != 1 or axes[0] == 0:
        raise UnsupportedError(f"{ctx.path}: BatchNormalization {layer.name!r} over axes {axes}")
    axis = axes[0]
    # the IR normalizes axis 1: the layout with the Keras axis at position 1
    if axis == rank - 1:
        perm = channels_first(rank)
    else:
        perm = (0, axis, *(a for a in range(1, rank) if a != axis))
    x = ctx.in_perm(t, perm, layer.name)
    c = ctx.shape(x)[1]
    names = ([("gamma", (c,))] if cfg(layer, "scale", True) else []) + \
        ([("beta", (c,))] if cfg(layer, "center", True) else []) + \
        [("moving_mean", (c,)), ("moving_variance", (c,))]
    vars_ = ctx.variables(layer, names)
    dtype = ctx.dtype(x)
    arr = {k: ctx.read(layer, k, ds) for k, ds in vars_.items()}
    gamma = arr.get("gamma", np.ones(c, dtype=dtype))
    beta = arr.get("beta", np.zeros(c, dtype=dtype))
    ins = [ctx.weight(layer, k, a, dtype) for k, a in (
        ("gamma", gamma), ("beta", beta), ("moving_mean", arr["moving_mean"]),
        ("moving_variance", arr["moving_variance"]))]
    eps = float(cfg(layer, "epsilon", 1e-3))
    return [Tensor(ctx.add("BatchNormalization", [x, *ins], layer.name, epsilon=eps), perm)]


@CONVERTERS.register("LayerNormalization")
def layer_norm(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = ctx.unflat(xs[0], layer.name)
    rank = len(t.perm)
    axes = _axes(cfg(layer, "axis", -1), rank)
    if axes != list(range(axes[0], rank)) or axes[0] == 0:
        raise UnsupportedError(f"{ctx.path}: LayerNormalization {layer.name!r} over axes {axes} "
                               "(only trailing axes are supported)")
    if cfg(layer, "rms_scaling", False):
        raise UnsupportedError(f"{ctx.path}: LayerNormalization {layer.name!r} with "
                               "rms_scaling=True")
    x = ctx.keras_order(t, layer.name)
    pshape = tuple(ctx.shape(x)[a] for a in axes)
    names = ([("gamma", pshape)] if cfg(layer, "scale", True) else []) + \
        ([("beta", pshape)] if cfg(layer, "center", True) else [])
    vars_ = ctx.variables(layer, names)
    dtype = ctx.dtype(x)
    gamma = ctx.read(layer, "gamma", vars_["gamma"]) if "gamma" in vars_ else \
        np.ones(pshape, dtype=dtype)
    ins = [ctx.weight(layer, "gamma", gamma, dtype)]
    if "beta" in vars_:
        ins.append(ctx.weight(layer, "beta", ctx.read(layer, "beta", vars_["beta"]), dtype))
    eps = float(cfg(layer, "epsilon", 1e-3))
    y = ctx.add("LayerNormalization", [x, *ins], layer.name, axis=axes[0], epsilon=eps)
    return [Tensor(y, identity(rank))]
