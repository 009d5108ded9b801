"""Spatial resampling and rearrangement: Resize, DepthToSpace, SpaceToDepth.

X is channels-first, [N, C, *spatial]. The helpers here (output size, the scale
each axis really uses, the source coordinate of an output pixel) are shared by
shape inference, the numpy evaluator and the emitters, so every target computes
the same ONNX formulas.
"""

from __future__ import annotations

import math

from mmconv.errors import IRError
from mmconv.ir.core import Node, Shape, Value
from mmconv.ir.ops._common import need
from mmconv.ir.registry import Attr, op

COORDINATE_MODES = (
    "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize_output_shape(node: Node, shape: Shape) -> Shape:
    """Y's shape: ``sizes`` (0 copies X's dim) or floor(X dim * scale) per axis."""
    scales, sizes = node.attr("scales"), node.attr("sizes")
    rank = len(shape)
    if bool(scales) == bool(sizes):
        raise IRError(f"node {node.name!r} (Resize): give exactly one of scales and sizes")
    if len(scales or sizes) != rank:
        raise IRError(f"node {node.name!r} (Resize): {'scales' if scales else 'sizes'} needs "
                      f"{rank} values (one per axis of X), got {list(scales or sizes)}")
    if rank < 3:
        raise IRError(f"node {node.name!r} (Resize): X must be [N, C, spatial...], got "
                      f"{list(shape)}")
    if scales:
        if any(s <= 0 for s in scales):
            raise IRError(f"node {node.name!r} (Resize): scales must be > 0, got {list(scales)}")
        return tuple(None if d is None else math.floor(d * s)
                     for d, s in zip(shape, scales, strict=True))
    if any(s < 0 for s in sizes):
        raise IRError(f"node {node.name!r} (Resize): sizes must be >= 0, got {list(sizes)}")
    return tuple(d if s == 0 else s for d, s in zip(shape, sizes, strict=True))


def resize_scales(node: Node, in_shape: Shape, out_shape: Shape) -> list[float]:
    """The scale each axis uses in the coordinate transform: ``scales`` when given (ONNX
    uses them even when floor() made the output size disagree), else out / in."""
    if node.attr("scales"):
        return [float(s) for s in node.attr("scales")]
    return [1.0 if i is None or o is None or i == o else o / i
            for i, o in zip(in_shape, out_shape, strict=True)]


def source_coordinate(mode: str, x: float, scale: float, length_in: int,
                      length_out: int) -> float:
    """ONNX Resize's coordinate_transformation_mode: output pixel ``x`` -> input coordinate."""
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if length_out > 1 else 0.0
    if mode == "align_corners":
        return 0.0 if length_out == 1 else x * (length_in - 1) / (length_out - 1)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def nearest_index(mode: str, c: float) -> int:
    """ONNX Resize's nearest_mode: the input index nearest to coordinate ``c``."""
    if mode == "round_prefer_floor":
        return math.ceil(c - 0.5)  # x.5 goes down
    if mode == "round_prefer_ceil":
        return math.floor(c + 0.5)
    if mode == "floor":
        return math.floor(c)
    if mode == "ceil":
        return math.ceil(c)
    raise ValueError(f"unknown nearest_mode {mode!r}")


@op(
    "Resize",
    onnx="Resize",
    inputs=["X"],
    attrs={
        "mode": Attr("str", "nearest", "nearest or linear (bilinear on 2-D, trilinear on 3-D "
                     "spatial axes)", choices=("nearest", "linear")),
        "coordinate_transformation_mode": Attr(
            "str", "half_pixel", "how an output pixel maps to an input coordinate (ONNX)",
            choices=COORDINATE_MODES),
        "nearest_mode": Attr("str", "round_prefer_floor", "how nearest mode rounds that "
                             "coordinate (ONNX)", choices=NEAREST_MODES),
        "scales": Attr("floats", (), "scale per axis of X (N and C included, 1.0 there); "
                       "empty when sizes is given"),
        "sizes": Attr("ints", (), "the full output shape, 0 copying X's dim (for the "
                      "dynamic batch); empty when scales is given"),
    },
    doc="""Resize the spatial axes of X [N, C, *spatial] as ONNX Resize (opset 13+, no
    antialias, no roi; cubic and tf_crop_and_resize are not IR modes), with scales or
    sizes static: exactly one of them is given, for every axis of X. With scales, output
    dim = floor(dim * scale) and the transform uses the given scale; with sizes, the
    scale of an axis is sizes / dim. Output pixel x of an axis maps to input coordinate
    c by coordinate_transformation_mode: half_pixel (x + 0.5) / scale - 0.5;
    pytorch_half_pixel the same but 0 when the output length is 1; align_corners x *
    (in - 1) / (out - 1); asymmetric x / scale; tf_half_pixel_for_nn (x + 0.5) / scale.
    nearest takes the input at c rounded by nearest_mode (clamped to the axis); linear
    interpolates between the two neighbours of c clamped to [0, in - 1], separably per
    axis. Frontends resize the spatial axes; PyTorch, Keras and CNTK refuse resizing a
    dynamic axis (the batch).""",
)
def infer_resize(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    out = resize_output_shape(node, x.shape)
    if any(d == 0 for d in out):
        raise IRError(f"node {node.name!r} (Resize): output shape {list(out)} is empty")
    return [(x.dtype, out)]


_BLOCK = {"blocksize": Attr("int", doc="the side of the square block of pixels (>= 1)")}


def _block(node: Node, x: Value) -> int:
    size = node.attr("blocksize")
    if x.rank != 4 or size < 1:
        raise IRError(f"node {node.name!r} ({node.op}): needs X [N, C, H, W] and blocksize "
                      f">= 1, got {list(x.shape)} and {size}")
    return size


@op(
    "DepthToSpace",
    onnx="DepthToSpace",
    inputs=["X"],
    attrs={**_BLOCK, "mode": Attr("str", "DCR", "DCR: depth-column-row order of the "
                                   "channels (TensorFlow's depth_to_space); CRD: column-"
                                   "row-depth (PyTorch's pixel_shuffle)",
                                   choices=("DCR", "CRD"))},
    doc="""Move blocks of channels into space, as ONNX DepthToSpace: X [N, C, H, W] ->
    Y [N, C / b^2, H * b, W * b] with b = blocksize. DCR: Y[n, c, h*b + i, w*b + j] =
    X[n, (i*b + j) * C/b^2 + c, h, w]; CRD: = X[n, c*b^2 + i*b + j, h, w].""",
)
def infer_depth_to_space(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    b = _block(node, x)
    n, c, h, w = x.shape
    if c is None or c % (b * b):
        raise IRError(f"node {node.name!r} (DepthToSpace): channels {c} are not a multiple "
                      f"of blocksize^2 = {b * b}")
    return [(x.dtype, (n, c // (b * b), None if h is None else h * b,
                       None if w is None else w * b))]


@op(
    "SpaceToDepth",
    onnx="SpaceToDepth",
    inputs=["X"],
    attrs=_BLOCK,
    doc="""Move b x b blocks of pixels into channels, as ONNX SpaceToDepth (the inverse
    of DepthToSpace in DCR mode, TensorFlow's space_to_depth): X [N, C, H, W] -> Y [N,
    C * b^2, H / b, W / b], Y[n, (i*b + j) * C + c, h, w] = X[n, c, h*b + i, w*b + j].""",
)
def infer_space_to_depth(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    b = _block(node, x)
    n, c, h, w = x.shape
    if any(d is not None and d % b for d in (h, w)):
        raise IRError(f"node {node.name!r} (SpaceToDepth): H and W ({h}, {w}) must be "
                      f"multiples of blocksize {b}")
    return [(x.dtype, (n, None if c is None else c * b * b, None if h is None else h // b,
                       None if w is None else w // b))]


def resize_axis_map(node: Node, n_in: int, n_out: int, scale: float
                    ) -> tuple[list[int], list[int], list[float]]:
    """Resize along one axis as ``Y[o] = X[i0[o]] * (1 - w[o]) + X[i1[o]] * w[o]``.

    Nearest mode has ``i1 == i0`` and ``w == 0``.  Every emitter that cannot call a
    native resize with the same formula builds it from these (gathers and a blend,
    or a constant interpolation matrix), so all of them share ONNX's arithmetic.
    """
    coord = str(node.attr("coordinate_transformation_mode"))
    i0, i1, w = [], [], []
    for o in range(n_out):
        c = source_coordinate(coord, o, scale, n_in, n_out)
        if node.attr("mode") == "nearest":
            i = min(max(nearest_index(str(node.attr("nearest_mode")), c), 0), n_in - 1)
            i0.append(i)
            i1.append(i)
            w.append(0.0)
            continue
        c = min(max(c, 0.0), n_in - 1.0)
        lo = math.floor(c)
        i0.append(lo)
        i1.append(min(lo + 1, n_in - 1))
        w.append(c - lo)
    return i0, i1, w


def resized_axes(node: Node, in_shape: Shape, out_shape: Shape,
                 ) -> tuple[list[tuple[int, int, int, float]], list[int]]:
    """The axes a Resize really changes, as (axis, in, out, scale) with static sizes,
    and the resized axes that are dynamic (the batch), which emitters refuse.

    An axis whose size stays and whose scale is 1 is left out: every mode maps each
    pixel onto itself then.
    """
    scales = resize_scales(node, in_shape, out_shape)
    axes, dynamic = [], []
    for axis, (n_in, n_out, s) in enumerate(zip(in_shape, out_shape, scales, strict=True)):
        if n_in == n_out and s == 1.0:
            continue
        if n_in is None or n_out is None:
            dynamic.append(axis)
        else:
            axes.append((axis, n_in, n_out, s))
    return axes, dynamic
