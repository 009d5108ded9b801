"""MaxRoiPool: PyTorch has no ONNX-exact ROI max pooling (torchvision's roi_pool
rounds differently and is a separate package), so the ``_max_roi_pool`` helper
implements it in plain torch."""

from __future__ import annotations

from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("MaxRoiPool")
def emit_max_roi_pool(ctx: EmitContext, node: Node) -> None:
    x, rois = (ctx.value(i) for i in node.inputs[:2])
    ph, pw = (int(p) for p in node.attr("pooled_shape"))
    scale = literal(float(node.attr("spatial_scale")))
    ctx.assign(node, f"{ctx.helper('_max_roi_pool')}({x}, {rois}, {ph}, {pw}, {scale})")
