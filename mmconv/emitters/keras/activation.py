"""Activations: Keras layers where Keras has the same function, ``keras.ops`` otherwise.

Softmax-like ops carry an axis, remapped to where that IR axis sits in the
Keras tensor (axis 1 of an NCHW value is the last axis of its NHWC tensor).
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, Flat, identity, operands
from mmconv.ir.core import Node

#: IR op -> Keras activation name with exactly the IR's function.
_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus"}
_SELU = (1.6732632423543772, 1.0507009873554805)


@HANDLERS.register("Relu", *_ACTIVATIONS)
def emit_activation(ctx: EmitContext, node: Node) -> None:
    """``layers.ReLU`` / ``layers.Activation(name)``: named, elementwise, any layout."""
    x = node.inputs[0]
    name = literal(ctx.out(node))
    kw = ctx.dtype_kw(x)
    if node.op == "Relu":
        expr = f"layers.ReLU(name={name}{kw})({ctx.var(x)})"
    else:
        expr = (f"layers.Activation({literal(_ACTIVATIONS[node.op])}, name={name}{kw})"
                f"({ctx.var(x)})")
    ctx.define(node, expr, ctx.layout(x))


@HANDLERS.register("LeakyRelu")
def emit_leaky_relu(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    ctx.define(node, f"layers.LeakyReLU(negative_slope={literal(float(node.attr('alpha')))}, "
                     f"name={literal(ctx.out(node))}{ctx.dtype_kw(x)})({ctx.var(x)})",
               ctx.layout(x))


@HANDLERS.register("Elu")
def emit_elu(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    ctx.define(node, f"layers.ELU(alpha={literal(float(node.attr('alpha')))}, "
                     f"name={literal(ctx.out(node))}{ctx.dtype_kw(x)})({ctx.var(x)})",
               ctx.layout(x))


@HANDLERS.register("Selu")
def emit_selu(ctx: EmitContext, node: Node) -> None:
    """Keras's selu has the standard constants; other ones are spelled out with ops."""
    x = node.inputs[0]
    alpha, gamma = float(node.attr("alpha")), float(node.attr("gamma"))
    ex = ctx.var(x)
    if np.allclose((alpha, gamma), _SELU, rtol=1e-7, atol=0):
        expr = (f"layers.Activation('selu', name={literal(ctx.out(node))}{ctx.dtype_kw(x)})"
                f"({ex})")
    else:
        expr = (f"ops.multiply(ops.where(ops.greater({ex}, 0.0), {ex}, ops.multiply("
                f"ops.subtract(ops.exp({ex}), 1.0), {literal(alpha)})), {literal(gamma)})")
    ctx.define(node, expr, ctx.layout(x))


@HANDLERS.register("HardSigmoid")
def emit_hard_sigmoid(ctx: EmitContext, node: Node) -> None:
    """max(0, min(1, alpha*x + beta)); Keras's hard_sigmoid has other constants."""
    x = node.inputs[0]
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    ctx.define(node, f"ops.clip(ops.add(ops.multiply({ctx.var(x)}, {literal(alpha)}), "
                     f"{literal(beta)}), 0.0, 1.0)", ctx.layout(x))


@HANDLERS.register("Softmax", "LogSoftmax", "Hardmax")
def emit_softmax(ctx: EmitContext, node: Node) -> None:
    """The axis is remapped to the Keras tensor's layout; no transpose."""
    x = node.inputs[0]
    axis = ctx.axis(x, int(node.attr("axis")))
    layout = ctx.layout(x)
    ex = ctx.var(x)
    if node.op == "Softmax":
        expr = (f"layers.Softmax(axis={axis}, name={literal(ctx.out(node))}"
                f"{ctx.dtype_kw(x)})({ex})")
    elif node.op == "LogSoftmax":
        expr = f"ops.log_softmax({ex}, axis={axis})"
    else:
        rank = ctx.rank(x)
        depth = ctx.shape(x)[int(node.attr("axis")) % rank]
        if depth is None:
            raise ctx.unsupported(node, "Hardmax needs a static size along its axis")
        hot = -1 if axis == rank - 1 else axis
        expr = (f"ops.one_hot(ops.argmax({ex}, axis={axis}), {depth}, axis={hot}, "
                f"dtype={literal(ctx.dtype(x))})")
    ctx.define(node, expr, layout)


@HANDLERS.register("PRelu")
def emit_prelu(ctx: EmitContext, node: Node) -> None:
    """``layers.PReLU`` (alpha laid out like the input, broadcast axes shared) when the
    slope is a weight that does not broadcast X up; otherwise where(x >= 0, x, s*x)."""
    x, slope = node.inputs[:2]
    array = ctx.weight(slope)
    out_shape = ctx.shape(node.outputs[0])
    rank = ctx.rank(x)
    layout = ctx.layout(x)
    if (array is not None and out_shape == ctx.shape(x) and rank >= 2
            and array.ndim <= rank and not isinstance(layout, Flat)
            and (array.ndim < rank or array.shape[0] == 1)
            and all(d is not None for d in out_shape[1:])):
        full = array.reshape((1,) * (rank - array.ndim) + array.shape)
        alpha = full.transpose(layout)[0]
        kshape = [out_shape[p] for p in layout][1:]
        shared = tuple(i + 1 for i, (a, d) in enumerate(zip(alpha.shape, kshape, strict=True))
                       if a == 1 and d != 1)
        alpha = np.broadcast_to(alpha, tuple(1 if i + 1 in shared else d
                                             for i, d in enumerate(kshape)))  # type: ignore[misc]
        name = ctx.out(node)
        shared_kw = f"shared_axes={literal(list(shared))}, " if shared else ""
        ctx.define(node, f"layers.PReLU({shared_kw}name={literal(name)}{ctx.dtype_kw(x)})"
                         f"({ctx.var(x)})", layout)
        ctx.set_weights(name, [("alpha", alpha.astype(array.dtype))])
        return
    (ex, es), out_layout = operands(ctx, node, [x, slope])
    if out_layout == identity(0):
        out_layout = identity(len(out_shape))
    ctx.define(node, f"ops.where(ops.greater_equal({ex}, 0.0), {ex}, ops.multiply({es}, {ex}))",
               out_layout)


#: IR op -> the Keras activation of the same formula.
_NAMED = {"HardSwish": "hard_swish", "Softsign": "softsign", "Mish": "mish"}


@HANDLERS.register(*_NAMED)
def emit_named_activation(ctx: EmitContext, node: Node) -> None:
    """``layers.Activation(name)``; Keras's hard_swish is x * relu6(x + 3) / 6."""
    x = node.inputs[0]
    ctx.define(node, f"layers.Activation({literal(_NAMED[node.op])}, "
                     f"name={literal(ctx.out(node))}{ctx.dtype_kw(x)})({ctx.var(x)})",
               ctx.layout(x))


@HANDLERS.register("Gelu")
def emit_gelu(ctx: EmitContext, node: Node) -> None:
    """``ops.gelu``; approximate=True is the IR's tanh form."""
    x = node.inputs[0]
    approximate = node.attr("approximate") == "tanh"
    ctx.define(node, f"ops.gelu({ctx.var(x)}, approximate={approximate})", ctx.layout(x))
