"""Convolutions (channels-first: X is [N, C, *spatial], W is [M, C/group, *kernel])."""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import need, spatial_attrs, window_out
from mmconv.ir.registry import Attr, op

WINDOW_ATTRS = {
    "strides": Attr("ints", (), "step per spatial axis; empty means 1 on every axis"),
    "pads": Attr(
        "ints", (), "explicit zero padding, begin values of every spatial axis then end "
        "values (ONNX order); empty means none. Frontends resolve 'same'-style auto "
        "padding to these numbers."
    ),
    "dilations": Attr("ints", (), "kernel dilation per spatial axis; empty means 1"),
}


@op(
    "Conv",
    onnx="Conv",
    inputs=["X", "W", "B?"],
    attrs={**WINDOW_ATTRS, "group": Attr("int", 1, "number of channel groups")},
    doc="""N-d convolution (cross-correlation) as ONNX Conv: Y[n, m] = sum over the
    channels of group g and the kernel window of X * W, plus B[m]. Spatial rank is
    taken from W. Padding is always explicit (no auto_pad).""",
)
def infer_conv(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x, w = need(node, inputs, 0), need(node, inputs, 1)
    n = w.rank - 2
    if x.rank != n + 2 or n < 1:
        raise IRError(f"node {node.name!r} (Conv): input rank {x.rank} vs kernel rank {w.rank}")
    group = node.attr("group")
    if x.shape[1] is not None and x.shape[1] != w.shape[1] * group:
        raise IRError(
            f"node {node.name!r} (Conv): input has {x.shape[1]} channels, kernel expects "
            f"{w.shape[1]} x group {group}"
        )
    strides, dil, pb, pe = spatial_attrs(node, n)
    spatial = tuple(
        window_out(x.shape[2 + i], w.shape[2 + i], strides[i], dil[i], pb[i], pe[i])
        for i in range(n)
    )
    return [(x.dtype, (x.shape[0], w.shape[0], *spatial))]


@op(
    "ConvTranspose",
    onnx="ConvTranspose",
    inputs=["X", "W", "B?"],
    attrs={
        **WINDOW_ATTRS,
        "group": Attr("int", 1, "number of channel groups"),
        "output_padding": Attr("ints", (), "extra size added at the end of each spatial axis"),
    },
    doc="""Transposed convolution as ONNX ConvTranspose with explicit pads and
    output_padding; W is [C, M/group, *kernel]. out = (in-1)*stride - pad_begin -
    pad_end + (k-1)*dilation + 1 + output_padding.""",
)
def infer_conv_transpose(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x, w = need(node, inputs, 0), need(node, inputs, 1)
    n = w.rank - 2
    strides, dil, pb, pe = spatial_attrs(node, n)
    extra = list(node.attr("output_padding")) or [0] * n
    spatial = []
    for i in range(n):
        size = x.shape[2 + i]
        spatial.append(
            None if size is None
            else (size - 1) * strides[i] - pb[i] - pe[i] + (w.shape[2 + i] - 1) * dil[i] + 1
            + extra[i]
        )
    return [(x.dtype, (x.shape[0], w.shape[1] * node.attr("group"), *spatial))]
