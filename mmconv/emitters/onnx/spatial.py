"""Resize, DepthToSpace, SpaceToDepth: the same ONNX ops.

Resize is native from opset 11 with every IR mode.  Before that only the
asymmetric transform exists (Upsample 7/9, Resize 10), with nearest flooring
when upsampling, so older opsets take those forms with integer upscales only.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.ir.core import Node
from mmconv.ir.ops.spatial import resize_scales


def _legacy_resize(ctx: EmitContext, node: Node, scales: list[float]) -> None:
    """Upsample (opsets 7-9) or Resize-10: asymmetric, integer upscales only."""
    mode = str(node.attr("mode"))
    legacy = (node.attr("coordinate_transformation_mode") == "asymmetric"
              and (mode == "linear" or node.attr("nearest_mode") == "floor")
              and all(s >= 1 and float(s).is_integer() for s in scales))
    if not legacy:
        ctx.require(node, 11, f"Resize with {mode}/"
                    f"{node.attr('coordinate_transformation_mode')}/"
                    f"{node.attr('nearest_mode')} and scales {scales}")
    x = node.inputs[0]
    if ctx.opset < 9:
        ctx.add("Upsample", [x], node.outputs, name=node.name, mode=mode, scales=scales)
        return
    op = "Upsample" if ctx.opset == 9 else "Resize"
    ctx.add(op, [x, ctx.const(np.asarray(scales, np.float32), "scales")], node.outputs,
            name=node.name, mode=mode)


@HANDLERS.register("Resize")
def emit_resize(ctx: EmitContext, node: Node) -> None:
    """Resize-11+: scales as given, or sizes; a dynamic dim of sizes (the batch) is read
    with Shape at run time, since ONNX sizes are values, not "copy" markers."""
    x, y = node.inputs[0], node.outputs[0]
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    scales = resize_scales(node, in_shape, out_shape)
    if ctx.opset < 11:
        _legacy_resize(ctx, node, scales)
        return
    attrs = {
        "mode": str(node.attr("mode")),
        "coordinate_transformation_mode": str(node.attr("coordinate_transformation_mode")),
        "nearest_mode": str(node.attr("nearest_mode")),
    }
    # roi (and scales when sizes are given) are required inputs before opset 13
    empty = "" if ctx.opset >= 13 else ctx.const(np.zeros(0, np.float32), "empty")
    roi = empty
    if node.attr("scales"):
        inputs = [x, roi, ctx.const(np.asarray(scales, np.float32), "scales")]
    else:
        static = [d for d in out_shape if d is not None]
        if len(static) == len(out_shape):
            sizes = ctx.int64s(static, "sizes")
        else:
            # the leading dynamic dims come from X (the IR copies them), the rest are static
            lead = next(i for i in range(len(out_shape) + 1)
                        if i == len(out_shape) or out_shape[i] is not None)
            if any(d is None for d in out_shape[lead:]):
                raise ctx.unsupported(node, f"a dynamic dim after static ones in "
                                      f"{list(out_shape)}")
            shape = ctx.add("Shape", [x])[0]
            head = ctx.add("Slice", [shape, ctx.int64s([0], "start"),
                                     ctx.int64s([lead], "end")])[0]
            sizes = ctx.add("Concat", [head, ctx.int64s(out_shape[lead:], "sizes")],
                            axis=0)[0]
        inputs = [x, roi, empty, sizes]
    ctx.add("Resize", inputs, node.outputs, name=node.name, **attrs)


@HANDLERS.register("DepthToSpace")
def emit_depth_to_space(ctx: EmitContext, node: Node) -> None:
    """DCR is DepthToSpace's only order before opset 11, which added the mode."""
    mode = str(node.attr("mode"))
    if mode == "CRD":
        ctx.require(node, 11, "DepthToSpace mode CRD")
    ctx.add("DepthToSpace", [node.inputs[0]], node.outputs, name=node.name,
            blocksize=int(node.attr("blocksize")), mode=mode if ctx.opset >= 11 else None)


@HANDLERS.register("SpaceToDepth")
def emit_space_to_depth(ctx: EmitContext, node: Node) -> None:
    ctx.add("SpaceToDepth", [node.inputs[0]], node.outputs, name=node.name,
            blocksize=int(node.attr("blocksize")))
