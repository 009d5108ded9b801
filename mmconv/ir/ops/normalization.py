"""Normalization layers, in inference form (running statistics are inputs)."""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import need, norm_axis, same
from mmconv.ir.registry import Attr, op


@op(
    "BatchNormalization",
    onnx="BatchNormalization",
    inputs=["X", "scale", "B", "mean", "var"],
    attrs={
        "epsilon": Attr("float", 1e-5, "added to the variance"),
        "spatial": Attr(
            "bool", True, "True: one statistic per channel (params of shape [C]); False: "
            "one per element of a sample (params shaped like X without its batch axis), "
            "as CNTK's BatchNormalization with map_rank=0"
        ),
    },
    doc="""Inference batch normalization: Y = (X - mean) / sqrt(var + epsilon) * scale
    + B, the parameters broadcast over the batch axis (and, when spatial, over the
    spatial axes). Kept as one op so targets can emit a real, retrainable BN layer.""",
)
def infer_batch_norm(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    expected = (x.shape[1],) if node.attr("spatial") else x.shape[1:]
    for i, port in enumerate(("scale", "B", "mean", "var"), start=1):
        p = need(node, inputs, i)
        size = 1
        for d in p.shape:
            size *= d
        want = 1
        for d in expected:
            want *= d if d is not None else 0
        if size != want:
            raise IRError(
                f"node {node.name!r} (BatchNormalization): {port} has shape {list(p.shape)}, "
                f"expected {list(expected)} elements (spatial={node.attr('spatial')})"
            )
    return same(node, inputs)


@op(
    "LRN",
    onnx="LRN",
    inputs=["X"],
    attrs={
        "size": Attr("int", doc="number of channels in the window (odd)"),
        "alpha": Attr("float", 1e-4),
        "beta": Attr("float", 0.75),
        "bias": Attr("float", 1.0),
    },
    doc="""Local response normalization across channels, as ONNX LRN:
    Y = X / (bias + alpha / size * sum of X^2 over the channel window) ^ beta.""",
)
def infer_lrn(node: Node, inputs: list[Value | None]) -> list[tuple]:
    size = node.attr("size")
    if size < 1 or size % 2 == 0:
        # ONNX LRN centres the window on the channel; an even size has no centre
        raise IRError(f"node {node.name!r} (LRN): size must be a positive odd number, got {size}")
    return same(node, inputs)


@op(
    "LayerNormalization",
    onnx="LayerNormalization",
    inputs=["X", "scale", "B?"],
    attrs={
        "axis": Attr("int", -1, "first normalized axis; all axes from it on are normalized"),
        "epsilon": Attr("float", 1e-5),
    },
    doc="""Layer normalization as ONNX LayerNormalization (opset 17): normalize over
    axes [axis, rank), then scale and shift.""",
)
def infer_layer_norm(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    norm_axis(node, node.attr("axis"), x.rank)
    return same(node, inputs)


@op(
    "InstanceNormalization",
    onnx="InstanceNormalization",
    inputs=["X", "scale", "B"],
    attrs={"epsilon": Attr("float", 1e-5, "added to the variance")},
    doc="""Instance normalization as ONNX InstanceNormalization: for every sample and
    channel of X [N, C, *spatial], Y = (X - mean) / sqrt(var + epsilon) * scale[c] + B[c],
    mean and (biased) variance taken over the spatial axes of that sample and channel;
    scale and B have shape [C].""",
)
def infer_instance_norm(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    if x.rank < 3:
        raise IRError(f"node {node.name!r} (InstanceNormalization): X must be [N, C, "
                      f"spatial...], got {list(x.shape)}")
    for i, port in ((1, "scale"), (2, "B")):
        p = need(node, inputs, i)
        if p.shape != (x.shape[1],):
            raise IRError(f"node {node.name!r} (InstanceNormalization): {port} has shape "
                          f"{list(p.shape)}, expected [{x.shape[1]}]")
    return same(node, inputs)
