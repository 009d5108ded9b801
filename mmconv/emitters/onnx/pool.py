"""Pooling.  The IR's pool ops are ONNX's; the handlers only deal with which
attributes an opset knows (ceil_mode from 10, MaxPool dilations from 10,
AveragePool dilations from 19)."""

from __future__ import annotations

from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.emitters.onnx.conv import window_attrs
from mmconv.ir.core import Node
from mmconv.ir.ops._common import window_out

_DILATIONS_FROM = {"MaxPool": 10, "AveragePool": 19}


def _ceil_as_end_pads(ctx: EmitContext, node: Node, kernel: list[int],
                      attrs: dict[str, list[int]]) -> list[int]:
    """Before opset 10 (no ceil_mode): the same windows via extra end padding.

    Extra end padding makes floor rounding produce the ceil-mode output size.
    The extra windows see the padding as -inf (MaxPool) or leave it out of the
    divisor (AveragePool without count_include_pad), which is exactly what ceil
    mode does with its last partial window; with count_include_pad the divisor
    would differ, so that case needs opset 10.
    """
    n = len(kernel)
    x_shape = ctx.shape(node.inputs[0])
    strides, pads = attrs["strides"], list(attrs["pads"])
    for i in range(n):
        size = x_shape[2 + i]
        if size is None:
            raise ctx.unsupported(node, "ceil_mode on a dynamic spatial axis needs opset >= 10")
        pb, pe = pads[i], pads[n + i]
        floor_out = window_out(size, kernel[i], strides[i], 1, pb, pe, False)
        ceil_out = window_out(size, kernel[i], strides[i], 1, pb, pe, True)
        if floor_out == ceil_out:
            continue
        if node.op == "AveragePool" and node.attr("count_include_pad"):
            ctx.require(node, 10, "ceil_mode with count_include_pad")
        new_end = (ceil_out - 1) * strides[i] + kernel[i] - size - pb
        if new_end >= kernel[i]:  # onnxruntime rejects pads as large as the window
            ctx.require(node, 10, f"ceil_mode with stride {strides[i]} > kernel {kernel[i]}")
        pads[n + i] = new_end
    return pads


def _emit_pool(ctx: EmitContext, node: Node) -> None:
    """MaxPool/AveragePool with pads, strides (and dilations when not 1) spelled out."""
    kernel = list(node.attr("kernel_shape"))
    attrs: dict[str, object] = dict(window_attrs(node, len(kernel)))
    dilations = attrs.pop("dilations")
    assert isinstance(dilations, list)
    if any(d != 1 for d in dilations):
        ctx.require(node, _DILATIONS_FROM[node.op], f"{node.op} dilations")
        attrs["dilations"] = dilations
    if node.op == "AveragePool":
        attrs["count_include_pad"] = int(node.attr("count_include_pad"))
    if node.attr("ceil_mode"):
        if ctx.opset >= 10:
            attrs["ceil_mode"] = 1
        else:
            attrs["pads"] = _ceil_as_end_pads(ctx, node, kernel, attrs)  # type: ignore[arg-type]
    ctx.add(node.op, [node.inputs[0]], node.outputs, name=node.name, kernel_shape=kernel,
            **attrs)


HANDLERS.register("MaxPool", "AveragePool")(_emit_pool)


@HANDLERS.register("GlobalAveragePool", "GlobalMaxPool")
def emit_global_pool(ctx: EmitContext, node: Node) -> None:
    """Same op and meaning in every opset (spatial axes kept with size 1)."""
    ctx.add(node.op, [node.inputs[0]], node.outputs, name=node.name)
