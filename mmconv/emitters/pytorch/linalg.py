"""Dense is ``nn.Linear`` (the IR's [out, in] weight is PyTorch's layout); MatMul is
``torch.matmul`` (numpy.matmul semantics, as the IR)."""

from __future__ import annotations

from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("Dense")
def emit_dense(ctx: EmitContext, node: Node) -> None:
    x_name, w_name, b_name = node.inputs[0], node.inputs[1], node.input(2)
    x = ctx.value(x_name)
    w, b = ctx.weight(w_name), ctx.weight(b_name)
    if w is not None and w.ndim == 2 and (b is not None or not b_name):
        out_f, in_f = w.shape
        params = {"weight": w}
        if b is not None:
            params["bias"] = b.reshape(out_f)
        bias = "" if b is not None else ", bias=False"
        layer = ctx.layer(node, f"nn.Linear({in_f}, {out_f}{bias}{ctx.dtype_kw(x_name)})",
                          params)
        ctx.assign(node, f"{layer}({x})")
        return
    bias = f", {ctx.value(b_name)}" if b_name else ""
    ctx.assign(node, f"F.linear({x}, {ctx.value(w_name)}{bias})")


@HANDLERS.register("MatMul")
def emit_matmul(ctx: EmitContext, node: Node) -> None:
    a, b = (ctx.value(i) for i in node.inputs[:2])
    ctx.assign(node, f"torch.matmul({a}, {b})")
