"""Elementwise ops: MIL's binary ops broadcast like numpy (the IR's rule), unary ops
are one op each; the few MIL lacks are compositions."""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.coreml.context import HANDLERS, MIL_DTYPES, EmitContext
from mmconv.ir.core import Node

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "real_div", "Pow": "pow",
           "Max": "maximum", "Min": "minimum", "Equal": "equal", "Greater": "greater",
           "GreaterOrEqual": "greater_equal", "Less": "less", "LessOrEqual": "less_equal",
           "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}
_UNARY = {"Abs": "abs", "Ceil": "ceil", "Floor": "floor", "Exp": "exp", "Sqrt": "sqrt",
          "Round": "round", "Sign": "sign", "Not": "logical_not", "Identity": "identity",
          "Sin": "sin", "Cos": "cos", "Erf": "erf"}


@HANDLERS.register(*_BINARY)
def emit_binary(ctx: EmitContext, node: Node) -> None:
    if node.op == "Div" and not ctx.dtype(node.outputs[0]).startswith("float"):
        raise ctx.unsupported(node, "integer division (MIL's floor_div rounds down, the IR "
                              "truncates toward zero)")
    ctx.call(_BINARY[node.op], node.outputs[0], x=_operand(ctx, node, 0),
             y=_operand(ctx, node, 1))


def _operand(ctx: EmitContext, node: Node, i: int) -> object:
    """Input ``i``; a one-element weight (``[1]``, ``[1, 1]``) is stored as a scalar when the
    other operand's rank covers it (same result; NeuralNetwork layers want a scalar)."""
    name, other = node.inputs[i], node.inputs[1 - i]
    array = ctx.weight(name)
    if array is not None and array.size == 1 and array.ndim >= 1 \
            and ctx.rank(other) >= array.ndim:
        return ctx.weight_var(name, np.asarray(array).reshape(()))
    return ctx.var(name)


@HANDLERS.register(*_UNARY)
def emit_unary(ctx: EmitContext, node: Node) -> None:
    ctx.call(_UNARY[node.op], node.outputs[0], x=ctx.var(node.inputs[0]))


@HANDLERS.register("Log")
def emit_log(ctx: EmitContext, node: Node) -> None:
    """MIL's log adds ``epsilon`` (default 1e-45) to x; 0 keeps log(0) = -inf as in the IR."""
    ctx.call("log", node.outputs[0], x=ctx.var(node.inputs[0]), epsilon=0.0)


@HANDLERS.register("Neg")
def emit_neg(ctx: EmitContext, node: Node) -> None:
    ctx.call("mul", node.outputs[0], x=ctx.var(node.inputs[0]),
             y=-1.0 if ctx.dtype(node.inputs[0]).startswith("float") else -1)


@HANDLERS.register("Reciprocal")
def emit_reciprocal(ctx: EmitContext, node: Node) -> None:
    """1 / x (MIL's ``inverse`` adds an epsilon to x)."""
    ctx.call("real_div", node.outputs[0], x=1.0, y=ctx.var(node.inputs[0]))


@HANDLERS.register("Clip")
def emit_clip(ctx: EmitContext, node: Node) -> None:
    """clip when both bounds are finite; one-sided bounds are maximum/minimum."""
    low, high = float(node.attr("min")), float(node.attr("max"))
    x = ctx.var(node.inputs[0])
    out = node.outputs[0]
    if not ctx.dtype(node.inputs[0]).startswith("float"):
        # MIL clip is float-only; integer bounds are maximum/minimum with integer operands
        # (an infinite bound clips nothing).
        if math.isfinite(low) and math.isfinite(high):
            x = ctx.call("maximum", hint="low", x=x, y=math.ceil(low))
            ctx.call("minimum", out, x=x, y=math.floor(high))
        elif math.isfinite(low):
            ctx.call("maximum", out, x=x, y=math.ceil(low))
        elif math.isfinite(high):
            ctx.call("minimum", out, x=x, y=math.floor(high))
        else:
            ctx.call("identity", out, x=x)
        return
    if math.isfinite(low) and math.isfinite(high):
        ctx.call("clip", out, x=x, alpha=low, beta=high)
    elif math.isfinite(low):
        ctx.call("maximum", out, x=x, y=low)
    elif math.isfinite(high):
        ctx.call("minimum", out, x=x, y=high)
    else:
        ctx.call("identity", out, x=x)


@HANDLERS.register("Where")
def emit_where(ctx: EmitContext, node: Node) -> None:
    ctx.call("select", node.outputs[0], cond=ctx.var(node.inputs[0]),
             a=ctx.var(node.inputs[1]), b=ctx.var(node.inputs[2]))


@HANDLERS.register("Cast")
def emit_cast(ctx: EmitContext, node: Node) -> None:
    to = str(node.attr("to"))
    mil = MIL_DTYPES.get("int32" if to == "int64" else to)  # Core ML's integers are int32
    if mil is None:
        raise ctx.unsupported(node, f"cast to {to}; Core ML holds float32, float16, int32, bool")
    ctx.call("cast", node.outputs[0], x=ctx.var(node.inputs[0]), dtype=mil)


@HANDLERS.register("Mod")
def emit_mod(ctx: EmitContext, node: Node) -> None:
    """fmod=0: MIL mod (Python's %, the sign of B); fmod=1 on floats: A - B * trunc(A / B),
    trunc(q) = sign(q) * floor(|q|) (MIL has no trunc)."""
    a, b = ctx.var(node.inputs[0]), ctx.var(node.inputs[1])
    if not node.attr("fmod"):
        ctx.call("mod", node.outputs[0], x=a, y=b)
        return
    if not ctx.dtype(node.inputs[0]).startswith("float"):
        raise ctx.unsupported(node, "integer fmod (truncated remainder) has no Core ML op")
    q = ctx.call("real_div", hint="q", x=a, y=b)
    trunc = ctx.call("mul", hint="trunc", x=ctx.call("sign", hint="sign", x=q),
                     y=ctx.call("floor", hint="floor", x=ctx.call("abs", hint="abs", x=q)))
    ctx.call("sub", node.outputs[0], x=a, y=ctx.call("mul", hint="whole", x=trunc, y=b))
