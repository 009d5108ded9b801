"""Conv and ConvTranspose: groups, dilations, and auto_pad resolved to explicit pads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters._util import auto_pads, ints, spatial

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _check(attrs: dict, opset: int) -> str | None:
    mode = attrs.get("auto_pad", "NOTSET")
    return None if mode in AUTO_PADS else f"auto_pad={mode}"


def _window(ctx: OnnxContext, node: OnnxNode, x: str, w: str) -> dict:
    kernel = tuple(int(d) for d in ctx.shape(w)[2:])  # type: ignore[arg-type]
    n = len(kernel)
    strides = ints(node.attr("strides", (1,) * n))
    dilations = ints(node.attr("dilations", (1,) * n))
    pads = ints(node.attr("pads", (0,) * 2 * n))
    return {"kernel": kernel, "strides": strides, "dilations": dilations, "pads": pads,
            "auto_pad": node.attr("auto_pad", "NOTSET")}


@CONVERTERS.register("Conv", since=1, check=_check)
def conv(ctx: OnnxContext, node: OnnxNode) -> None:
    x = ctx.x(node, 0)
    w = ctx.x(node, 1, "W")
    b = ctx.x(node, 2, "B")
    win = _window(ctx, node, x, w)
    pads = win["pads"]
    if win["auto_pad"] != "NOTSET":
        pads = auto_pads(win["auto_pad"], spatial(ctx, x, node), win["kernel"], win["strides"],
                         win["dilations"])
    out = ctx.add("Conv", [x, w, b] if b else [x, w], node.name, strides=win["strides"],
                  pads=pads, dilations=win["dilations"], group=int(node.attr("group", 1)))
    ctx.set(node, out)


@CONVERTERS.register("ConvTranspose", since=1, check=_check)
def conv_transpose(ctx: OnnxContext, node: OnnxNode) -> None:
    """Explicit pads and output_padding; ``output_shape`` and auto_pad SAME are resolved
    with ONNX's formula: the total padding split with the odd pixel at the end for
    SAME_UPPER, at the beginning otherwise (what onnxruntime does)."""
    x = ctx.x(node, 0)
    w = ctx.x(node, 1, "W")
    b = ctx.x(node, 2, "B")
    win = _window(ctx, node, x, w)
    n = len(win["kernel"])
    out_pad = list(ints(node.attr("output_padding", (0,) * n)))
    pads = list(win["pads"])
    out_shape = node.attr("output_shape")
    mode = win["auto_pad"]
    if out_shape is not None or mode in ("SAME_UPPER", "SAME_LOWER"):
        sizes = spatial(ctx, x, node)
        target = list(ints(out_shape))[-n:] if out_shape is not None else \
            [s * st for s, st in zip(sizes, win["strides"], strict=True)]
        pads = [0] * (2 * n)
        for i in range(n):
            full = (sizes[i] - 1) * win["strides"][i] + out_pad[i] + \
                (win["kernel"][i] - 1) * win["dilations"][i] + 1
            total = full - target[i]
            if total < 0:
                out_pad[i] += -total
                total = 0
            half = total // 2
            if mode == "SAME_UPPER":
                pads[i], pads[n + i] = half, total - half
            else:  # SAME_LOWER, and output_shape without auto_pad (ONNX's formula)
                pads[i], pads[n + i] = total - half, half
    elif mode == "VALID":
        pads = [0] * (2 * n)
    if any(p < 0 for p in pads):
        raise UnsupportedError(f"{ctx.where(node)}: negative padding {pads}")
    out = ctx.add("ConvTranspose", [x, w, b] if b else [x, w], node.name,
                  strides=win["strides"], pads=tuple(pads), dilations=win["dilations"],
                  group=int(node.attr("group", 1)), output_padding=tuple(out_pad))
    ctx.set(node, out)
