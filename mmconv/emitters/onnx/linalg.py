"""Dense (ONNX Gemm with transB=1) and MatMul."""

from __future__ import annotations

import numpy as np

from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("Dense")
def emit_dense(ctx: EmitContext, node: Node) -> None:
    """Gemm keeps W in the IR's [out, in] layout (transB=1), so no weight is transposed.

    Gemm's bias C is optional only from opset 11; before, a zero bias is added.
    """
    x, w = node.inputs[0], node.inputs[1]
    bias = node.input(2)
    if not bias and ctx.opset < 11:
        out = ctx.shape(w)[0]
        bias = ctx.const(np.zeros([out], dtype=ctx.dtype(x)), "zero_bias")
    ctx.add("Gemm", [x, w, bias] if bias else [x, w], node.outputs, name=node.name,
            transB=1)


@HANDLERS.register("MatMul")
def emit_matmul(ctx: EmitContext, node: Node) -> None:
    """numpy.matmul semantics, ONNX MatMul's since opset 1."""
    ctx.add("MatMul", node.inputs[:2], node.outputs, name=node.name)
