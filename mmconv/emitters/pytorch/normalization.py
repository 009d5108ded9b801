"""Normalization as real PyTorch layers: BatchNorm, LocalResponseNorm, LayerNorm.

Per-channel BN is ``nn.BatchNorm{1,2,3}d`` with its running statistics (the
model is put in eval mode, so they are used as in inference; ``.train()``
makes it retrainable).  Per-element BN (IR ``spatial=False``, CNTK's
``map_rank=0``) is an ``nn.BatchNorm1d`` over the flattened sample: one
feature per element is exactly per-element statistics, in eval and in
training, and it stays a standard layer.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.base import norm_axis
from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext, ints
from mmconv.ir.core import Node


@HANDLERS.register("BatchNormalization")
def emit_batch_norm(ctx: EmitContext, node: Node) -> None:
    x_name = node.inputs[0]
    rank = ctx.rank(x_name)
    eps = literal(float(node.attr("epsilon")))
    spatial = bool(node.attr("spatial")) or rank == 2
    x = ctx.value(x_name)
    if rank < 2:
        raise ctx.unsupported(node, "BatchNormalization needs a batch and a channel axis")
    if spatial:
        features = ctx.shape(x_name)[1]
    else:
        per_sample = ctx.shape(x_name)[1:]
        if any(d is None for d in per_sample):
            raise ctx.unsupported(node, "per-element BN needs static non-batch dims, got "
                                  f"{list(ctx.shape(x_name))}")
        features = int(np.prod(per_sample))
    if features is None:
        raise ctx.unsupported(node, "the channel axis must have a static size")
    arrays = [ctx.weight(p) for p in node.inputs[1:5]]
    flat_x = x if spatial or rank == 2 else f"torch.flatten({x}, 1)"
    if all(a is not None for a in arrays):
        scale, bias, mean, var = (np.asarray(a).reshape(features) for a in arrays)  # type: ignore[union-attr]
        dim = 1 if not spatial or rank <= 3 else rank - 2
        if dim > 3:
            raise ctx.unsupported(node, f"BatchNorm over {dim} spatial axes")
        kwargs = "" if eps == "1e-05" else f", eps={eps}"
        layer = ctx.layer(node, f"nn.BatchNorm{dim}d({features}{kwargs}{ctx.dtype_kw(x_name)})",
                          {"weight": scale, "bias": bias, "running_mean": mean,
                           "running_var": var, "num_batches_tracked": np.array(0, np.int64)})
        expr = f"{layer}({flat_x})"
    else:  # statistics computed at run time: the functional form
        s, b, m, v = (f"{ctx.value(p)}.reshape(-1)" for p in node.inputs[1:5])
        expr = f"F.batch_norm({flat_x}, {m}, {v}, {s}, {b}, False, 0.0, {eps})"
    if flat_x != x:
        expr = f"{expr}.reshape({x}.shape)"
    ctx.assign(node, expr)


@HANDLERS.register("LRN")
def emit_lrn(ctx: EmitContext, node: Node) -> None:
    """nn.LocalResponseNorm: like ONNX it divides alpha by size, and for the odd sizes
    the IR allows it centres the window the same way (for an even size PyTorch would
    sit the window one channel lower than ONNX; the IR rejects even sizes)."""
    size = int(node.attr("size"))
    alpha, beta, bias = (literal(float(node.attr(a))) for a in ("alpha", "beta", "bias"))
    x = ctx.value(node.inputs[0])
    layer = ctx.layer(node, f"nn.LocalResponseNorm({size}, alpha={alpha}, beta={beta}, "
                            f"k={bias})", {})
    ctx.assign(node, f"{layer}({x})")


@HANDLERS.register("LayerNormalization")
def emit_layer_norm(ctx: EmitContext, node: Node) -> None:
    """nn.LayerNorm over axes [axis, rank); a scale/bias that broadcasts to them is
    expanded to the full normalized shape at emit time."""
    x_name = node.inputs[0]
    rank = ctx.rank(x_name)
    axis = norm_axis(int(node.attr("axis")), rank)
    dims = ctx.shape(x_name)[axis:]
    if any(d is None for d in dims):
        raise ctx.unsupported(node, f"the normalized axes need static sizes, got {list(dims)}")
    shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
    eps = literal(float(node.attr("epsilon")))
    x = ctx.value(x_name)
    scale, bias = ctx.weight(node.inputs[1]), ctx.weight(node.input(2))
    if scale is not None and (bias is not None or not node.input(2)):
        params = {"weight": np.ascontiguousarray(np.broadcast_to(scale, shape))}
        kwargs = "" if eps == "1e-05" else f", eps={eps}"
        if bias is None:
            kwargs += ", bias=False"
        else:
            params["bias"] = np.ascontiguousarray(np.broadcast_to(bias, shape))
        layer = ctx.layer(node, f"nn.LayerNorm({ints(shape)}{kwargs}{ctx.dtype_kw(x_name)})",
                          params)
        ctx.assign(node, f"{layer}({x})")
        return
    s = f"{ctx.value(node.inputs[1])}.expand({list(shape)})"
    b = f"{ctx.value(node.input(2))}.expand({list(shape)})" if node.input(2) else "None"
    ctx.assign(node, f"F.layer_norm({x}, {list(shape)}, {s}, {b}, {eps})")


@HANDLERS.register("InstanceNormalization")
def emit_instance_norm(ctx: EmitContext, node: Node) -> None:
    """nn.InstanceNorm{1,2,3}d(affine=True) when scale and B are weights (instance
    statistics in eval too: track_running_stats stays False); else F.instance_norm."""
    x_name = node.inputs[0]
    rank = ctx.rank(x_name)
    eps = literal(float(node.attr("epsilon")))
    x = ctx.value(x_name)
    scale, bias = ctx.weight(node.inputs[1]), ctx.weight(node.inputs[2])
    if scale is not None and bias is not None and 3 <= rank <= 5:
        kwargs = "" if eps == "1e-05" else f", eps={eps}"
        layer = ctx.layer(node, f"nn.InstanceNorm{rank - 2}d({scale.shape[0]}{kwargs}, "
                                f"affine=True{ctx.dtype_kw(x_name)})",
                          {"weight": scale, "bias": bias})
        ctx.assign(node, f"{layer}({x})")
        return
    s, b = ctx.value(node.inputs[1]), ctx.value(node.inputs[2])
    ctx.assign(node, f"F.instance_norm({x}, weight={s}, bias={b}, eps={eps})")
