"""Dense and MatMul as InnerProduct.

Caffe's InnerProduct weight blob is ``[num_output, K]``, the IR Dense weight's
own ``[out, in]`` layout: stored as is.  A MatMul by a constant matrix
``[K, M]`` is an InnerProduct on the last axis with the matrix transposed once,
here; by a constant vector, an InnerProduct with one output, reshaped away.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("Dense")
def dense(ctx: EmitContext, node: Node) -> None:
    x, w_name = node.inputs[:2]
    w = ctx.need_weight(node, w_name, "the weight")
    if ctx.rank(x) != 2:
        raise ctx.unsupported(node, f"Dense on {list(ctx.shape(x))}; the IR wants [N, in]")
    blobs = [w]
    bias = node.input(2)
    if bias:
        blobs.append(ctx.need_weight(node, bias, "the bias").reshape(-1))
    ctx.final(node, "InnerProduct", [ctx.blob(x)], blobs=blobs,
              inner_product_param=pb.InnerProductParameter(
                  num_output=int(w.shape[0]), bias_term=bool(bias), axis=1))


@HANDLERS.register("MatMul")
def matmul(ctx: EmitContext, node: Node) -> None:
    """A @ B with B a constant matrix: InnerProduct over A's last axis."""
    a, b_name = node.inputs[:2]
    b = ctx.weight(b_name)
    if b is not None and b.ndim == 1 and ctx.rank(a) >= 2:  # a vector: one output, dropped
        (y,) = ctx.layer("InnerProduct", [ctx.blob(a)], hint="dot",
                         blobs=[b.reshape(1, -1)], inner_product_param=pb.InnerProductParameter(
                             num_output=1, bias_term=False, axis=ctx.rank(a) - 1))
        out = ctx.static_shape(node, node.outputs[0])
        ctx.final(node, "Reshape", [y], reshape_param=pb.ReshapeParameter(
            shape=pb.BlobShape(dim=[0, *out[1:]])))
        return
    if b is None or b.ndim != 2 or ctx.rank(a) < 2:
        raise ctx.unsupported(node, f"MatMul of {list(ctx.shape(a))} and "
                              f"{list(ctx.shape(b_name))}; Caffe's InnerProduct multiplies "
                              "by a constant matrix only")
    ctx.final(node, "InnerProduct", [ctx.blob(a)], blobs=[np.ascontiguousarray(b.T)],
              inner_product_param=pb.InnerProductParameter(
                  num_output=int(b.shape[1]), bias_term=False, axis=ctx.rank(a) - 1))
