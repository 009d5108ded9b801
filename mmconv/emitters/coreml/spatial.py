"""Spatial rearrangement: DepthToSpace, SpaceToDepth, Resize.

MIL's depth_to_space is TensorFlow's (the IR's DCR mode) and pixel_shuffle is
PyTorch's (CRD); space_to_depth is TensorFlow's, the IR's.  Resize: Core ML's
iOS15 resampling ops do not spell ONNX's coordinate modes one for one, and a
mismatch could not be caught without a Mac, so only the case every mode
agrees on is written: nearest-neighbour upsampling of H and W by integer
factors (output pixel i reads input i // s), as upsample_nearest_neighbor.
"""

from __future__ import annotations

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

#: (coordinate mode, nearest mode) pairs under which an integer upscale by s reads input
#: i // s for output i = q*s + r (0 <= r < s): asymmetric floor(q + r/s);
#: tf_half_pixel_for_nn floor(q + (r + 1/2)/s); half_pixel round(q + (r + 1/2)/s - 1/2),
#: whose fraction lies in (-1/2, 1/2) and so never ties
_INDEX_DIV = {("asymmetric", "floor"), ("tf_half_pixel_for_nn", "floor"),
              ("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
              ("pytorch_half_pixel", "round_prefer_floor"),
              ("pytorch_half_pixel", "round_prefer_ceil")}


@HANDLERS.register("DepthToSpace")
def emit_depth_to_space(ctx: EmitContext, node: Node) -> None:
    block = int(node.attr("blocksize"))
    if node.attr("mode") == "CRD":
        ctx.call("pixel_shuffle", node.outputs[0], x=ctx.var(node.inputs[0]),
                 upscale_factor=block)
    else:
        ctx.call("depth_to_space", node.outputs[0], x=ctx.var(node.inputs[0]),
                 block_size=block)


@HANDLERS.register("SpaceToDepth")
def emit_space_to_depth(ctx: EmitContext, node: Node) -> None:
    ctx.call("space_to_depth", node.outputs[0], x=ctx.var(node.inputs[0]),
             block_size=int(node.attr("blocksize")))


@HANDLERS.register("Resize")
def emit_resize(ctx: EmitContext, node: Node) -> None:
    x_shape = ctx.static_shape(node.inputs[0])
    out_shape = ctx.static_shape(node.outputs[0])
    mode = str(node.attr("mode"))
    coord = str(node.attr("coordinate_transformation_mode"))
    nearest = str(node.attr("nearest_mode"))
    if len(x_shape) != 4 or tuple(out_shape[:2]) != tuple(x_shape[:2]):
        raise ctx.unsupported(node, "Core ML resizes H and W of a rank-4 input only")
    factors = [o // i if o % i == 0 else 0 for i, o in zip(x_shape[2:], out_shape[2:],
                                                          strict=True)]
    if mode != "nearest" or (coord, nearest) not in _INDEX_DIV or not all(f >= 1 for f in factors):
        raise ctx.unsupported(
            node, f"Resize mode={mode} coordinate_transformation_mode={coord} "
            f"nearest_mode={nearest} from {list(x_shape[2:])} to {list(out_shape[2:])}: the "
            "Core ML target writes nearest-neighbour upsampling by integer factors only")
    ctx.call("upsample_nearest_neighbor", node.outputs[0], x=ctx.var(node.inputs[0]),
             scale_factor_height=factors[0], scale_factor_width=factors[1])
