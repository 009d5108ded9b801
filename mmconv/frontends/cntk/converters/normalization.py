"""BatchNormalization in inference form.

CNTK evaluates BN with the running statistics (``aggregate_mean``,
``aggregate_variance`` constants), ``scale``/``bias`` parameters and
``epsilon``: ``(x - mean) / sqrt(var + eps) * scale + bias``.  ``spatial``
True: one statistic per channel (IR params of shape [C]); False (the default of
``cntk.layers.BatchNormalization``, ``map_rank=0``): one per element of the
sample, params reshaped to the sample shape.  ``blendTimeConstant`` and the
sample count only matter while training.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, unsupported

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
    out = ctx.add("BatchNormalization", [x, *params], name, epsilon=eps, spatial=spatial)
    finish(ctx, unit, out)
