"""Normalization: real Keras BatchNormalization / LayerNormalization layers; LRN from ops.

BN keeps its moving statistics (so the model stays fine-tunable); per-element
BN is a Keras BN over every non-batch axis with its parameters laid out like
the Keras tensor.  Keras has no LRN: the sum over the channel window is a
frozen bias-free Dense with a 0/1 band matrix, which is exact.
"""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, channels_last, identity
from mmconv.ir.core import Node


@HANDLERS.register("BatchNormalization")
def emit_batch_norm(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    params = [ctx.need_weight(node, p, "BN parameters") for p in node.inputs[1:5]]
    rank = ctx.rank(x)
    eps = float(node.attr("epsilon"))
    name = ctx.out(node)
    if node.attr("spatial"):
        if rank >= 3:
            xs, layout = ctx.cl(x), channels_last(rank)
        else:
            xs, layout = ctx.plain(x), identity(rank)
        arrays = [p.reshape(-1) for p in params]
        axis: object = -1
    else:
        # Keras BN normalizes along one axis: per-element statistics are a BN over
        # the flattened sample (parameters in the Keras tensor's element order).
        per_sample = ctx.static(node, x)
        layout = ctx.perm_of(x)
        arrays = [p.reshape(1, *per_sample).transpose(layout).reshape(-1) for p in params]
        axis = -1
        if rank > 2:
            kshape = tuple(per_sample[p - 1] for p in layout[1:])
            flat = ctx.ident(f"{node.name}_flat")
            ctx.line(f"{flat} = layers.Reshape(({int(np.prod(kshape))},), name={literal(flat)}"
                     f"{ctx.dtype_kw(x)})({ctx.var(x)})")
            bn = ctx.ident(f"{node.name}_bn")
            ctx.line(f"{bn} = layers.BatchNormalization(axis=-1, epsilon={literal(eps)}, "
                     f"name={literal(name)}{ctx.dtype_kw(x)})({flat})")
            ctx.define(node, f"layers.Reshape({literal(kshape)}, name={literal(bn)}"
                             f"{ctx.dtype_kw(x)})({bn})", layout)
            ctx.set_weights(name, list(zip(("gamma", "beta", "moving_mean", "moving_variance"),
                                           arrays, strict=True)))
            return
        xs = ctx.var(x)
    ctx.define(node, f"layers.BatchNormalization(axis={literal(axis)}, "
                     f"epsilon={literal(eps)}, name={literal(name)}{ctx.dtype_kw(x)})({xs})",
               layout)
    ctx.set_weights(name, list(zip(("gamma", "beta", "moving_mean", "moving_variance"), arrays,
                                   strict=True)))


@HANDLERS.register("LayerNormalization")
def emit_layer_norm(ctx: EmitContext, node: Node) -> None:
    """Keras LN over the IR's axes [axis, rank) wherever they sit in the Keras tensor."""
    x, scale_name, bias_name = node.inputs[0], node.inputs[1], node.input(2)
    scale = ctx.need_weight(node, scale_name, "the scale")
    bias = ctx.need_weight(node, bias_name, "the bias") if bias_name else None
    rank = ctx.rank(x)
    first = int(node.attr("axis")) % rank
    layout = ctx.perm_of(x)
    ir_axes = list(range(first, rank))
    k_axes = sorted(layout.index(a) for a in ir_axes)
    norm_shape = ctx.shape(x)[first:]
    if any(d is None for d in norm_shape):
        raise ctx.unsupported(node, "LayerNormalization over a dynamic axis")
    order = [layout[k] - first for k in k_axes]

    def arrange(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, norm_shape).transpose(order)  # type: ignore[arg-type]

    name = ctx.out(node)
    ctx.define(node, f"layers.LayerNormalization(axis={literal(k_axes)}, "
                     f"epsilon={literal(float(node.attr('epsilon')))}, "
                     f"center={bias is not None}, name={literal(name)}{ctx.dtype_kw(x)})"
                     f"({ctx.var(x)})", layout)
    params = [("gamma", arrange(scale))]
    if bias is not None:
        params.append(("beta", arrange(bias)))
    ctx.set_weights(name, params)


@HANDLERS.register("LRN")
def emit_lrn(ctx: EmitContext, node: Node) -> None:
    """Y = X / (bias + alpha/size * window_sum(X^2))^beta, channels last."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    xs = ctx.cl(x) if rank >= 3 else ctx.plain(x)
    layout = channels_last(rank)
    channels = ctx.shape(x)[1]
    if channels is None:
        raise ctx.unsupported(node, "LRN needs a static channel count")
    size = int(node.attr("size"))
    alpha, beta, bias = (float(node.attr(a)) for a in ("alpha", "beta", "bias"))
    before, after = (size - 1) // 2, math.ceil((size - 1) / 2)
    c = np.arange(channels)
    band = ((c[:, None] >= c[None, :] - before) & (c[:, None] <= c[None, :] + after))
    ctx.out(node)
    sq = ctx.ident(f"{node.name}_square")
    win = ctx.ident(f"{node.name}_window")
    ctx.line(f"{sq} = ops.square({xs})")
    ctx.line(f"{win} = layers.Dense({channels}, use_bias=False, trainable=False, "
             f"name={literal(win)}{ctx.dtype_kw(x)})({sq})  # sum over the channel window")
    ctx.set_weights(win, [("kernel", band.astype(ctx.dtype(x)))])
    ctx.define(node, f"ops.divide({xs}, ops.power(ops.add(ops.multiply({win}, "
                     f"{literal(alpha / size)}), {literal(bias)}), {literal(beta)}))", layout)


@HANDLERS.register("InstanceNormalization")
def emit_instance_norm(ctx: EmitContext, node: Node) -> None:
    """``layers.GroupNormalization`` with one group per channel is instance normalization;
    it runs on the channels-last tensor (axis -1)."""
    x = node.inputs[0]
    scale = ctx.need_weight(node, node.inputs[1], "the scale")
    bias = ctx.need_weight(node, node.inputs[2], "the bias")
    rank = ctx.rank(x)
    name = ctx.out(node)
    ctx.define(node, f"layers.GroupNormalization(groups={scale.shape[0]}, axis=-1, "
                     f"epsilon={literal(float(node.attr('epsilon')))}, name={literal(name)}"
                     f"{ctx.dtype_kw(x)})({ctx.cl(x)})", channels_last(rank))
    ctx.set_weights(name, [("gamma", scale.reshape(-1)), ("beta", bias.reshape(-1))])
