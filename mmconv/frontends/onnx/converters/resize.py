"""Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9) to the IR's Resize.

Upsample and Resize-10 are ``asymmetric`` with nearest rounding down (what
onnxruntime does for them); from opset 11 the attributes say it.  Scales or
sizes must be known at conversion time; sizes that hold the batch become 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx.converters import CONVERTERS

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode

MODES = {"nearest": "nearest", "linear": "linear", "bilinear": "linear"}
TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _check(attrs: dict, opset: int) -> str | None:
    mode = attrs.get("mode", "nearest")
    if mode not in MODES:
        return f"mode={mode}"
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel")
    if opset >= 11 and ctm not in TRANSFORMS:
        return f"coordinate_transformation_mode={ctm}"
    if attrs.get("antialias", 0) and mode != "nearest":
        return "antialias=1"
    if attrs.get("nearest_mode", "round_prefer_floor") not in NEAREST:
        return f"nearest_mode={attrs.get('nearest_mode')}"
    if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return f"keep_aspect_ratio_policy={attrs.get('keep_aspect_ratio_policy')}"
    return None


def _emit(ctx: OnnxContext, node: OnnxNode, scales: np.ndarray | None, sizes: list[int] | None,
          mode: str, ctm: str, nearest: str) -> None:
    x = ctx.x(node, 0)
    rank = len(ctx.shape(x))
    attrs: dict[str, object] = {"mode": MODES[mode], "coordinate_transformation_mode": ctm,
                                "nearest_mode": nearest}
    axes = node.attr("axes")
    if scales is not None and scales.size:
        values = [float(v) for v in scales.reshape(-1)]
        if axes is not None:
            full = [1.0] * rank
            for a, v in zip(axes, values, strict=True):
                full[a % rank] = v
            values = full
        if values[:2] != [1.0, 1.0]:
            raise UnsupportedError(f"{ctx.where(node)}: resizing the batch or channel axis")
        attrs["scales"] = tuple(values)
    elif sizes is not None:
        if axes is not None:
            full_sizes = [0] * rank
            for a, v in zip(axes, sizes, strict=True):
                full_sizes[a % rank] = v
            sizes = full_sizes
        attrs["sizes"] = tuple(sizes)
    else:
        raise UnsupportedError(f"{ctx.where(node)}: neither scales nor sizes given")
    ctx.set(node, ctx.add("Resize", [x], node.name, **attrs))


@CONVERTERS.register("Upsample", since=7, check=_check)
def upsample_7(ctx: OnnxContext, node: OnnxNode) -> None:
    _emit(ctx, node, np.asarray(node.attr("scales"), np.float32), None,
          node.attr("mode", "nearest"), "asymmetric", "floor")


@CONVERTERS.register("Upsample", since=9, check=_check)
def upsample_9(ctx: OnnxContext, node: OnnxNode) -> None:
    _emit(ctx, node, ctx.need_static(node, 1, "the scales"), None,
          node.attr("mode", "nearest"), "asymmetric", "floor")


@CONVERTERS.register("Resize", since=10, check=_check)
def resize_10(ctx: OnnxContext, node: OnnxNode) -> None:
    _emit(ctx, node, ctx.need_static(node, 1, "the scales"), None,
          node.attr("mode", "nearest"), "asymmetric", "floor")


@CONVERTERS.register("Resize", since=11, check=_check)
def resize_11(ctx: OnnxContext, node: OnnxNode) -> None:
    """Inputs X, roi, scales, sizes (roi matters only for tf_crop_and_resize, refused)."""
    scales = ctx.need_static(node, 2, "the scales")
    sizes = None
    if node.input(3):
        k = ctx.known.get(node.input(3))
        if k is None:
            raise UnsupportedError(f"{ctx.where(node)}: sizes computed at run time")
        x_shape = ctx.shape(ctx.x(node, 0))
        sizes = [int(v) for v in k.a.reshape(-1)]
        if not k.is_static:
            # a size read from the input's dynamic axis (Shape -> Slice -> Concat) keeps it
            for i, dep in enumerate(k.batch_mask().reshape(-1).tolist()):
                if dep and (i >= len(x_shape) or x_shape[i] is not None):
                    raise UnsupportedError(f"{ctx.where(node)}: sizes depend on the batch "
                                           "size")
                if dep:
                    sizes[i] = 0
    _emit(ctx, node, scales, sizes, node.attr("mode", "nearest"),
          node.attr("coordinate_transformation_mode", "half_pixel"),
          node.attr("nearest_mode", "round_prefer_floor"))
