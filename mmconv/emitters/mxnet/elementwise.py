"""Elementwise ops as MXNet's ``broadcast_*``, ``_*_scalar`` and unary operators.

Binary ops broadcast numpy-style in the IR.  A single-element weight operand
becomes the operator's ``scalar`` attribute (``_plus_scalar``,
``_rminus_scalar``...), the idiomatic MXNet spelling that needs no
parameter; otherwise ``broadcast_*`` with both operands at the same rank
(:meth:`~.context.EmitContext.full_rank`: a weight is stored so).
Comparisons return 0/1 in the input's float dtype, MXNet's (and our) way of
carrying bools.

And, Or, Xor: ``broadcast_logical_*`` on the 0/1 floats.  Mod: ``broadcast_mod``
(Python's sign rule, the IR's fmod=0) or ``a - trunc(a / b) * b`` (fmod=1).

Round: the IR rounds half to even (ONNX); MXNet's ``round`` rounds half away
from zero, so exact halves take ``2 * round(x / 2)``.
"""

from __future__ import annotations

import math

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext, Entry
from mmconv.ir.core import Node

#: IR op -> (broadcast op, scalar op with the weight on the right, ... on the left)
_BINARY = {
    "Add": ("broadcast_add", "_plus_scalar", "_plus_scalar"),
    "Sub": ("broadcast_sub", "_minus_scalar", "_rminus_scalar"),
    "Mul": ("broadcast_mul", "_mul_scalar", "_mul_scalar"),
    "Div": ("broadcast_div", "_div_scalar", "_rdiv_scalar"),
    "Pow": ("broadcast_power", "_power_scalar", "_rpower_scalar"),
    "Max": ("broadcast_maximum", "_maximum_scalar", "_maximum_scalar"),
    "Min": ("broadcast_minimum", "_minimum_scalar", "_minimum_scalar"),
    "Equal": ("broadcast_equal", "_equal_scalar", "_equal_scalar"),
    "Greater": ("broadcast_greater", "_greater_scalar", "_lesser_scalar"),
    "GreaterOrEqual": ("broadcast_greater_equal", "_greater_equal_scalar",
                       "_lesser_equal_scalar"),
    "Less": ("broadcast_lesser", "_lesser_scalar", "_greater_scalar"),
    "LessOrEqual": ("broadcast_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar"),
    "And": ("broadcast_logical_and", "_logical_and_scalar", "_logical_and_scalar"),
    "Or": ("broadcast_logical_or", "_logical_or_scalar", "_logical_or_scalar"),
    "Xor": ("broadcast_logical_xor", "_logical_xor_scalar", "_logical_xor_scalar"),
}

_UNARY = {
    "Abs": "abs", "Ceil": "ceil", "Exp": "exp", "Floor": "floor", "Log": "log",
    "Neg": "negative", "Reciprocal": "reciprocal", "Sign": "sign", "Sqrt": "sqrt",
    "Not": "logical_not", "Identity": "identity", "Erf": "erf", "Sin": "sin", "Cos": "cos",
}


def scalar_of(ctx: EmitContext, name: str) -> float | None:
    """The value of a single-element, finite float-valued weight, else None."""
    array = ctx.weight(name)
    if array is None or array.size != 1:
        return None
    value = float(array.reshape(-1)[0])
    return value if math.isfinite(value) else None


def binary(ctx: EmitContext, node: Node, ops: tuple[str, str, str], a: str, b: str,
           out: bool = True, hint: str = "binary") -> Entry:
    """``a (op) b`` with numpy broadcasting; the node's output when ``out``."""
    broadcast, right, left = ops
    sb, sa = scalar_of(ctx, b), scalar_of(ctx, a)
    out_rank = ctx.rank(node.outputs[0])
    if sb is not None and ctx.rank(a) == out_rank:
        inputs, op, attrs = [ctx.input(a)], right, {"scalar": sb}
    elif sa is not None and ctx.rank(b) == out_rank:
        inputs, op, attrs = [ctx.input(b)], left, {"scalar": sa}
    else:
        inputs = [ctx.full_rank(a, out_rank), ctx.full_rank(b, out_rank)]
        op, attrs = broadcast, {}
    if out:
        return ctx.emit_op(node, op, inputs, **attrs)
    return ctx.op(op, inputs, hint, **attrs)


@HANDLERS.register(*_BINARY)
def emit_binary(ctx: EmitContext, node: Node) -> None:
    binary(ctx, node, _BINARY[node.op], node.inputs[0], node.inputs[1])


@HANDLERS.register(*_UNARY)
def emit_unary(ctx: EmitContext, node: Node) -> None:
    ctx.emit_op(node, _UNARY[node.op], [ctx.input(node.inputs[0])])


@HANDLERS.register("Round")
def emit_round(ctx: EmitContext, node: Node) -> None:
    x = ctx.input(node.inputs[0])
    rounded = ctx.op("round", [x], "round")
    frac = ctx.op("abs", [ctx.op("elemwise_sub", [x, ctx.op("trunc", [x], "trunc")], "frac")],
                  "absfrac")
    half = ctx.op("_equal_scalar", [frac], "is_half", scalar=0.5)
    even = ctx.op("_mul_scalar", [ctx.op("round", [ctx.op("_mul_scalar", [x], "halved",
                                                            scalar=0.5)], "round_half")],
                  "even", scalar=2.0)
    ctx.emit_op(node, "where", [half, even, rounded])


@HANDLERS.register("Clip")
def emit_clip(ctx: EmitContext, node: Node) -> None:
    x = ctx.input(node.inputs[0])
    lo, hi = float(node.attr("min")), float(node.attr("max"))
    if math.isfinite(lo) and math.isfinite(hi):
        ctx.emit_op(node, "clip", [x], a_min=lo, a_max=hi)
    elif math.isfinite(lo):
        ctx.emit_op(node, "_maximum_scalar", [x], scalar=lo)
    elif math.isfinite(hi):
        ctx.emit_op(node, "_minimum_scalar", [x], scalar=hi)
    else:
        ctx.alias(node, x)


@HANDLERS.register("Cast")
def emit_cast(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    to = str(node.attr("to"))
    src = ctx.dtype(x)
    if to == "bool":
        ctx.emit_op(node, "_not_equal_scalar", [ctx.input(x)], scalar=0.0)
    elif ctx.mx_dtype(to) == ctx.mx_dtype(src):
        ctx.alias(node, ctx.input(x))
    else:
        ctx.emit_op(node, "Cast", [ctx.input(x)], dtype=ctx.mx_dtype(to))


@HANDLERS.register("Where")
def emit_where(ctx: EmitContext, node: Node) -> None:
    """MXNet's ``where`` wants all three operands in the output's shape: the ones that
    are not are ``broadcast_like`` an operand that is."""
    names = list(node.inputs)
    out_shape = ctx.shape(node.outputs[0])
    rank = len(out_shape)
    full = [n for n in names if tuple(ctx.shape(n)) == tuple(out_shape)]
    if not full:
        raise ctx.unsupported(node, "no operand has the output's shape to broadcast the others to")
    like = ctx.input(full[0])
    entries = []
    for i, n in enumerate(names):
        entry = ctx.full_rank(n, rank, f"rank{i}")
        if tuple(ctx.shape(n)) != tuple(out_shape):
            entry = ctx.op("broadcast_like", [entry, like], f"broadcast{i}")
        entries.append(entry)
    ctx.emit_op(node, "where", entries)



@HANDLERS.register("Mod")
def emit_mod(ctx: EmitContext, node: Node) -> None:
    """fmod=0 (sign of the divisor) is MXNet's ``broadcast_mod``; fmod=1 (C's fmod, sign
    of the dividend) is ``a - trunc(a / b) * b``."""
    a, b = node.inputs
    if not node.attr("fmod"):
        binary(ctx, node, ("broadcast_mod", "_mod_scalar", "_rmod_scalar"), a, b)
        return
    rank = ctx.rank(node.outputs[0])
    ea, eb = ctx.full_rank(a, rank), ctx.full_rank(b, rank, "rank_b")
    quotient = ctx.op("broadcast_div", [ea, eb], "quotient")
    if ctx.dtype(a).startswith("float"):
        quotient = ctx.op("trunc", [quotient], "trunc")
    whole = ctx.op("broadcast_mul", [quotient, eb], "whole")
    ctx.emit_op(node, "broadcast_sub", [ea, whole])
