"""MaxRoiPool (Fast R-CNN ROI max pooling) from ``keras.ops`` only.

Keras has no ROI pooling layer, and a custom layer or a Lambda would make the
``.keras`` file need our code (or unsafe deserialization) to load.  So the
handler writes plain ``keras.ops`` calls that compute exactly what ONNX
MaxRoiPool (onnxruntime's kernel) computes:

- each ROI row is ``(batch_index, x1, y1, x2, y2)``; the corners are multiplied by
  ``spatial_scale`` and rounded half away from zero (C ``round``; ``ops.round``
  rounds half to even, so it is written out exactly as ``sign(v) * (floor|v| +
  (frac|v| >= 0.5))``);
- the box is ``max(end - start + 1, 1)`` pixels; a bin's size is that over the
  pooled size, in the ROI dtype as onnxruntime does; bin ``i`` covers
  ``[floor(i*bin) + start, ceil((i+1)*bin) + start)`` clipped to the map;
- a bin that is empty after clipping is 0.

The pooled shape is static, so the bins are unrolled at emit time: one masked
max over W per output column, then one masked max over H per output row
(``where(mask, features, lowest)``), each over the ROI's gathered feature map.
Peak memory is about twice the gathered ``[R, H, W, C]`` features, whatever the
pooled size; the number of ROIs may be dynamic.  The feature map is read
channels-last; the result is written directly in the layout its consumers want
(channels-last when a spatial op reads it, else the IR's ``[R, C, ph, pw]``), by
where the per-bin results are stacked, so no transpose is needed either way.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, channels_last, identity
from mmconv.ir.core import Node


@HANDLERS.register("MaxRoiPool")
def emit_max_roi_pool(ctx: EmitContext, node: Node) -> None:
    x, rois = node.inputs[0], node.inputs[1]
    if ctx.rank(x) != 4:
        raise ctx.unsupported(node, f"a feature map of rank {ctx.rank(x)} (needs [N, C, H, W])")
    _, height, width = ctx.static(node, x)
    ph, pw = (int(p) for p in node.attr("pooled_shape"))
    scale = float(node.attr("spatial_scale"))
    dt = ctx.dtype(rois)
    lowest = float(np.finfo(np.dtype(ctx.dtype(x))).min)
    out_cl = node.outputs[0] in ctx.wants_cl
    xs, rs = ctx.cl(x), ctx.plain(rois)
    ctx.out(node)

    def name(hint: str) -> str:
        return ctx.ident(f"{node.name}_{hint}")

    def const(array: np.ndarray, hint: str) -> str:
        return ctx.const(np.asarray(array, dtype=dt), hint)

    batch, scaled, mag, box = name("batch"), name("scaled"), name("abs"), name("box")
    ctx.line(f"# {node.name!r} (MaxRoiPool): ONNX semantics, {ph}x{pw} bins, "
             f"spatial_scale {scale!r}")
    ctx.line(f"{batch} = ops.cast(ops.take({rs}, 0, axis=1), 'int32')  # [R] sample index")
    ctx.line(f"{scaled} = ops.multiply(ops.take({rs}, [1, 2, 3, 4], axis=1), {literal(scale)})")
    ctx.line(f"{mag} = ops.abs({scaled})")
    ctx.line(f"{box} = ops.multiply(ops.sign({scaled}), ops.add(ops.floor({mag}), ops.cast("
             f"ops.greater_equal(ops.subtract({mag}, ops.floor({mag})), 0.5), {literal(dt)})))"
             "  # round half away from zero: x1 y1 x2 y2")
    size = name("size")
    ctx.line(f"{size} = ops.maximum(ops.add(ops.subtract(ops.take({box}, [2, 3], axis=1), "
             f"ops.take({box}, [0, 1], axis=1)), 1.0), 1.0)  # [R, 2] ROI width, height")
    bins = name("bin")
    ctx.line(f"{bins} = ops.divide({size}, {const([pw, ph], 'pooled')})  # [R, 2] bin size")
    masks, empties = {}, {}
    for axis, (label, pooled, extent) in enumerate((("w", pw, width), ("h", ph, height))):
        lo, hi, inside, empty = (name(f"{label}_{k}") for k in ("lo", "hi", "in", "empty"))
        step = f"ops.take({bins}, [{axis}], axis=1)"
        start = f"ops.take({box}, [{axis}], axis=1)"
        # start + offset written as offset - (-start): Keras 3's TF ops.add would make
        # [R, bins] + [R, 1] a bias_add along the wrong axis when R == bins
        ctx.line(f"{lo} = ops.clip(ops.subtract(ops.floor(ops.multiply({step}, "
                 f"{const(np.arange(pooled), f'{label}_bins')})), ops.negative({start})), "
                 f"0, {extent})")
        ctx.line(f"{hi} = ops.clip(ops.subtract(ops.ceil(ops.multiply({step}, "
                 f"{const(np.arange(1, pooled + 1), f'{label}_bins_end')})), "
                 f"ops.negative({start})), 0, {extent})")
        grid = const(np.arange(extent).reshape(1, extent, 1), f"{label}_pixels")
        ctx.line(f"{inside} = ops.logical_and(ops.greater_equal({grid}, "
                 f"ops.expand_dims({lo}, 1)), ops.less({grid}, ops.expand_dims({hi}, 1)))"
                 f"  # [R, {label.upper()}, bins]")
        ctx.line(f"{empty} = ops.less_equal({hi}, {lo})")
        masks[label], empties[label] = inside, empty
    feats = name("features")
    ctx.line(f"{feats} = ops.take({xs}, {batch}, axis=0)  # [R, H, W, C]")
    cols = []
    for j in range(pw):
        col = name(f"col{j}")
        ctx.line(f"{col} = ops.max(ops.where(ops.expand_dims(ops.take({masks['w']}, [{j}], "
                 f"axis=2), 1), {feats}, {literal(lowest)}), axis=2)  # [R, H, C]")
        cols.append(col)
    # [R, H, pw, C] for a channels-last result, else [R, H, C, pw]
    stacked = name("columns")
    ctx.line(f"{stacked} = ops.stack([{', '.join(cols)}], axis={2 if out_cl else 3})")
    rows = []
    for i in range(ph):
        row = name(f"row{i}")
        ctx.line(f"{row} = ops.max(ops.where(ops.expand_dims(ops.take({masks['h']}, [{i}], "
                 f"axis=2), -1), {stacked}, {literal(lowest)}), axis=1)")
        rows.append(row)
    pooled = name("max")
    ctx.line(f"{pooled} = ops.stack([{', '.join(rows)}], axis={1 if out_cl else 2})")
    h_axes, w_axes = ((2, 3), (1, 3)) if out_cl else ((1, 3), (1, 2))
    empty = (f"ops.logical_or(ops.expand_dims({empties['h']}, {literal(h_axes)}), "
             f"ops.expand_dims({empties['w']}, {literal(w_axes)}))")
    ctx.define(node, f"ops.where({empty}, 0.0, {pooled})  # empty bins are 0",
               channels_last(4) if out_cl else identity(4))
