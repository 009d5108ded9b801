"""BatchNormalization (a real, retrainable ``C.batch_normalization``), LRN, LayerNormalization.

CNTK 2.7's ``batch_normalization(operand, scale, bias, running_mean,
running_inv_std, spatial, ..., epsilon, running_count)``: despite its name
the fifth input holds the running *variance* (CNTK 2.x stores variance there;
the fixtures' ``aggregate_variance``), so the IR's ``var`` goes in as is.
Scale and bias become Parameters and the statistics Constants, exactly as
``cntk.layers.BatchNormalization`` makes them, so the model can be trained
further.  ``spatial`` keeps the IR's meaning (per channel, or per element as
CNTK's default ``map_rank=0``).
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.cntk.context import HANDLERS, EmitContext
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Node


@HANDLERS.register("BatchNormalization")
def emit_batch_norm(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    if not ctx.batched(x):
        raise ctx.unsupported(node, "batch normalization of a value without the batch axis")
    eps = float(node.attr("epsilon"))
    sample = ctx.sample_shape(x)
    spatial = bool(node.attr("spatial")) and len(sample) > 1
    shape = (sample[0],) if spatial else sample
    params = node.inputs[1:5]
    if not all(ctx.is_weight(p) for p in params):
        _batch_norm_arithmetic(ctx, node, eps)
        return

    def fit(a: np.ndarray) -> np.ndarray:
        return a.reshape(shape)

    tag = "bn"
    scale, bias = (ctx.param(p, fit, tag) for p in params[:2])
    mean, var = (ctx.const(p, fit, tag) for p in params[2:])
    # An explicit, named sample count: left to CNTK, every BN gets an unnamed default
    # constant whose generated uid can collide with another node's when the saved
    # model is loaded in a fresh process ("AddNodeToNet: Duplicated name for
    # ConstantN", seen on a float64 ResNet-20).
    count = (f"C.constant(0, shape=(), dtype=np.{ctx.dtype(x)}, "
             f"name={literal(node.name + '/running_count')})")
    ctx.assign(node, f"C.batch_normalization({ctx.ref(x)}, {scale}, {bias}, {mean}, {var}, "
                     f"spatial={spatial}, epsilon={literal(eps)}, running_count={count}, "
                     f"{ctx.name_kw(node)})")


def _batch_norm_arithmetic(ctx: EmitContext, node: Node, eps: float) -> None:
    """Statistics computed at run time cannot be BN state: the formula, per element."""
    x, scale, bias, mean, var = node.inputs[:5]
    if node.attr("spatial"):
        raise ctx.unsupported(node, "per-channel batch normalization with parameters computed at "
                              "run time")
    sample = ctx.sample_shape(x)

    def shaped(name: str) -> str:
        if ctx.is_weight(name):
            return ctx.const(name, lambda a: a.reshape(sample), "bn")
        return f"C.reshape({ctx.ref(name)}, {literal(sample)})"

    std = ctx.let(f"C.sqrt(C.plus({shaped(var)}, {literal(eps)}))", "std")
    normed = ctx.let(f"C.element_divide(C.minus({ctx.ref(x)}, {shaped(mean)}), {std})", "norm")
    ctx.assign(node, f"C.plus(C.element_times({normed}, {shaped(scale)}), {shaped(bias)}, "
                     f"{ctx.name_kw(node)})")


@HANDLERS.register("LRN")
def emit_lrn(ctx: EmitContext, node: Node) -> None:
    """CNTK's LRN divides alpha by the window (2r+1) as the IR does; odd windows only."""
    size = int(node.attr("size"))
    if size % 2 == 0:
        raise ctx.unsupported(node, f"LRN size {size} is even; CNTK windows are 2*radius+1")
    if not ctx.batched(node.inputs[0]):
        raise ctx.unsupported(node, "LRN of a value without the batch axis")
    ctx.assign(node, f"C.local_response_normalization({ctx.ref(node.inputs[0])}, "
                     f"{(size - 1) // 2}, {literal(float(node.attr('bias')))}, "
                     f"{literal(float(node.attr('alpha')))}, "
                     f"{literal(float(node.attr('beta')))}, {ctx.name_kw(node)})")


@HANDLERS.register("LayerNormalization")
def emit_layer_norm(ctx: EmitContext, node: Node) -> None:
    """CNTK has no layer-norm primitive (``cntk.layers.LayerNormalization`` is this
    arithmetic too): mean and variance over the normalized axes, then scale and shift."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    first = int(node.attr("axis")) % rank
    axes = tuple(ctx.axis(x, a) for a in range(first, rank))
    eps = literal(float(node.attr("epsilon")))
    mean = ctx.let(f"C.reduce_mean({ctx.ref(x)}, axis={literal(axes)})", "mean")
    centered = ctx.let(f"C.minus({ctx.ref(x)}, {mean})", "centered")
    var = ctx.let(f"C.reduce_mean(C.square({centered}), axis={literal(axes)})", "var")
    normed = ctx.let(f"C.element_divide({centered}, C.sqrt(C.plus({var}, {eps})))", "norm")
    s = ctx.param(node.inputs[1]) if ctx.is_weight(node.inputs[1]) else ctx.operand(
        node.inputs[1], x)
    if not node.input(2):
        ctx.assign(node, f"C.element_times({normed}, {s}, {ctx.name_kw(node)})")
        return
    b = ctx.param(node.inputs[2]) if ctx.is_weight(node.inputs[2]) else ctx.operand(
        node.inputs[2], x)
    ctx.assign(node, f"C.plus(C.element_times({normed}, {s}), {b}, {ctx.name_kw(node)})")


@HANDLERS.register("InstanceNormalization")
def emit_instance_norm(ctx: EmitContext, node: Node) -> None:
    """Per sample and channel over the spatial axes: mean and biased variance by
    ``reduce_mean``, then the affine [C, 1, ...] scale and shift (CNTK has no op)."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    axes = tuple(ctx.axis(x, a) for a in range(2, rank))
    ones = (1,) * (rank - 2)
    scale, bias = (ctx.const(p, lambda a: a.reshape(-1, *ones), "c11")
                   if ctx.is_weight(p) else f"C.reshape({ctx.ref(p)}, {literal((-1, *ones))})"
                   for p in node.inputs[1:3])
    xr = ctx.ref(x)
    centred = ctx.let(f"C.minus({xr}, C.reduce_mean({xr}, axis={literal(axes)}))", "centred")
    var = ctx.let(f"C.reduce_mean(C.square({centred}), axis={literal(axes)})", "var")
    eps = literal(float(node.attr("epsilon")))
    ctx.assign(node, f"C.plus(C.element_times(C.element_divide({centred}, C.sqrt(C.plus("
                     f"{var}, {eps}))), {scale}), {bias}, {ctx.name_kw(node)})")
