"""BatchNormalization, LRN and LayerNormalization as MXNet's own layers.

BatchNorm: ``BatchNorm(fix_gamma=False, use_global_stats=True)``: MXNet's
default ``fix_gamma=True`` would ignore the scale, and global stats make the
layer use the stored moving statistics even in a training-mode forward.  The
moving statistics are auxiliary states (``aux:`` in the params file).  IR
parameters of shape ``[C, 1, 1]`` (CNTK) are stored as ``[C]``.  A per-element
BN (``spatial=False``) or one whose parameters are computed at run time has no
MXNet layer: it is ``x * s + t`` with ``s = scale / sqrt(var + eps)`` and
``t = B - mean * s`` folded at emit time (or computed, when they are not
weights).

LRN: ``LRN(nsize, alpha, beta, knorm)`` has the IR's formula
(``alpha / size`` inside).  InstanceNormalization: ``InstanceNorm``.
LayerNormalization: MXNet's ``LayerNorm``
normalizes one axis; trailing axes after the first normalized one are merged
by a ``Reshape`` first.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext, Entry
from mmconv.ir.core import Node


def _flat(ctx: EmitContext, name: str, channels: int) -> bool:
    shape = ctx.shape(name)
    return (ctx.is_weight(name) and None not in shape
            and int(np.prod(shape)) == channels  # type: ignore[arg-type]
            and all(d == 1 for d in shape[1:]))


@HANDLERS.register("BatchNormalization")
def emit_batch_norm(ctx: EmitContext, node: Node) -> None:
    x, scale, bias, mean, var = node.inputs
    eps = float(node.attr("epsilon"))
    shape = ctx.shape(x)
    channels = shape[1] if len(shape) >= 2 else None
    params = (scale, bias, mean, var)
    if (bool(node.attr("spatial")) and channels is not None
            and all(_flat(ctx, p, int(channels)) for p in params)):
        flat = [ctx.param(p, lambda a: a.reshape(-1), "flat", aux=i >= 2)
                for i, p in enumerate(params)]
        ctx.emit_op(node, "BatchNorm", [ctx.input(x), *flat], num_outputs=3, eps=eps,
                    momentum=0.9, fix_gamma=False, use_global_stats=True, axis=1)
        return
    _affine(ctx, node, eps)


def _affine(ctx: EmitContext, node: Node, eps: float) -> None:
    """y = x * s + t: the BN as two broadcast ops (parameters folded when they are weights)."""
    x, scale, bias, mean, var = node.inputs
    rank = ctx.rank(x)
    spatial = bool(node.attr("spatial"))

    def layout(a: np.ndarray) -> np.ndarray:
        """A parameter aligned with X: [C] -> [1, C, 1, ...] (spatial) or [1, *sample]."""
        if spatial:
            return a.reshape((1, -1) + (1,) * (rank - 2))
        return a.reshape((1, *(int(d) for d in ctx.shape(x)[1:])))  # type: ignore[arg-type]

    weights = [ctx.weight(p) for p in (scale, bias, mean, var)]
    if all(w is not None for w in weights):
        sc, b, m, v = (np.asarray(w, dtype=np.float64) for w in weights)  # type: ignore[arg-type]
        s = sc / np.sqrt(v + eps)
        t = b - m * s
        dtype = ctx.mx_dtype(ctx.dtype(x))
        mul = ctx.new_param(layout(s).astype(dtype), "scale")
        add = ctx.new_param(layout(t).astype(dtype), "shift")
        scaled = ctx.op("broadcast_mul", [ctx.input(x), mul], "scaled")
        ctx.emit_op(node, "broadcast_add", [scaled, add])
        return

    def aligned(name: str, hint: str) -> Entry:
        target = layout(np.zeros(ctx.static_shape(name))).shape
        if ctx.is_weight(name):
            return ctx.param(name, lambda a: a.reshape(target), "aligned")
        return ctx.op("Reshape", [ctx.input(name)], hint, shape=target)

    sc, b, m, v = (aligned(p, h) for p, h in zip((scale, bias, mean, var),
                                                ("scale", "bias", "mean", "var"), strict=True))
    inv = ctx.op("rsqrt", [ctx.op("_plus_scalar", [v], "var_eps", scalar=eps)], "inv_std")
    s = ctx.op("broadcast_mul", [sc, inv], "s")
    centered = ctx.op("broadcast_sub", [ctx.input(x), m], "centered")
    ctx.emit_op(node, "broadcast_add", [ctx.op("broadcast_mul", [centered, s], "scaled"), b])


@HANDLERS.register("LRN")
def emit_lrn(ctx: EmitContext, node: Node) -> None:
    size = int(node.attr("size"))
    if size % 2 == 0:
        raise ctx.unsupported(node, f"LRN over an even window ({size}): MXNet centres its window")
    ctx.emit_op(node, "LRN", [ctx.input(node.inputs[0])], nsize=size,
                alpha=float(node.attr("alpha")), beta=float(node.attr("beta")),
                knorm=float(node.attr("bias")))


@HANDLERS.register("LayerNormalization")
def emit_layer_norm(ctx: EmitContext, node: Node) -> None:
    x, scale = node.inputs[0], node.inputs[1]
    bias = node.input(2)
    rank = ctx.rank(x)
    axis = int(node.attr("axis")) % rank
    shape = ctx.shape(x)
    tail = shape[axis:]
    if None in tail:
        raise ctx.unsupported(node, "layer normalization over a dynamic axis")
    size = int(np.prod(tail))  # type: ignore[arg-type]
    for name in (scale, bias):
        if name and not ctx.is_weight(name):
            raise ctx.unsupported(node, "layer normalization with parameters computed at run time")

    def full(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, tail).reshape(-1).copy()  # type: ignore[arg-type]
    gamma = ctx.param(scale, full, "flat")
    beta = (ctx.param(bias, full, "flat") if bias
            else ctx.new_param(np.zeros(size, dtype=ctx.mx_dtype(ctx.dtype(x))), "beta"))
    eps = float(node.attr("epsilon"))
    if axis == rank - 1:
        ctx.emit_op(node, "LayerNorm", [ctx.input(x), gamma, beta], axis=-1, eps=eps)
        return
    merged = ctx.reshape(ctx.input(x), x, (*shape[:axis], size), "merged")
    normed = ctx.op("LayerNorm", [merged, gamma, beta], "normed", axis=-1, eps=eps)
    ctx.emit_op(node, "Reshape", [normed], shape=ctx.reshape_target(x, shape))


@HANDLERS.register("InstanceNormalization")
def emit_instance_norm(ctx: EmitContext, node: Node) -> None:
    x, scale, bias = node.inputs
    if ctx.rank(x) < 3:
        raise ctx.unsupported(node, "instance normalization of a tensor without spatial axes")
    params = [ctx.param(p, lambda a: a.reshape(-1), "flat") if ctx.is_weight(p)
              else ctx.input(p) for p in (scale, bias)]
    ctx.emit_op(node, "InstanceNorm", [ctx.input(x), *params],
                eps=float(node.attr("epsilon")))
