"""Shape ops: Flatten, Reshape, Transpose, Concat (one ONNX node each)."""

from __future__ import annotations

from mmconv.emitters.onnx.context import HANDLERS, EmitContext, axis_of
from mmconv.ir.core import Node


@HANDLERS.register("Flatten")
def emit_flatten(ctx: EmitContext, node: Node) -> None:
    """Flatten before opset 9 takes float tensors only."""
    if not ctx.dtype(node.inputs[0]).startswith("float"):
        ctx.require(node, 9, f"Flatten on {ctx.dtype(node.inputs[0])}")
    ctx.add("Flatten", [node.inputs[0]], node.outputs, name=node.name, axis=node.attr("axis"))


@HANDLERS.register("Reshape")
def emit_reshape(ctx: EmitContext, node: Node) -> None:
    """The IR's target-shape attribute becomes Reshape's int64 shape input (opset 5+),
    with 0 meaning "copy" as in the IR (allowzero stays 0)."""
    shape = ctx.int64s(node.attr("shape"), "shape")
    ctx.add("Reshape", [node.inputs[0], shape], node.outputs, name=node.name)


@HANDLERS.register("Transpose")
def emit_transpose(ctx: EmitContext, node: Node) -> None:
    """Only the IR's own Transpose nodes become Transposes; the emitter adds none."""
    ctx.add("Transpose", [node.inputs[0]], node.outputs, name=node.name,
            perm=list(node.attr("perm")))


@HANDLERS.register("Concat")
def emit_concat(ctx: EmitContext, node: Node) -> None:
    """The axis is written non-negative: negative Concat axes are legal only from 11."""
    axis = axis_of(node, ctx.rank(node.inputs[0]))
    ctx.add("Concat", node.inputs, node.outputs, name=node.name, axis=axis)
