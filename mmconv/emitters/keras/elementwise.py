"""Elementwise ops: numpy-broadcasting arithmetic, comparisons, Where, unary math.

They are layout-transparent: an operand inside a channels-last trunk stays
there, and a weight operand is rearranged at emit time (:func:`operands`).
Two runtime operands of one shape use Keras merge layers (``layers.Add`` for a
residual connection reads as one); anything else uses ``keras.ops``.
"""

from __future__ import annotations

import math

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, operands
from mmconv.ir.core import Node

_MERGE = {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Max": "Maximum",
          "Min": "Minimum"}
_BINARY = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide",
           "Pow": "power", "Max": "maximum", "Min": "minimum", "Equal": "equal",
           "Greater": "greater", "GreaterOrEqual": "greater_equal", "Less": "less",
           "LessOrEqual": "less_equal", "And": "logical_and", "Or": "logical_or",
           "Xor": "logical_xor"}
_UNARY = {"Abs": "abs", "Neg": "negative", "Exp": "exp", "Log": "log", "Floor": "floor",
          "Ceil": "ceil", "Round": "round", "Sign": "sign", "Sqrt": "sqrt",
          "Not": "logical_not", "Erf": "erf", "Sin": "sin", "Cos": "cos"}


@HANDLERS.register(*_BINARY)
def emit_binary(ctx: EmitContext, node: Node) -> None:
    """A merge layer for two same-shape runtime operands, else ``ops.<fn>``."""
    a, b = node.inputs[:2]
    (ea, eb), layout = operands(ctx, node, [a, b])
    name = ctx.out(node)
    if (node.op in _MERGE and ctx.runtime(a) and ctx.runtime(b)
            and ctx.shape(a) == ctx.shape(b)):
        ctx.define(node, f"layers.{_MERGE[node.op]}(name={literal(name)}"
                         f"{ctx.dtype_kw(a)})([{ea}, {eb}])", layout)
        return
    if node.op == "Add" and bias_add_trap(_held_shape(ctx, a, layout),
                                          _held_shape(ctx, b, layout)):
        ctx.define(node, f"ops.subtract({ea}, ops.negative({eb}))"
                         "  # = a + b (ops.add would bias_add along the wrong axis)", layout)
        return
    ctx.define(node, f"ops.{_BINARY[node.op]}({ea}, {eb})", layout)


def _held_shape(ctx: EmitContext, value: str, layout: object) -> tuple[int | None, ...]:
    """The shape of the Keras tensor :func:`operands` gives for ``value``."""
    array = ctx.weight(value)
    out_rank = ctx.rank(ctx._node.outputs[0]) if ctx._node is not None else ctx.rank(value)
    if array is not None:
        return tuple(ctx.in_layout(array, layout, out_rank).shape)  # type: ignore[arg-type]
    shape = tuple(ctx.shape(value))
    if isinstance(layout, tuple) and len(layout) == len(shape):
        return tuple(shape[p] for p in layout)
    return shape


def bias_add_trap(x1: tuple[int | None, ...], x2: tuple[int | None, ...]) -> bool:
    """Whether Keras 3's TensorFlow ``ops.add(x1, x2)`` gets the broadcast wrong.

    It turns an add whose ``x2`` squeezes to one static axis of size n, n being
    ``x1``'s axis 1 or last, into ``tf.nn.bias_add`` along the last axis (when it is
    n) or axis 1.  That equals broadcasting only when x2's axis, right-aligned
    into x1, is that axis and x2 is no longer than x1 (e.g. [R, P] + [R, 1] with
    R == P is added along the wrong axis).  Dynamic dims are concrete when it runs
    (inside a loop step, or an eager call): where they could line up it is a trap too.
    """
    keep = [i for i, d in enumerate(x2) if d is None or d > 1]
    if len(keep) != 1 or len(x1) < 2:
        return False
    n = x2[keep[0]]
    if n is None:  # e.g. [N, 1, 1]: the batch may equal x1's axis 1 or last
        return True
    if n not in (x1[1], x1[-1]):
        return None in (x1[1], x1[-1])
    chosen = len(x1) - 1 if x1[-1] == n else 1
    aligned = len(x1) - len(x2) + keep[0]
    return len(x2) > len(x1) or aligned != chosen


@HANDLERS.register("Where")
def emit_where(ctx: EmitContext, node: Node) -> None:
    """``ops.where`` broadcasts like the IR."""
    exprs, layout = operands(ctx, node, node.inputs[:3])
    ctx.define(node, f"ops.where({', '.join(exprs)})", layout)


@HANDLERS.register(*_UNARY)
def emit_unary(ctx: EmitContext, node: Node) -> None:
    """One ``keras.ops`` call; the layout passes through."""
    x = node.inputs[0]
    ctx.define(node, f"ops.{_UNARY[node.op]}({ctx.var(x)})", ctx.layout(x))


@HANDLERS.register("Reciprocal")
def emit_reciprocal(ctx: EmitContext, node: Node) -> None:
    """1 / X (``keras.ops`` has no reciprocal in every backend)."""
    x = node.inputs[0]
    ctx.define(node, f"ops.divide(1.0, {ctx.var(x)})", ctx.layout(x))


@HANDLERS.register("Identity")
def emit_identity(ctx: EmitContext, node: Node) -> None:
    """A named Identity layer, so the IR value keeps a layer of its name."""
    x = node.inputs[0]
    name = ctx.out(node)
    ctx.define(node, f"layers.Identity(name={literal(name)}{ctx.dtype_kw(x)})({ctx.var(x)})",
               ctx.layout(x))


@HANDLERS.register("Cast")
def emit_cast(ctx: EmitContext, node: Node) -> None:
    """``ops.cast``: float to int truncates toward zero, to bool is "nonzero", as in ONNX."""
    x = node.inputs[0]
    ctx.define(node, f"ops.cast({ctx.var(x)}, {literal(node.attr('to'))})", ctx.layout(x))


@HANDLERS.register("Clip")
def emit_clip(ctx: EmitContext, node: Node) -> None:
    """``ops.clip`` with both bounds; one infinite bound is a plain maximum/minimum."""
    x = node.inputs[0]
    lo, hi = float(node.attr("min")), float(node.attr("max"))
    is_int = not ctx.dtype(x).startswith("float")

    def bound(v: float) -> str:
        return literal(int(v) if is_int else v)

    ex = ctx.var(x)
    if math.isinf(lo) and math.isinf(hi):
        expr = f"layers.Identity(name={literal(ctx.out(node))})({ex})"
    elif math.isinf(hi):
        expr = f"ops.maximum({ex}, {bound(lo)})"
    elif math.isinf(lo):
        expr = f"ops.minimum({ex}, {bound(hi)})"
    else:
        expr = f"ops.clip({ex}, {bound(lo)}, {bound(hi)})"
    ctx.define(node, expr, ctx.layout(x))


@HANDLERS.register("Mod")
def emit_mod(ctx: EmitContext, node: Node) -> None:
    """fmod=0 is ``ops.mod`` (floor mod, the divisor's sign); fmod=1 is
    sign(A) * (|A| mod |B|), the dividend's sign, exact for ints and floats."""
    (ea, eb), layout = operands(ctx, node, node.inputs[:2])
    if node.attr("fmod"):
        expr = f"ops.multiply(ops.sign({ea}), ops.mod(ops.abs({ea}), ops.abs({eb})))"
    else:
        expr = f"ops.mod({ea}, {eb})"
    ctx.define(node, expr, layout)
