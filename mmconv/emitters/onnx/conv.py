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


def _kernel_shape(ctx: EmitContext, node: Node) -> list[int] | None:
    """The kernel's spatial size, written out when static (ONNX can infer it from
    W, but readers like Netron and some converters expect it); None otherwise."""
    dims = ctx.shape(node.inputs[1])[2:]
    return None if any(d is None for d in dims) else [int(d) for d in dims]  # type: ignore[arg-type]


@HANDLERS.register("Conv")
def emit_conv(ctx: EmitContext, node: Node) -> None:
    """One Conv node with explicit pads; the IR's OIHW kernel is ONNX's layout already."""
    ctx.add("Conv", present(node.inputs), node.outputs, name=node.name,
            kernel_shape=_kernel_shape(ctx, node), group=node.attr("group"),
            **window_attrs(node, ctx.rank(node.inputs[1]) - 2))


@HANDLERS.register("ConvTranspose")
def emit_conv_transpose(ctx: EmitContext, node: Node) -> None:
    """One ConvTranspose node; explicit pads and output_padding, never output_shape
    (whose padding split differs between runtimes)."""
    ctx.add("ConvTranspose", present(node.inputs), node.outputs, name=node.name,
            kernel_shape=_kernel_shape(ctx, node), group=node.attr("group"),
            output_padding=list(node.attr("output_padding")) or None,
            **window_attrs(node, ctx.rank(node.inputs[1]) - 2))
