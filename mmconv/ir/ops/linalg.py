"""Matrix products."""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import broadcast, need
from mmconv.ir.registry import op


@op(
    "Dense",
    onnx="Gemm",
    inputs=["X", "W", "B?"],
    doc="""Fully connected layer: Y = X @ W^T + B with X [N, in], W [out, in] and B
    [out] (ONNX Gemm with transB=1). Frontends flatten higher-rank inputs with an
    explicit Flatten first, in the source framework's element order.""",
)
def infer_dense(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x, w = need(node, inputs, 0), need(node, inputs, 1)
    if x.rank != 2 or w.rank != 2:
        raise IRError(
            f"node {node.name!r} (Dense): X and W must be rank 2, got {list(x.shape)} "
            f"and {list(w.shape)}"
        )
    if x.shape[1] is not None and x.shape[1] != w.shape[1]:
        raise IRError(
            f"node {node.name!r} (Dense): X has {x.shape[1]} features, W expects {w.shape[1]}"
        )
    return [(x.dtype, (x.shape[0], w.shape[0]))]


@op(
    "MatMul",
    onnx="MatMul",
    inputs=["A", "B"],
    doc="""Matrix product with numpy.matmul semantics (batch axes broadcast).""",
)
def infer_matmul(node: Node, inputs: list[Value | None]) -> list[tuple]:
    a, b = need(node, inputs, 0), need(node, inputs, 1)
    if a.rank < 1 or b.rank < 1:
        raise IRError(f"node {node.name!r} (MatMul): scalars are not allowed")
    a_shape = a.shape if a.rank > 1 else (1, *a.shape)
    b_shape = b.shape if b.rank > 1 else (*b.shape, 1)
    k1, k2 = a_shape[-1], b_shape[-2]
    if k1 is not None and k2 is not None and k1 != k2:
        raise IRError(f"node {node.name!r} (MatMul): inner sizes {k1} and {k2} differ")
    batch = broadcast(node, [a_shape[:-2], b_shape[:-2]])
    out = (*batch, a_shape[-2], b_shape[-1])
    if a.rank == 1:
        out = out[:-2] + out[-1:]
    if b.rank == 1:
        out = out[:-1]
    return [(a.dtype, out)]
