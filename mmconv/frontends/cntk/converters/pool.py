"""Pooling (max/average), with CNTK's auto padding, ``ceilOutDim`` and ``includePad``.

Auto padding follows the convolution rule (:mod:`.conv`).  ``ceilOutDim``
rounds the output size up (IR ``ceil_mode``); with auto padding it is folded
into the resolved pads instead (CNTK computes ``ceil((n-1)/stride)+1`` windows
there, the last one reaching into the end padding).  A window covering the whole input with
no padding is global pooling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.axes import per_axis, py_shape
from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, start, unsupported
from mmconv.frontends.cntk.converters.conv import resolve_pads

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit

MAX_POOLING, AVG_POOLING = 0, 1


@CONVERTERS.register("Pooling")
def convert_pooling(ctx: Context, unit: Unit) -> None:
    a = unit.attrs
    name, (x,) = start(ctx, unit)
    kind = int(a.get("poolingType", MAX_POOLING))
    if kind not in (MAX_POOLING, AVG_POOLING):
        raise unsupported(ctx, unit, f"pooling type {kind}")
    sample = sample_shape(ctx, x)
    if not ctx.batched(x) or len(sample) < 2:
        raise unsupported(ctx, unit, f"pooling an input of shape {list(sample)}")
    spatial = sample[1:]
    n = len(spatial)
    window = list(py_shape(a.get("poolingWindowShape", ())))
    if len(window) == n + 1:
        if window[0] != 1:
            raise unsupported(ctx, unit, "pooling across channels")
        window = window[1:]
    if len(window) != n:
        raise unsupported(ctx, unit, f"window {window} on input {list(sample)}")
    window = [spatial[i] if d < 0 else d for i, d in enumerate(window)]
    what = f"{ctx.model.path}: Pooling {name!r}"
    # Stored per-axis attributes may include the channel axis (last stored entry);
    # per_axis keeps the first n stored entries, i.e. the spatial axes.
    strides = per_axis(a.get("strides", (1,)), n, 1, what)
    auto = [bool(v) for v in per_axis(a.get("autoPadding", [False]), n, False, what)]
    lower = per_axis(a.get("lowerPad", (0,)), n, 0, what)
    upper = per_axis(a.get("upperPad", (0,)), n, 0, what)
    ceil = bool(a.get("ceilOutDim", False))
    pads = resolve_pads(ctx, unit, spatial, window, strides, [1] * n, auto, lower, upper,
                        ceil)
    if ceil and any(auto):
        # Auto-padded axes already have CNTK's ceil-mode size in their pads.
        if not all(auto):
            raise unsupported(ctx, unit, "ceilOutDim with auto padding on some axes only")
        ceil = False
    op = "MaxPool" if kind == MAX_POOLING else "AveragePool"
    if list(window) == list(spatial) and not any(pads):
        out = ctx.add("GlobalMaxPool" if kind == MAX_POOLING else "GlobalAveragePool", [x], name)
    else:
        extra = {} if kind == MAX_POOLING else {
            "count_include_pad": bool(a.get("includePad", False))}
        out = ctx.add(op, [x], name, kernel_shape=tuple(window), strides=tuple(strides),
                      pads=tuple(pads), ceil_mode=ceil, **extra)
    finish(ctx, unit, out)
