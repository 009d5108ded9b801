"""Pooling: Max/Average (ceil_mode, count_include_pad, dilations, auto_pad) and global forms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters._util import auto_pads, ints, only_first_output, spatial

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode


def _check(attrs: dict, opset: int) -> str | None:
    mode = attrs.get("auto_pad", "NOTSET")
    if mode not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        return f"auto_pad={mode}"
    return None  # storage_order only affects the Indices output, refused when read


def _pool(ctx: OnnxContext, node: OnnxNode, op: str) -> None:
    only_first_output(ctx, node, "Indices")
    x = ctx.x(node, 0)
    kernel = ints(node.attr("kernel_shape"))
    n = len(kernel)
    strides = ints(node.attr("strides", (1,) * n))
    dilations = ints(node.attr("dilations", (1,) * n))
    pads = ints(node.attr("pads", (0,) * 2 * n))
    mode = node.attr("auto_pad", "NOTSET")
    if mode != "NOTSET":
        pads = auto_pads(mode, spatial(ctx, x, node), kernel, strides, dilations)
    attrs: dict[str, object] = {"kernel_shape": kernel, "strides": strides, "pads": pads,
                                "ceil_mode": bool(node.attr("ceil_mode", 0))}
    if any(d != 1 for d in dilations):
        attrs["dilations"] = dilations
    if op == "AveragePool":
        attrs["count_include_pad"] = bool(node.attr("count_include_pad", 0))
    ctx.set(node, ctx.add(op, [x], node.name, **attrs))


@CONVERTERS.register("MaxPool", since=1, check=_check)
def max_pool(ctx: OnnxContext, node: OnnxNode) -> None:
    _pool(ctx, node, "MaxPool")


@CONVERTERS.register("AveragePool", since=1, check=_check)
def average_pool(ctx: OnnxContext, node: OnnxNode) -> None:
    _pool(ctx, node, "AveragePool")


@CONVERTERS.register("GlobalAveragePool", since=1)
def global_average_pool(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "GlobalAveragePool", 1)


@CONVERTERS.register("GlobalMaxPool", since=1)
def global_max_pool(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "GlobalMaxPool", 1)
