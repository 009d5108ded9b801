"""ROIPooling (Fast R-CNN) as IR MaxRoiPool.

CNTK's ROIPooling takes, per sample, a feature map (C, H, W) and ROIs (R, 4) as
(x1, y1, x2, y2) in input-image pixels, scaled by ``spatialScale`` onto the map,
and yields (R, C, ph, pw) per sample (``roiOutputShape`` is stored (pw, ph)).
ONNX's MaxRoiPool wants all ROIs of the batch as one [N*R, 5] tensor whose
first column is the sample index.  The batch is dynamic, so that column is
computed: a CumSum of ones along the batch axis, minus one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmconv.frontends.cntk.axes import py_shape
from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, start, unsupported

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit

MAX_POOLING = 0


@CONVERTERS.register("ROIPooling")
def convert_roi_pooling(ctx: Context, unit: Unit) -> None:
    a = unit.attrs
    name, ins = start(ctx, unit)
    if len(ins) != 2:
        raise unsupported(ctx, unit, f"{len(ins)} inputs")
    x, rois = ins
    if int(a.get("poolingType", MAX_POOLING)) != MAX_POOLING:
        raise unsupported(ctx, unit, "average ROI pooling")
    fmap, boxes = sample_shape(ctx, x), sample_shape(ctx, rois)
    pooled = py_shape(a.get("roiOutputShape", ()))
    if (len(fmap) != 3 or len(boxes) != 2 or boxes[1] != 4 or len(pooled) != 2
            or not ctx.batched(x) or not ctx.batched(rois)):
        raise unsupported(ctx, unit, f"feature map {list(fmap)} with ROIs {list(boxes)}, "
                          f"output {list(pooled)}")
    n_rois = boxes[0]
    dtype = ctx.dtype(rois)

    def step(op: str, inputs: list[str], hint: str, batched: bool = True, **attrs: object
             ) -> str:
        return ctx.add(op, inputs, ctx.graph.unique_name(f"{name}/{hint}"), batched=batched,
                       **attrs)

    zero = ctx.constant(f"{name}/zero", np.zeros((), dtype=dtype))
    one = ctx.constant(f"{name}/one", np.ones((), dtype=dtype))
    first = step("Slice", [rois], "first_column", starts=(0,), ends=(1,), axes=(2,))
    ones = step("Add", [step("Mul", [first, zero], "zeros"), one], "ones")
    index = step("Sub", [step("CumSum", [ones], "count", axis=0), one], "batch_index")
    with_index = step("Concat", [index, rois], "indexed_rois", axis=2)
    flat = step("Reshape", [with_index], "all_rois", batched=False, shape=(-1, 5))
    pooledv = step("MaxRoiPool", [x, flat], "pool", batched=False,
                   pooled_shape=tuple(int(p) for p in pooled),
                   spatial_scale=float(a.get("spatialScale", 1.0)))
    out = ctx.add("Reshape", [pooledv], name, batched=True,
                  shape=(-1, n_rois, fmap[0], *(int(p) for p in pooled)))
    finish(ctx, unit, out)
