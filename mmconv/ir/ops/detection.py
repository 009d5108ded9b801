"""Detection-network ops: ROI pooling."""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import need
from mmconv.ir.registry import Attr, op


@op(
    "MaxRoiPool",
    onnx="MaxRoiPool",
    inputs=["X", "rois"],
    attrs={
        "pooled_shape": Attr("ints", doc="output height and width of each pooled ROI"),
        "spatial_scale": Attr("float", 1.0, "multiplies the ROI coordinates to reach X's "
                              "pixel grid (e.g. 1/16 after four stride-2 stages)"),
    },
    doc="""Fast R-CNN ROI max pooling, as ONNX MaxRoiPool: X is [N, C, H, W], rois is
    [R, 5] with rows (batch_index, x1, y1, x2, y2); each box, scaled by spatial_scale and
    rounded, is split into a pooled_shape grid of bins whose maxima form Y [R, C, ph, pw].""",
)
def infer_max_roi_pool(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x, rois = need(node, inputs, 0), need(node, inputs, 1)
    pooled = node.attr("pooled_shape")
    if x.rank != 4 or rois.rank != 2 or rois.shape[1] not in (None, 5) or len(pooled) != 2:
        raise IRError(
            f"node {node.name!r} (MaxRoiPool): X {list(x.shape)} must be [N,C,H,W], rois "
            f"{list(rois.shape)} [R,5], pooled_shape {list(pooled)} two sizes")
    if any(p <= 0 for p in pooled):
        raise IRError(f"node {node.name!r} (MaxRoiPool): pooled_shape must be positive")
    return [(x.dtype, (rois.shape[0], x.shape[1], *pooled))]
