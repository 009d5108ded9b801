"""BatchNormalization, LRN, LayerNormalization.

BatchNormalization with constant statistics on a rank 3-5 input is MIL's
batch_norm (parameters stored as ``[C]``); on other ranks, or per element
(``spatial=False``), it is folded at emit time into one multiply and one add
(a = scale / sqrt(var + eps), b = B - mean * a, computed in float64); with
statistics computed at run time it is written out as arithmetic.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.ir.core import Node


@HANDLERS.register("BatchNormalization")
def emit_batch_norm(ctx: EmitContext, node: Node) -> None:
    x, *params = node.inputs[:5]
    eps = float(node.attr("epsilon"))
    rank = ctx.rank(x)
    arrays = [ctx.weight(p) for p in params]
    out = node.outputs[0]
    if any(a is None for a in arrays):
        _bn_arithmetic(ctx, node, eps)
        return
    scale, bias, mean, var = (np.asarray(a) for a in arrays)  # type: ignore[arg-type]
    channels = ctx.static_shape(x)[1] if rank >= 2 else 0
    per_channel = node.attr("spatial") and all(a.size == channels for a in arrays)  # type: ignore[union-attr]
    if per_channel and 3 <= rank <= 5:
        refs = {key: ctx.weight_var(p, np.asarray(a, np.float32).reshape(channels))
                for key, p, a in zip(("gamma", "beta", "mean", "variance"), params,
                                     (scale, bias, mean, var), strict=True)}
        ctx.call("batch_norm", out, x=ctx.var(x), mean=refs["mean"],
                 variance=refs["variance"], gamma=refs["gamma"], beta=refs["beta"],
                 epsilon=eps)
        return
    a = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    b = bias.astype(np.float64) - mean.astype(np.float64) * a
    # per channel: [C, 1, ...]; per element: the parameters cover the axes after the batch
    shape = (channels,) + (1,) * (rank - 2) if per_channel else tuple(ctx.static_shape(x)[1:])
    a32 = np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)).reshape(shape)
    b32 = np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape)).reshape(shape)
    scaled = ctx.call("mul", hint="scale", x=ctx.var(x),
                      y=ctx.const(a32.astype(np.float32), "folded_scale"))
    ctx.call("add", out, x=scaled, y=ctx.const(b32.astype(np.float32), "folded_bias"))


def _bn_arithmetic(ctx: EmitContext, node: Node, eps: float) -> None:
    """(x - mean) / sqrt(var + eps) * scale + B, with some parameter computed at run time.

    Parameters that are weights are stored in the shape they are used in (and
    sqrt(var + eps) is computed here when var is one): ops on constants alone
    are what coremltools' NeuralNetwork backend cannot write.
    """
    x_name, *names = node.inputs[:5]
    rank = ctx.rank(x_name)
    x_shape = ctx.static_shape(x_name)

    def target(name: str) -> list[int] | None:
        shape = ctx.static_shape(name)
        if node.attr("spatial") and len(shape) == 1 and rank > 2:
            return [shape[0]] + [1] * (rank - 2)
        if not node.attr("spatial") and shape != x_shape[1:]:  # per element, flat
            return list(x_shape[1:])
        return None

    def param(name: str, array: np.ndarray | None = None, hint: str = ""):
        shape = target(name)
        if array is not None:
            return ctx.const(array.reshape(shape) if shape else array, hint)
        weight = ctx.weight(name)
        if weight is not None:
            return ctx.weight_var(name, np.asarray(weight).reshape(shape)) if shape else \
                ctx.var(name)
        ref = ctx.var(name)
        return ctx.call("reshape", hint=f"{ref.ident}_r", x=ref, shape=shape) if shape else ref

    scale, bias, mean = (param(n) for n in names[:3])
    var_array = ctx.weight(names[3])
    if var_array is not None:
        std = param(names[3], np.sqrt(np.asarray(var_array, np.float64) + eps)
                    .astype(np.float32), "std")
    else:
        std = ctx.call("sqrt", hint="std", x=ctx.call("add", hint="var_eps", x=param(names[3]),
                                                      y=eps))
    centered = ctx.call("sub", hint="centered", x=ctx.var(x_name), y=mean)
    normed = ctx.call("real_div", hint="normed", x=centered, y=std)
    ctx.call("add", node.outputs[0], x=ctx.call("mul", hint="scaled", x=normed, y=scale),
             y=bias)


@HANDLERS.register("LRN")
def emit_lrn(ctx: EmitContext, node: Node) -> None:
    """MIL local_response_norm: x / (k + alpha/size * sum x^2)^beta across channels, the
    IR's (ONNX's) formula."""
    rank = ctx.rank(node.inputs[0])
    if not 3 <= rank <= 5:
        raise ctx.unsupported(node, f"rank {rank}; Core ML's LRN takes rank 3 to 5")
    ctx.call("local_response_norm", node.outputs[0], x=ctx.var(node.inputs[0]),
             size=int(node.attr("size")), alpha=float(node.attr("alpha")),
             beta=float(node.attr("beta")), k=float(node.attr("bias")))


@HANDLERS.register("LayerNormalization")
def emit_layer_norm(ctx: EmitContext, node: Node) -> None:
    """MIL layer_norm over the axes from ``axis`` on; constant scale/bias are stored in
    the normalized shape, computed ones are applied after."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = ctx.axis_attr(node, rank)
    norm_shape = ctx.static_shape(x)[axis:]
    scale, bias = node.inputs[1], node.input(2)
    w_scale = ctx.weight(scale)
    w_bias = ctx.weight(bias) if bias else None
    const_ok = w_scale is not None and (not bias or w_bias is not None)
    gamma = beta = None
    if const_ok:
        gamma = ctx.weight_var(scale, np.broadcast_to(w_scale, norm_shape).astype(np.float32))
        if bias:
            beta = ctx.weight_var(bias, np.broadcast_to(w_bias, norm_shape).astype(np.float32))
        ctx.call("layer_norm", node.outputs[0], x=ctx.var(x), axes=list(range(axis, rank)),
                 gamma=gamma, beta=beta, epsilon=float(node.attr("epsilon")))
        return
    normed = ctx.call("layer_norm", hint="normed", x=ctx.var(x), axes=list(range(axis, rank)),
                      epsilon=float(node.attr("epsilon")))
    if not bias:
        ctx.call("mul", node.outputs[0], x=normed, y=ctx.var(scale))
        return
    scaled = ctx.call("mul", hint="scaled", x=normed, y=ctx.var(scale))
    ctx.call("add", node.outputs[0], x=scaled, y=ctx.var(bias))


@HANDLERS.register("InstanceNormalization")
def emit_instance_norm(ctx: EmitContext, node: Node) -> None:
    """MIL instance_norm (rank 3 or 4 input, constant [C] scale and bias)."""
    x, scale, bias = node.inputs[0], node.inputs[1], node.inputs[2]
    rank = ctx.rank(x)
    if rank not in (3, 4):
        raise ctx.unsupported(node, f"rank {rank}; Core ML's instance_norm takes rank 3 or 4")
    w_scale, w_bias = ctx.weight(scale), ctx.weight(bias)
    if w_scale is None or w_bias is None:
        raise ctx.unsupported(node, "scale and bias computed at run time; Core ML's "
                              "instance_norm takes constants")
    channels = ctx.static_shape(x)[1]
    ctx.call("instance_norm", node.outputs[0], x=ctx.var(x),
             gamma=ctx.weight_var(scale, np.asarray(w_scale, np.float32).reshape(channels)),
             beta=ctx.weight_var(bias, np.asarray(w_bias, np.float32).reshape(channels)),
             epsilon=float(node.attr("epsilon")))
