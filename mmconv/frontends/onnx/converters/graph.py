"""Constants, shape queries and pass-through ops.

Most of these are evaluated at conversion time by the builder (their inputs are
known); the converters here handle what is left: a Constant becomes a weight
on first use, Identity/Dropout pass their input through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx.converters import CONVERTERS

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode


@CONVERTERS.register("Identity", since=1)
def identity(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.set(node, ctx.x(node, 0))


@CONVERTERS.register("Dropout", since=1)
def dropout(ctx: OnnxContext, node: OnnxNode) -> None:
    """Inference: the identity (the mask output, if read, is all true)."""
    if len(node.outputs) > 1 and node.outputs[1]:
        mask = node.outputs[1]
        used = any(mask in n.input for n in ctx.model.graph.node)
        if used:
            raise UnsupportedError(f"{ctx.where(node)}: the dropout mask output is not "
                                   "supported")
    ctx.set(node, ctx.x(node, 0))


def _not_constant(ctx: OnnxContext, node: OnnxNode) -> None:
    """Reached only when the builder could not evaluate the node at conversion time."""
    raise UnsupportedError(
        f"{ctx.where(node)}: its inputs are only known at run time (mmconv folds {node.op} "
        "when the shapes it reads are static apart from the batch)")


for _op in ("Shape", "Size", "ConstantOfShape", "Range", "NonZero"):
    CONVERTERS.register(_op, since=1)(_not_constant)


@CONVERTERS.register("Constant", since=1)
def constant(ctx: OnnxContext, node: OnnxNode) -> None:
    """Constants are folded by the builder; this handles the sparse form, refused."""
    raise UnsupportedError(f"{ctx.where(node)}: a sparse or non-tensor Constant is not "
                           "supported")
