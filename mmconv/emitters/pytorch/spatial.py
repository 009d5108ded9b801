"""Resize (``F.interpolate`` where its formula is the IR's), DepthToSpace
(``F.pixel_shuffle`` for CRD), SpaceToDepth; channels-first throughout.

``F.interpolate`` is used only when it computes exactly the IR's sampling: its
nearest modes are checked index by index against ONNX's (in float32, as torch
computes them), its linear modes are half_pixel (``align_corners=False``) and
align_corners.  Every other Resize is written per axis with ``_resize_axis``
(two index_selects and a blend), from indices and weights computed at emit time.
"""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node
from mmconv.ir.ops.spatial import resize_axis_map, resized_axes

_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _torch_nearest(n_in: int, n_out: int, scale: float, exact: bool,
                   given: bool) -> list[int]:
    """The source index torch's 'nearest' / 'nearest-exact' takes, in float32 as torch."""
    s = np.float32(1.0) / np.float32(scale) if given else np.float32(n_in) / np.float32(n_out)
    out = []
    for o in range(n_out):
        src = (np.float32(o) + np.float32(0.5)) * s if exact else np.float32(o) * s
        out.append(min(math.floor(src), n_in - 1))
    return out


def _native(node: Node, axes: list[tuple[int, int, int, float]], rank: int) -> str | None:
    """The F.interpolate mode (and align_corners) with the IR's sampling, or None."""
    if not axes or any(a < 2 for a, *_ in axes) or not 3 <= rank <= 5:
        return None
    given = bool(node.attr("scales"))
    coord = str(node.attr("coordinate_transformation_mode"))
    if node.attr("mode") == "nearest":
        for exact, mode in ((False, "'nearest'"), (True, "'nearest-exact'")):
            if all(resize_axis_map(node, n, m, s)[0] == _torch_nearest(n, m, s, exact, given)
                   for _, n, m, s in axes):
                return f"mode={mode}"
        return None
    linear = _LINEAR[rank - 2]
    if coord == "align_corners" and not given:
        return f"mode='{linear}', align_corners=True"
    if coord == "half_pixel" or (coord == "pytorch_half_pixel"
                                 and all(m > 1 for _, _, m, _ in axes)):
        return f"mode='{linear}', align_corners=False"
    return None


@HANDLERS.register("Resize")
def emit_resize(ctx: EmitContext, node: Node) -> None:
    x_name = node.inputs[0]
    in_shape, out_shape = ctx.shape(x_name), ctx.shape(node.outputs[0])
    axes, dynamic = resized_axes(node, in_shape, out_shape)
    if dynamic:
        raise ctx.unsupported(node, f"axis {dynamic[0]} is dynamic (the batch) and resized")
    x = ctx.value(x_name)
    rank = len(in_shape)
    native = _native(node, axes, rank)
    if native is not None:
        spatial = list(range(2, rank))
        if node.attr("scales"):
            scales = [float(node.attr("scales")[a]) for a in spatial]
            how = f"scale_factor={literal(tuple(scales))}, recompute_scale_factor=False"
        else:
            how = f"size={[int(out_shape[a]) for a in spatial]}"  # type: ignore[arg-type]
        ctx.assign(node, f"F.interpolate({x}, {how}, {native})")
        return
    expr = x
    for axis, n_in, n_out, scale in axes:
        i0, i1, w = resize_axis_map(node, n_in, n_out, scale)
        expr = (f"{ctx.helper('_resize_axis')}({expr}, {axis}, {i0}, {i1}, "
                f"{literal([float(v) for v in w])})")
    ctx.assign(node, expr)


def _dims(ctx: EmitContext, node: Node) -> tuple[str, int, int, int, int]:
    """The batch (static, or read at run time) and C, H, W of X."""
    x_name = node.inputs[0]
    n, c, h, w = ctx.shape(x_name)
    if None in (c, h, w):
        raise ctx.unsupported(node, f"needs static C, H, W, got {list(ctx.shape(x_name))}")
    batch = str(n) if n is not None else f"{ctx.value(x_name)}.shape[0]"
    return batch, int(c), int(h), int(w), int(node.attr("blocksize"))  # type: ignore[arg-type]


@HANDLERS.register("DepthToSpace")
def emit_depth_to_space(ctx: EmitContext, node: Node) -> None:
    """CRD is ``F.pixel_shuffle``; DCR is its reshape-permute-reshape definition."""
    x = ctx.value(node.inputs[0])
    n, c, h, w, b = _dims(ctx, node)
    if node.attr("mode") == "CRD":
        ctx.assign(node, f"F.pixel_shuffle({x}, {b})")
        return
    co = c // (b * b)
    ctx.assign(node, f"{x}.reshape([{n}, {b}, {b}, {co}, {h}, {w}]).permute(0, 3, 4, 1, 5, 2)"
                     f".reshape([{n}, {co}, {h * b}, {w * b}])")


@HANDLERS.register("SpaceToDepth")
def emit_space_to_depth(ctx: EmitContext, node: Node) -> None:
    """ONNX's channel order is block-major ((i*b + j) * C + c), not F.pixel_unshuffle's."""
    x = ctx.value(node.inputs[0])
    n, c, h, w, b = _dims(ctx, node)
    ctx.assign(node, f"{x}.reshape([{n}, {c}, {h // b}, {b}, {w // b}, {b}])"
                     f".permute(0, 3, 5, 1, 2, 4).reshape([{n}, {c * b * b}, {h // b}, "
                     f"{w // b}])")
