"""MaxRoiPool as the ROIPooling layer of Fast R-CNN's Caffe (read by OpenCV's dnn).

The IR op follows ONNX MaxRoiPool, which was defined after this very layer:
rois ``[R, 5]`` rows (batch index, x1, y1, x2, y2), boxes scaled by
``spatial_scale`` and rounded, a ``pooled_shape`` grid of maxima per box.
"""

from __future__ import annotations

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("MaxRoiPool")
def max_roi_pool(ctx: EmitContext, node: Node) -> None:
    x, rois = node.inputs[:2]
    ph, pw = (int(v) for v in node.attr("pooled_shape"))
    ctx.final(node, "ROIPooling", [ctx.blob(x), ctx.blob(rois)],
              roi_pooling_param=pb.ROIPoolingParameter(
                  pooled_h=ph, pooled_w=pw, spatial_scale=float(node.attr("spatial_scale"))))
