"""Pooling over the spatial axes of channels-first tensors."""

from __future__ import annotations

from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import need, spatial_attrs, window_out
from mmconv.ir.ops.conv import WINDOW_ATTRS
from mmconv.ir.registry import Attr, op

POOL_ATTRS = {
    "kernel_shape": Attr("ints", doc="window size per spatial axis"),
    **WINDOW_ATTRS,
    "ceil_mode": Attr(
        "bool", False, "round the output size up; a last window counts only if it starts "
        "inside the input or the begin padding"
    ),
}


def _infer_pool(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    kernel = node.attr("kernel_shape")
    n = len(kernel)
    strides, dil, pb, pe = spatial_attrs(node, n)
    spatial = tuple(
        window_out(x.shape[2 + i], kernel[i], strides[i], dil[i], pb[i], pe[i],
                   node.attr("ceil_mode"))
        for i in range(n)
    )
    return [(x.dtype, (*x.shape[:2], *spatial))]


op(
    "MaxPool",
    onnx="MaxPool",
    inputs=["X"],
    attrs=POOL_ATTRS,
    doc="""Maximum over each window, as ONNX MaxPool; padded positions never win.""",
)(_infer_pool)

op(
    "AveragePool",
    onnx="AveragePool",
    inputs=["X"],
    attrs={
        **POOL_ATTRS,
        "count_include_pad": Attr(
            "bool", False, "count the explicit padding in the divisor; the part of a "
            "ceil_mode window that lies beyond the end padding is never counted "
            "(onnxruntime's and PyTorch's behaviour)"
        ),
    },
    doc="""Mean over each window, as ONNX AveragePool. Unless count_include_pad,
    padded positions are excluded from the divisor.""",
)(_infer_pool)


def _infer_global(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    return [(x.dtype, (*x.shape[:2], *([1] * (x.rank - 2))))]


op(
    "GlobalAveragePool",
    onnx="GlobalAveragePool",
    inputs=["X"],
    doc="""Mean over all spatial axes; spatial axes are kept with size 1.""",
)(_infer_global)

op(
    "GlobalMaxPool",
    onnx="GlobalMaxPool",
    inputs=["X"],
    doc="""Maximum over all spatial axes; spatial axes are kept with size 1.""",
)(_infer_global)
