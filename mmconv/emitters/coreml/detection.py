"""Detection ops: Core ML has no max ROI pooling (its crop_resize samples bilinearly)."""

from __future__ import annotations

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("MaxRoiPool")
def emit_max_roi_pool(ctx: EmitContext, node: Node) -> None:
    raise ctx.unsupported(node, "Core ML has no max ROI pooling (crop_resize interpolates); "
                          "convert this model to ONNX or Caffe instead")
