"""Conv and ConvTranspose as ``nn.Conv{1,2,3}d`` / ``nn.ConvTranspose{1,2,3}d``.

The IR's OIHW kernel ([C, M/group, *k] for ConvTranspose) is PyTorch's own
layout, so weights are stored as they are.  Symmetric pads become the layer's
``padding``; only where an axis's begin and end pads differ does an ``F.pad``
(conv) or a crop (transposed conv) handle the difference.
"""

from __future__ import annotations

from mmconv.emitters.pytorch.context import HANDLERS, EmitContext, ints
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs


def torch_pads(begin: list[int], end: list[int]) -> list[int]:
    """Per-axis begin/end pads in F.pad's order: last axis first."""
    out: list[int] = []
    for b, e in zip(reversed(begin), reversed(end), strict=True):
        out += [b, e]
    return out


def split_pads(begin: list[int], end: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(symmetric part for the layer, extra begin, extra end) of each axis's pads."""
    sym = [min(b, e) for b, e in zip(begin, end, strict=True)]
    return sym, [b - s for b, s in zip(begin, sym, strict=True)], [
        e - s for e, s in zip(end, sym, strict=True)]


def _window_kwargs(strides: list[int], padding: list[int], dilations: list[int],
                   group: int) -> str:
    """Keyword arguments that differ from the layer's defaults, in a fixed order."""
    parts = []
    if any(s != 1 for s in strides):
        parts.append(f"stride={ints(strides)}")
    if any(p != 0 for p in padding):
        parts.append(f"padding={ints(padding)}")
    if any(d != 1 for d in dilations):
        parts.append(f"dilation={ints(dilations)}")
    if group != 1:
        parts.append(f"groups={group}")
    return "".join(f", {p}" for p in parts)


@HANDLERS.register("Conv")
def emit_conv(ctx: EmitContext, node: Node) -> None:
    """nn.ConvNd when the kernel is a weight (F.convNd when computed at run time)."""
    x_name, w_name, b_name = node.inputs[0], node.inputs[1], node.input(2)
    w_shape = ctx.static_shape(node, w_name, "the kernel")
    n = len(w_shape) - 2
    if n not in (1, 2, 3):
        raise ctx.unsupported(node, f"{n}-d convolution (PyTorch has 1-d to 3-d)")
    strides, dilations, begin, end = spatial_attrs(node, n)
    group = int(node.attr("group"))
    sym, extra_b, extra_e = split_pads(begin, end)
    x = ctx.value(x_name)
    if any(extra_b) or any(extra_e):
        x = f"F.pad({x}, {list(torch_pads(extra_b, extra_e))})"
    w, b = ctx.weight(w_name), ctx.weight(b_name)
    if w is not None and (b is not None or not b_name):
        in_ch, out_ch = w_shape[1] * group, w_shape[0]
        bias = "" if b is not None else ", bias=False"
        params = {"weight": w}
        if b is not None:
            params["bias"] = b.reshape(out_ch)
        layer = ctx.layer(node, f"nn.Conv{n}d({in_ch}, {out_ch}, kernel_size={ints(w_shape[2:])}"
                          f"{_window_kwargs(strides, sym, dilations, group)}{bias}"
                          f"{ctx.dtype_kw(x_name)})", params)
        ctx.assign(node, f"{layer}({x})")
        return
    bias = ctx.value(b_name) if b_name else "None"
    ctx.assign(node, f"F.conv{n}d({x}, {ctx.value(w_name)}, {bias}, {list(strides)}, "
                     f"{list(sym)}, {list(dilations)}, {group})")


@HANDLERS.register("ConvTranspose")
def emit_conv_transpose(ctx: EmitContext, node: Node) -> None:
    """nn.ConvTransposeNd; asymmetric pads: the smaller one as padding, the rest cropped."""
    x_name, w_name, b_name = node.inputs[0], node.inputs[1], node.input(2)
    w_shape = ctx.static_shape(node, w_name, "the kernel")
    n = len(w_shape) - 2
    if n not in (1, 2, 3):
        raise ctx.unsupported(node, f"{n}-d transposed convolution (PyTorch has 1-d to 3-d)")
    strides, dilations, begin, end = spatial_attrs(node, n)
    group = int(node.attr("group"))
    out_pad = list(node.attr("output_padding")) or [0] * n
    if any(p >= max(s, d) for p, s, d in zip(out_pad, strides, dilations, strict=True)):
        raise ctx.unsupported(node, f"output_padding {out_pad} must be smaller than the stride "
                              "or the dilation in PyTorch")
    sym, extra_b, extra_e = split_pads(begin, end)
    w, b = ctx.weight(w_name), ctx.weight(b_name)
    x = ctx.value(x_name)
    if w is not None and (b is not None or not b_name):
        in_ch, out_ch = w_shape[0], w_shape[1] * group
        kwargs = _window_kwargs(strides, sym, [1] * n, 1)
        if any(out_pad):
            kwargs += f", output_padding={ints(out_pad)}"
        if group != 1:
            kwargs += f", groups={group}"
        if any(d != 1 for d in dilations):
            kwargs += f", dilation={ints(dilations)}"
        params = {"weight": w}
        if b is not None:
            params["bias"] = b.reshape(out_ch)
        bias = "" if b is not None else ", bias=False"
        layer = ctx.layer(node, f"nn.ConvTranspose{n}d({in_ch}, {out_ch}, "
                          f"kernel_size={ints(w_shape[2:])}{kwargs}{bias}"
                          f"{ctx.dtype_kw(x_name)})", params)
        expr = f"{layer}({x})"
    else:
        bias = ctx.value(b_name) if b_name else "None"
        expr = (f"F.conv_transpose{n}d({x}, {ctx.value(w_name)}, {bias}, {list(strides)}, "
                f"{list(sym)}, {list(out_pad)}, {group}, {list(dilations)})")
    if any(extra_b) or any(extra_e):
        crop = ", ".join(f"{eb or ''}:{-ee if ee else ''}"
                         for eb, ee in zip(extra_b, extra_e, strict=True))
        expr = f"{expr}[:, :, {crop}]"
    ctx.assign(node, expr)
