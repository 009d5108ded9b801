"""Detection ops: MaxRoiPool is ONNX's (opset 1), one node."""

from __future__ import annotations

from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("MaxRoiPool")
def emit_max_roi_pool(ctx: EmitContext, node: Node) -> None:
    ctx.add("MaxRoiPool", node.inputs[:2], node.outputs, name=node.name,
            pooled_shape=list(node.attr("pooled_shape")),
            spatial_scale=float(node.attr("spatial_scale")))
