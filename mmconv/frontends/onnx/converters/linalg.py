"""Gemm and MatMul: a static right operand becomes an IR Dense ([out, in] weight) where the
left one is 2-D, so targets get their native fully connected layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmconv.frontends.onnx.converters import CONVERTERS

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode


@CONVERTERS.register("Gemm", since=7)
def gemm(ctx: OnnxContext, node: OnnxNode) -> None:
    """Y = alpha * A' @ B' + beta * C (C broadcast to [M, N])."""
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    trans_a = int(node.attr("transA", 0))
    trans_b = int(node.attr("transB", 0))
    a = ctx.x(node, 0)
    if trans_a:
        a = ctx.add("Transpose", [a], f"{node.name}/transA", perm=(1, 0))
    b_static = ctx.static(node.input(1))
    c_static = ctx.static(node.input(2)) if node.input(2) else None
    if b_static is not None and (not node.input(2) or c_static is not None):
        w = b_static if trans_b else b_static.T
        dtype = w.dtype
        if alpha != 1.0:
            w = (w * np.asarray(alpha, dtype)).astype(dtype)
        weight = ctx.cached_weight(node.input(1), node.name, "W", np.ascontiguousarray(w),
                                   key=f"gemm{trans_b}:{alpha}")
        ins = [a, weight]
        bias = None
        if c_static is not None:
            out_dim = w.shape[0]
            c = np.asarray(c_static)
            if c.size == 1 or (c.ndim <= 2 and c.shape[-1] == out_dim and c.size == out_dim):
                bias = np.broadcast_to((c * np.asarray(beta, c.dtype)).reshape(-1),
                                       (out_dim,)).astype(c.dtype)
        if bias is not None or c_static is None:
            if bias is not None:
                ins.append(ctx.cached_weight(node.input(2), node.name, "B",
                                             np.ascontiguousarray(bias), key=f"gemm:{beta}"))
            ctx.set(node, ctx.add("Dense", ins, node.name))
            return
    b = ctx.x(node, 1, "B")
    if trans_b:
        b = ctx.add("Transpose", [b], f"{node.name}/transB", perm=(1, 0))
    y = ctx.add("MatMul", [a, b], f"{node.name}/matmul" if node.input(2) or alpha != 1 else
                node.name)
    if alpha != 1.0:
        k = ctx.constant(f"{node.name}/alpha", np.array(alpha, ctx.dtype(y)))
        y = ctx.add("Mul", [y, k], f"{node.name}/scaled" if node.input(2) else node.name)
    if node.input(2):
        c = ctx.x(node, 2, "C")
        if beta != 1.0:
            k = ctx.constant(f"{node.name}/beta", np.array(beta, ctx.dtype(c)))
            c = ctx.add("Mul", [c, k], f"{node.name}/beta_c")
        y = ctx.add("Add", [y, c], node.name)
    ctx.set(node, y)


@CONVERTERS.register("MatMul", since=1)
def matmul(ctx: OnnxContext, node: OnnxNode) -> None:
    a = ctx.x(node, 0)
    b_static = ctx.static(node.input(1))
    if b_static is not None and b_static.ndim == 2 and len(ctx.shape(a)) == 2:
        weight = ctx.cached_weight(node.input(1), node.name, "W",
                                   lambda: np.ascontiguousarray(b_static.T), key="transposed")
        ctx.set(node, ctx.add("Dense", [a, weight], node.name))
        return
    ctx.simple(node, "MatMul", 2, params=("A", "B"))
