"""MaxRoiPool as MXNet ``ROIPooling``.

MXNet's ``ROIPooling`` takes the IR's operands as they are: the feature map
and ``[R, 5]`` boxes ``(batch index, x1, y1, x2, y2)``, ``pooled_size`` (h, w)
and ``spatial_scale``; it rounds the scaled box corners and splits it into
bins as Fast R-CNN (Caffe) did, which is the IR's meaning.
"""

from __future__ import annotations

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("MaxRoiPool")
def emit_max_roi_pool(ctx: EmitContext, node: Node) -> None:
    x, rois = node.inputs
    if ctx.rank(x) != 4:
        raise ctx.unsupported(node, "ROI pooling of a feature map that is not [N, C, H, W]")
    ctx.emit_op(node, "ROIPooling", [ctx.input(x), ctx.input(rois)],
                pooled_size=tuple(int(d) for d in node.attr("pooled_shape")),
                spatial_scale=float(node.attr("spatial_scale")))
