"""Conv and ConvTranspose: MIL's conv/conv_transpose with custom (explicit) pads.

The IR's OIHW kernel is MIL conv's ``[C_out, C_in/groups, *K]`` and the IR's
ConvTranspose kernel ``[C_in, C_out/groups, *K]`` is MIL conv_transpose's, so
weights are stored as they are.  MIL spells pads per axis as (begin, end)
pairs; the IR lists all begins, then all ends.
"""

from __future__ import annotations

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs


def mil_pads(begins: list[int], ends: list[int]) -> list[int]:
    """IR pads (begins..., ends...) as MIL's interleaved (b0, e0, b1, e1, ...)."""
    return [p for pair in zip(begins, ends, strict=True) for p in pair]


def _window(ctx: EmitContext, node: Node) -> dict[str, object]:
    n = ctx.rank(node.inputs[1]) - 2
    if not 1 <= n <= 3:
        raise ctx.unsupported(node, f"{n} spatial axes; Core ML convolutions have 1 to 3")
    strides, dilations, begins, ends = spatial_attrs(node, n)
    return {"strides": strides, "pad_type": "custom", "pad": mil_pads(begins, ends),
            "dilations": dilations, "groups": int(node.attr("group"))}


@HANDLERS.register("Conv")
def emit_conv(ctx: EmitContext, node: Node) -> None:
    bias = node.input(2)
    ctx.call("conv", node.outputs[0], x=ctx.var(node.inputs[0]), weight=ctx.var(node.inputs[1]),
             bias=ctx.var(bias) if bias else None, **_window(ctx, node))


@HANDLERS.register("ConvTranspose")
def emit_conv_transpose(ctx: EmitContext, node: Node) -> None:
    """output_padding becomes an explicit ``output_shape`` (the IR's inferred one)."""
    bias = node.input(2)
    window = _window(ctx, node)
    if len(window["strides"]) > 2:  # type: ignore[arg-type]
        raise ctx.unsupported(node, "Core ML's conv_transpose has 1 or 2 spatial axes")
    out_shape = None
    if any(node.attr("output_padding")):
        out_shape = list(ctx.static_shape(node.outputs[0]))
    ctx.call("conv_transpose", node.outputs[0], x=ctx.var(node.inputs[0]),
             weight=ctx.var(node.inputs[1]), bias=ctx.var(bias) if bias else None,
             output_shape=out_shape, **window)
