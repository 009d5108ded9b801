"""Pooling: MIL max_pool/avg_pool with custom pads; global pools are reductions.

MIL's ceil_mode (PyTorch's rule) needs symmetric pads; with asymmetric pads
the ceil-mode windows are made with extra end padding instead (as the ONNX
emitter does before opset 10), which is exact for max pooling and for average
pooling that leaves padding out of the divisor.  Dilated pooling has no MIL op.
"""

from __future__ import annotations

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.emitters.coreml.conv import mil_pads
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs, window_out


@HANDLERS.register("MaxPool", "AveragePool")
def emit_pool(ctx: EmitContext, node: Node) -> None:
    kernel = [int(k) for k in node.attr("kernel_shape")]
    n = len(kernel)
    if not 1 <= n <= 3:
        raise ctx.unsupported(node, f"{n} spatial axes; Core ML pools have 1 to 3")
    strides, dilations, begins, ends = spatial_attrs(node, n)
    if any(d != 1 for d in dilations):
        raise ctx.unsupported(node, "dilated pooling has no Core ML op")
    avg = node.op == "AveragePool"
    include_pad = avg and bool(node.attr("count_include_pad"))
    ceil = bool(node.attr("ceil_mode"))
    if ceil and begins != ends:
        x_shape = ctx.static_shape(node.inputs[0])
        for i in range(n):
            floor_out = window_out(x_shape[2 + i], kernel[i], strides[i], 1, begins[i], ends[i],
                                   False)
            ceil_out = window_out(x_shape[2 + i], kernel[i], strides[i], 1, begins[i], ends[i],
                                  True)
            if floor_out == ceil_out:
                continue
            if include_pad:
                raise ctx.unsupported(node, "ceil_mode with asymmetric pads and "
                                      "count_include_pad has no Core ML equivalent")
            ends[i] = (ceil_out - 1) * strides[i] + kernel[i] - x_shape[2 + i] - begins[i]
        ceil = False
    if ceil and n > 2:
        raise ctx.unsupported(node, "Core ML's ceil_mode covers 1-D and 2-D pools only")
    extra = {"exclude_padding_from_average": not include_pad} if avg else {}
    ctx.call("avg_pool" if avg else "max_pool", node.outputs[0], x=ctx.var(node.inputs[0]),
             kernel_sizes=kernel, strides=strides, pad_type="custom",
             pad=mil_pads(begins, ends), ceil_mode=ceil, **extra)


@HANDLERS.register("GlobalAveragePool", "GlobalMaxPool")
def emit_global_pool(ctx: EmitContext, node: Node) -> None:
    """reduce_mean/reduce_max over the spatial axes, kept with size 1."""
    rank = ctx.rank(node.inputs[0])
    op = "reduce_mean" if node.op == "GlobalAveragePool" else "reduce_max"
    ctx.call(op, node.outputs[0], x=ctx.var(node.inputs[0]), axes=list(range(2, rank)),
             keep_dims=True)
