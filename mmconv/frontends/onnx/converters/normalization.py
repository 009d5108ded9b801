"""BatchNormalization (inference), InstanceNormalization, LayerNormalization, LRN."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters._util import norm_axis, only_first_output

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode


def _bn_check(attrs: dict, opset: int) -> str | None:
    if attrs.get("training_mode", 0):
        return "training_mode=1"
    if opset < 7 and attrs.get("is_test", 0) == 0:
        return "is_test=0"
    return None


@CONVERTERS.register("BatchNormalization", since=7, check=_bn_check)
def batch_norm(ctx: OnnxContext, node: OnnxNode) -> None:
    """Opsets 7-8 may say ``spatial=0`` (statistics per element of a sample)."""
    only_first_output(ctx, node, "training statistics")
    spatial = bool(node.attr("spatial", 1)) if ctx.opset < 9 else True
    ctx.simple(node, "BatchNormalization", 5, params=("X", "scale", "B", "mean", "var"),
               epsilon=float(node.attr("epsilon", 1e-5)), spatial=spatial)


@CONVERTERS.register("InstanceNormalization", since=6)
def instance_norm(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "InstanceNormalization", 3, params=("X", "scale", "B"),
               epsilon=float(node.attr("epsilon", 1e-5)))


@CONVERTERS.register("LayerNormalization", since=17)
def layer_norm(ctx: OnnxContext, node: OnnxNode) -> None:
    only_first_output(ctx, node, "Mean/InvStdDev")
    x = ctx.x(node, 0)
    axis = norm_axis(int(node.attr("axis", -1)), len(ctx.shape(x)))
    ins = [x, ctx.x(node, 1, "scale")]
    if node.input(2):
        ins.append(ctx.x(node, 2, "B"))
    ctx.set(node, ctx.add("LayerNormalization", ins, node.name, axis=axis,
                          epsilon=float(node.attr("epsilon", 1e-5))))


@CONVERTERS.register("LRN", since=1)
def lrn(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "LRN", 1, size=int(node.attr("size")), alpha=float(node.attr("alpha", 1e-4)),
               beta=float(node.attr("beta", 0.75)), bias=float(node.attr("bias", 1.0)))
