"""BatchNormalization in inference form; the LocalResponseNormalization block.

CNTK evaluates BN with the running statistics (``aggregate_mean``,
``aggregate_variance`` constants), ``scale``/``bias`` parameters and
``epsilon``: ``(x - mean) / sqrt(var + eps) * scale + bias``.  ``spatial``
True: one statistic per channel (IR params of shape [C]); False (the default of
``cntk.layers.BatchNormalization``, ``map_rank=0``): one per element of the
sample, params reshaped to the sample shape.  ``blendTimeConstant`` and the
sample count only matter while training.

On a sequence (``[batch, time, *sample]``, e.g. ``Sequential([BatchNormalization(),
Recurrence(...)])``) the IR op would take time for the channel axis, so the inference
form is folded into one per-step ``x * a + b`` (``a = scale / sqrt(var + eps)``,
``b = bias - mean * a``), shaped to broadcast over the sample.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from mmconv.frontends.cntk.converters import BLOCK_CONVERTERS, CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, start, unsupported

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit

_ROLES = ("scale", "bias", "mean", "var")


@CONVERTERS.register("BatchNormalization")
def convert_batch_norm(ctx: Context, unit: Unit) -> None:
    a = unit.attrs
    if len(unit.inputs) < 5:
        raise unsupported(ctx, unit, f"{len(unit.inputs)} inputs")
    name = ctx.node_name(unit)
    layer = ctx.layer_name(unit, name)
    x = ctx.input(unit.inputs[0], unit, name)
    sample = sample_shape(ctx, x)
    if not ctx.batched(x) or not sample:
        raise unsupported(ctx, unit, f"an input of shape {list(sample)}")
    spatial = bool(a.get("spatial", False))
    target = (sample[0],) if spatial else tuple(sample)
    params = []
    for uid, role in zip(unit.inputs[1:5], _ROLES, strict=True):
        if not ctx.is_weight(uid):
            raise unsupported(ctx, unit, f"a computed {role}")
        arr = ctx.array(uid)
        if arr.size != math.prod(target):
            raise unsupported(
                ctx, unit, f"{role} of shape {list(arr.shape)} for input {list(sample)} "
                f"(spatial={spatial})")
        params.append(ctx.weight(uid, layer, role, arr.reshape(target), key="bn"))
    eps = float(a.get("epsilon", 1e-5))
    if ctx.is_sequence(x):
        out = _per_step(ctx, x, name, layer, params, eps, spatial, len(sample))
        finish(ctx, unit, out)
        return
    out = ctx.add("BatchNormalization", [x, *params], name, epsilon=eps, spatial=spatial)
    finish(ctx, unit, out)


def _per_step(ctx: Context, x: str, name: str, layer: str, params: list[str], eps: float,
              spatial: bool, rank: int) -> str:
    """BN's inference form on a sequence: ``x * a + b`` with the statistics folded."""
    scale, bias, mean, var = (ctx.constant_array(p).astype(np.float64) for p in params)
    mul = scale / np.sqrt(var + eps)
    add = bias - mean * mul
    shape = (mul.shape[0], *(1,) * (rank - 1)) if spatial else mul.shape
    dtype = ctx.constant_array(params[0]).dtype
    a = ctx.constant(f"{layer}/scale_folded", mul.reshape(shape).astype(dtype))
    b = ctx.constant(f"{layer}/bias_folded", add.reshape(shape).astype(dtype))
    return ctx.add("Add", [ctx.add("Mul", [x, a], f"{name}/scale"), b], name)


@BLOCK_CONVERTERS.register("LocalResponseNormalization")
def convert_lrn_block(ctx: Context, unit: Unit) -> None:
    """``C.local_response_normalization(x, r, bias, alpha, beta)`` is a block computing
    x / (bias + alpha/(2r+1) * sum of x^2 over 2r+1 channels)^beta: exactly IR LRN
    with size 2r+1 (always odd).  v1 files carry its primitives instead, which the
    Convolution converter handles (a kernel over the channel axis)."""
    a = unit.attrs
    name, ins = start(ctx, unit)
    if len(ins) != 1 or "depthRadius" not in a:
        raise unsupported(ctx, unit, "this form of the block")
    x = ins[0]
    if not ctx.batched(x) or len(sample_shape(ctx, x)) < 2:
        raise unsupported(ctx, unit, f"an input of shape {list(sample_shape(ctx, x))}")
    radius = int(a["depthRadius"])
    if radius < 0:
        raise unsupported(ctx, unit, f"depthRadius {radius}")
    out = ctx.add("LRN", [x], name, size=2 * radius + 1, alpha=float(a.get("alpha", 1e-4)),
                  beta=float(a.get("beta", 0.75)), bias=float(a.get("bias", 1.0)))
    finish(ctx, unit, out)
