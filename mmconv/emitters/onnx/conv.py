"""Conv and ConvTranspose: the IR ops are ONNX's with explicit pads, so one node each."""

from __future__ import annotations

from mmconv.emitters.onnx.context import HANDLERS, EmitContext, present
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs


def window_attrs(node: Node, n: int) -> dict[str, list[int]]:
    """strides, pads and dilations spelled out in full.

    The IR's empty defaults are written as explicit ones and zeros so the ONNX
    node means the same under every opset and reader (no auto_pad, no defaults
    that differ between tools).
    """
    strides, dilations, pads_begin, pads_end = spatial_attrs(node, n)
    return {"strides": strides, "pads": pads_begin + pads_end, "dilations": dilations}


@HANDLERS.register("Conv")
def emit_conv(ctx: EmitContext, node: Node) -> None:
    kernel = list(ctx.shape(node.inputs[1])[2:])
    ctx.add("Conv", present(node.inputs),
            node.outputs, name=node.name, kernel_shape=kernel, group=node.attr("group"),
            **window_attrs(node, len(kernel)))


@HANDLERS.register("ConvTranspose")
def emit_conv_transpose(ctx: EmitContext, node: Node) -> None:
    kernel = list(ctx.shape(node.inputs[1])[2:])
    extra = list(node.attr("output_padding")) or None
    ctx.add("ConvTranspose", present(node.inputs),
            node.outputs, name=node.name, kernel_shape=kernel, group=node.attr("group"),
            output_padding=extra, **window_attrs(node, len(kernel)))
