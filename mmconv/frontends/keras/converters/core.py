"""Core layers: Dense, identities at inference (Dropout & co.), Flatten, Reshape, Permute,
the preprocessing layers (Rescaling, Normalization), ``keras.ops`` arithmetic recorded
in functional models, and the small layers keras.applications defines itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, UnsupportedError
from mmconv.frontends.keras.context import (
    KerasContext,
    Tensor,
    channels_first,
    identity,
    inverse,
)
from mmconv.frontends.keras.converters import CONVERTERS, cfg
from mmconv.frontends.keras.converters.activation import apply_activation
from mmconv.frontends.keras.model import Layer

#: rows of a Dense kernel copied per step when transposing it (bounds peak memory)
CHUNK_ROWS = 4096


@CONVERTERS.register("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                     "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
                     "StochasticDepth", "Identity")
def identity_layer(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """Training-time only (noise, dropout, regularization): the input unchanged."""
    return [xs[0]]


def _dense_matrix(ctx: KerasContext, layer: Layer, ds: Any, flat: Any) -> np.ndarray:
    """The IR's [out, in] matrix from Keras' [in, out] kernel, rows in the IR's input order.

    Filled a block of rows at a time straight from the file: a big kernel (VGG16's
    fc1 is 411 MB) is never in memory twice."""
    n_in, n_out = ds.shape
    out = np.empty((n_out, n_in), dtype=ds.dtype)
    target = None
    if flat is not None:
        perm, kshape = flat
        # ir_flat[j] = keras_flat[order[j]]: row order[j] of the kernel goes to column j
        order = np.arange(n_in).reshape(kshape).transpose([p - 1 for p in perm[1:]]).ravel()
        target = np.empty(n_in, dtype=np.int64)
        target[order] = np.arange(n_in)
    try:
        for a in range(0, n_in, CHUNK_ROWS):
            block = ds[a:a + CHUNK_ROWS]
            if target is None:
                out[:, a:a + len(block)] = block.T
            else:
                out[:, target[a:a + len(block)]] = block.T
    except (OSError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"{ctx.path}: layer {layer.name!r}: cannot read its kernel "
                               f"({exc})") from None
    return out


@CONVERTERS.register("Dense")
def dense(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = xs[0]
    units = int(cfg(layer, "units"))
    kshape = ctx.keras_shape(t)
    n_in = kshape[-1]
    expected = [("kernel", (n_in, units))]
    if cfg(layer, "use_bias", True):
        expected.append(("bias", (units,)))
    vars_ = ctx.variables(layer, expected)
    dtype = ctx.dtype(t.value)
    act = cfg(layer, "activation")
    name = layer.name if act in (None, "linear") else f"{layer.name}/dense"
    bias = ([ctx.weight(layer, "bias", ctx.read(layer, "bias", vars_["bias"]), dtype)]
            if "bias" in vars_ else [])
    if len(kshape) == 2:
        w = ctx.weight(layer, "kernel", _dense_matrix(ctx, layer, vars_["kernel"], t.flat), dtype)
        y = Tensor(ctx.add("Dense", [t.value, w, *bias], name), identity(2))
    else:
        # Dense on the last axis of a higher-rank tensor: a MatMul in Keras' order
        x = ctx.keras_order(t, layer.name)
        k = ctx.weight(layer, "kernel", ctx.read(layer, "kernel", vars_["kernel"]), dtype)
        mm = ctx.add("MatMul", [x, k], name if not bias else f"{layer.name}/matmul")
        if bias:
            mm = ctx.add("Add", [mm, bias[0]], name)
        y = Tensor(mm, identity(len(kshape)))
    return [apply_activation(ctx, y, act, f"{layer.name}/activation")]


@CONVERTERS.register("Flatten")
def flatten(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = xs[0]
    rank = len(t.perm)
    if t.flat is not None or rank == 2:
        return [t]
    kshape = ctx.keras_shape(t)
    if cfg(layer, "data_format") == "channels_first":
        # Keras flattens a channels-first tensor in (C, H, W) order; in Keras' order that
        # is the perm moving its last axis to position 1
        want = (0, rank - 1, *range(1, rank - 1))
        x = ctx.in_perm(t, want, layer.name)
        return [Tensor(ctx.add("Flatten", [x], layer.name, axis=1), identity(2))]
    if _only_singletons_move(kshape, t.perm):
        return [Tensor(ctx.add("Flatten", [t.value], layer.name, axis=1), identity(2))]
    return [Tensor(ctx.add("Flatten", [t.value], layer.name, axis=1), identity(2),
                   (t.perm, tuple(kshape[1:])))]


def _only_singletons_move(kshape: tuple, perm: tuple[int, ...]) -> bool:
    """True when ``perm`` keeps the relative order of every axis of size > 1 (so the
    flattened elements come out in Keras' order anyway)."""
    big = [p for p in perm if p == 0 or kshape[p] != 1]
    return big == sorted(big)


@CONVERTERS.register("Reshape")
def reshape(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = xs[0]
    target = cfg(layer, "target_shape")
    if not isinstance(target, list) or not all(isinstance(d, int) for d in target):
        raise ModelFormatError(f"{ctx.path}: Reshape {layer.name!r}: bad target_shape")
    kshape = ctx.keras_shape(t)
    total = int(np.prod([d for d in kshape[1:]]))
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target = [total // known if d == -1 else d for d in target]
    rank = len(target) + 1
    # the value already holds Keras' element order (a vector, or only size-1 axes moved):
    # reshape it as it is; a [N, C] -> [N, 1, 1, C] (squeeze-and-excite) goes straight to
    # channels-first, the same data, ready for the convolution that usually follows
    x = t.value if t.flat is None and _only_singletons_move(kshape, t.perm) else \
        ctx.keras_order(t, layer.name)
    perm = channels_first(rank) if rank >= 3 and all(d == 1 for d in target[:-1]) else \
        identity(rank)
    ir_shape = [0, *(target[p - 1] for p in perm[1:])]
    return [Tensor(ctx.add("Reshape", [x], layer.name, shape=ir_shape), perm)]


@CONVERTERS.register("Permute")
def permute(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """No data moves: the result is the same IR value with a different layout."""
    t = ctx.unflat(xs[0], layer.name)
    dims = cfg(layer, "dims")
    rank = len(t.perm)
    if not isinstance(dims, list) or sorted(dims) != list(range(1, rank)):
        raise ModelFormatError(f"{ctx.path}: Permute {layer.name!r}: bad dims {dims!r}")
    q = (0, *dims)  # keras_out = keras_in.transpose(q)
    inv_q = inverse(q)
    return [Tensor(t.value, tuple(inv_q[p] for p in t.perm))]


def _per_axis(ctx: KerasContext, t: Tensor, array: np.ndarray, name: str, dtype: str) -> str:
    """A constant broadcast against Keras tensor ``t`` (numpy rules against its Keras
    shape), laid out for ``t``'s IR value."""
    rank = len(t.perm)
    a = np.asarray(array, dtype=dtype)
    if a.ndim == 0:
        return ctx.constant(name, a)
    a = a.reshape((1,) * (rank - a.ndim) + a.shape)
    return ctx.constant(name, a.transpose(t.perm))


def _normalized_axes(axes: Any, rank: int) -> list[int]:
    if axes is None:
        return []
    if isinstance(axes, int):
        axes = [axes]
    return sorted(a + rank if a < 0 else a for a in axes)


@CONVERTERS.register("Rescaling")
def rescaling(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = ctx.unflat(xs[0], layer.name)
    dtype = ctx.dtype(t.value)
    scale, offset = cfg(layer, "scale", 1.0), cfg(layer, "offset", 0.0)
    y = t.value
    kshape = ctx.keras_shape(t)
    for what, value, op in (("scale", scale, "Mul"), ("offset", offset, "Add")):
        arr = np.asarray(value, dtype=dtype)
        if arr.ndim == 0 and float(arr) == (1.0 if op == "Mul" else 0.0):
            continue
        if arr.ndim > len(kshape):
            raise ModelFormatError(f"{ctx.path}: Rescaling {layer.name!r}: bad {what}")
        c = _per_axis(ctx, t, arr, f"{layer.name}/{what}", dtype)
        y = ctx.add(op, [y, c], f"{layer.name}/{what}" if op == "Mul" and offset else layer.name)
    if y == t.value:
        y = ctx.add("Identity", [y], layer.name)
    return [ctx.like(t, y)]


@CONVERTERS.register("Normalization")
def normalization(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """(x - mean) / max(sqrt(var), epsilon), mean and var from the file or the config."""
    t = ctx.unflat(xs[0], layer.name)
    kshape = ctx.keras_shape(t)
    rank = len(kshape)
    dtype = ctx.dtype(t.value)
    axes = _normalized_axes(cfg(layer, "axis", -1), rank)
    pshape = tuple(kshape[a] if a in axes else 1 for a in range(rank))
    if cfg(layer, "invert", False):
        raise UnsupportedError(f"{ctx.path}: Normalization {layer.name!r} with invert=True")
    mean, var = cfg(layer, "mean"), cfg(layer, "variance")
    if mean is not None and var is not None:
        mean_a = np.broadcast_to(np.asarray(mean, dtype=np.float64), pshape)
        var_a = np.broadcast_to(np.asarray(var, dtype=np.float64), pshape)
    else:
        vshape = tuple(kshape[a] for a in axes)
        vars_ = ctx.variables(layer, [("mean", vshape), ("variance", vshape), ("count", ())])
        mean_a = ctx.read(layer, "mean", vars_["mean"]).reshape(pshape)
        var_a = ctx.read(layer, "variance", vars_["variance"]).reshape(pshape)
    # keras.layers.Normalization: (x - mean) / maximum(sqrt(variance), epsilon())
    eps = 1e-7
    std = np.maximum(np.sqrt(var_a.astype(np.float64)), eps)
    m = _per_axis(ctx, t, mean_a[0] if pshape[0] == 1 else mean_a, f"{layer.name}/mean", dtype)
    s = _per_axis(ctx, t, std[0], f"{layer.name}/std", dtype)
    centered = ctx.add("Sub", [t.value, m], f"{layer.name}/center")
    return [ctx.like(t, ctx.add("Div", [centered, s], layer.name))]


def _scalar_arg(args: list, layer: Layer, ctx: KerasContext) -> float | None:
    nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if len(nums) > 1:
        raise UnsupportedError(f"{ctx.path}: operation {layer.name!r} on two numbers")
    return float(nums[0]) if nums else None


@CONVERTERS.register("ops.Add", "ops.Subtract", "ops.Multiply", "ops.Divide", "ops.TrueDivide")
def ops_arith(ctx: KerasContext, layer: Layer, xs: list[Tensor], index: int) -> list[Tensor]:
    """``x + 3.0``-style arithmetic a functional model recorded as a keras.ops node."""
    op = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Divide": "Div",
          "TrueDivide": "Div"}[layer.class_name]
    args = layer.call_args[index] if index < len(layer.call_args) else []
    number = _scalar_arg(args, layer, ctx)
    if number is None:
        if len(xs) != 2:
            raise UnsupportedError(f"{ctx.path}: operation {layer.name!r} on {len(xs)} tensors")
        values, perm = ctx.common(xs, layer.name)
        return [Tensor(ctx.add(op, values, layer.name), perm)]
    if len(xs) != 1:
        raise UnsupportedError(f"{ctx.path}: operation {layer.name!r} on {len(xs)} tensors")
    t = xs[0]
    c = ctx.constant(f"{layer.name}/value", np.array(number, dtype=ctx.dtype(t.value)))
    number_first = not isinstance(args[0], dict)
    ins = [c, t.value] if number_first else [t.value, c]
    return [ctx.like(t, ctx.add(op, ins, layer.name))]


@CONVERTERS.register("LayerScale")
def layer_scale(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """keras.applications.convnext.LayerScale: x * gamma over the channel axis."""
    t = ctx.unflat(xs[0], layer.name)
    dim = int(cfg(layer, "projection_dim"))
    gamma = ctx.read(layer, "gamma", ctx.variables(layer, [("gamma", (dim,))])["gamma"])
    c = _per_axis(ctx, t, gamma, f"{layer.name}/gamma", ctx.dtype(t.value))
    return [ctx.like(t, ctx.add("Mul", [t.value, c], layer.name))]


@CONVERTERS.register("CustomScaleLayer")
def custom_scale(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """keras.applications.inception_resnet_v2.CustomScaleLayer: x[0] + x[1] * scale."""
    if len(xs) != 2:
        raise ModelFormatError(f"{ctx.path}: {layer.name!r} needs two inputs")
    values, perm = ctx.common(xs, layer.name)
    s = ctx.constant(f"{layer.name}/scale",
                     np.array(float(cfg(layer, "scale")), dtype=ctx.dtype(values[0])))
    scaled = ctx.add("Mul", [values[1], s], f"{layer.name}/scaled")
    return [Tensor(ctx.add("Add", [values[0], scaled], layer.name), perm)]


@CONVERTERS.register("Embedding")
def embedding(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """A Gather of the ``embeddings`` table rows (Keras casts non-integer ids to int32).
    ``mask_zero`` only makes a mask: :mod:`mmconv.frontends.keras.masking` refuses it
    where a layer would use it."""
    t = ctx.unflat(xs[0], layer.name)
    rows, width = int(cfg(layer, "input_dim")), int(cfg(layer, "output_dim"))
    table = ctx.read(layer, "embeddings",
                     ctx.variables(layer, [("embeddings", (rows, width))])["embeddings"])
    ids = ctx.keras_order(t, layer.name)
    if ctx.dtype(ids) not in ("int32", "int64"):
        ids = ctx.add("Cast", [ids], f"{layer.name}/ids", to="int32")
    w = ctx.weight(layer, "embeddings", table, str(table.dtype) if table.dtype.kind == "f"
                   else "float32")
    return [Tensor(ctx.add("Gather", [w, ids], layer.name, axis=0), identity(len(t.perm) + 1))]


@CONVERTERS.register("Masking")
def masking(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """Keras zeroes a step whose features all equal ``mask_value``: ``x * any(x !=
    mask_value)`` over the last axis (the input itself when mask_value is 0). The mask
    it makes matters only to layers :mod:`mmconv.frontends.keras.masking` refuses."""
    value = float(cfg(layer, "mask_value", 0.0))
    if value == 0.0:
        return [xs[0]]
    t = ctx.unflat(xs[0], layer.name)
    dtype = ctx.dtype(t.value)
    same = ctx.add("Equal", [t.value, ctx.constant(f"{layer.name}/mask_value",
                                                   np.array(value, dtype=dtype))],
                   f"{layer.name}/equal")
    differs = ctx.add("Cast", [ctx.add("Not", [same], f"{layer.name}/not_equal")],
                      f"{layer.name}/differs", to=dtype)
    live = ctx.add("ReduceMax", [differs], f"{layer.name}/live", axes=[ctx.ir_axis(t, -1)],
                   keepdims=True)
    return [ctx.like(t, ctx.add("Mul", [t.value, live], layer.name))]
