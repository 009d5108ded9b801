"""Elementwise arithmetic, comparisons, unary math, Clip, Where, Cast, Not.

CNTK broadcasts like numpy over a sample's static axes (shapes aligned at the
end, in Python order) and broadcasts a batch-less operand over the batch; an
operand written with the batch axis as a leading 1 is stored without it (see
:meth:`EmitContext.operand`).  Comparisons yield 0/1 in the float dtype, the
way CNTK carries bools.
"""

from __future__ import annotations

import math

from mmconv.emitters.cntk.context import FLOAT_DTYPES, HANDLERS, EmitContext
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Node

BINARY = {
    "Add": "C.plus", "Sub": "C.minus", "Mul": "C.element_times", "Div": "C.element_divide",
    "Pow": "C.pow", "Max": "C.element_max", "Min": "C.element_min", "Equal": "C.equal",
    "Greater": "C.greater", "Less": "C.less", "GreaterOrEqual": "C.greater_equal",
    "LessOrEqual": "C.less_equal", "And": "C.element_and", "Or": "C.element_or",
    "Xor": "C.element_xor",
}

UNARY = {
    "Identity": "C.alias", "Neg": "C.negate", "Abs": "C.abs", "Exp": "C.exp", "Log": "C.log",
    "Sqrt": "C.sqrt", "Reciprocal": "C.reciprocal", "Floor": "C.floor", "Ceil": "C.ceil",
    "Not": "C.element_not", "Sin": "C.sin", "Cos": "C.cos",
}


@HANDLERS.register(*BINARY)
def emit_binary(ctx: EmitContext, node: Node) -> None:
    a, b = node.inputs[:2]
    ctx.assign(node, f"{BINARY[node.op]}({ctx.operand(a, b)}, {ctx.operand(b, a)}, "
                     f"{ctx.name_kw(node)})")


@HANDLERS.register(*UNARY)
def emit_unary(ctx: EmitContext, node: Node) -> None:
    ctx.assign(node, f"{UNARY[node.op]}({ctx.ref(node.inputs[0])}, {ctx.name_kw(node)})")


@HANDLERS.register("Sign")
def emit_sign(ctx: EmitContext, node: Node) -> None:
    """CNTK 2.7 has no sign op: (x > 0) - (x < 0), exact."""
    x = ctx.ref(node.inputs[0])
    ctx.assign(node, f"C.minus(C.greater({x}, 0), C.less({x}, 0), {ctx.name_kw(node)})")


@HANDLERS.register("Round")
def emit_round(ctx: EmitContext, node: Node) -> None:
    """The IR rounds half to even; CNTK's ``round`` is floor(x + 0.5) (half up).

    r = floor(x + 0.5), then one less where x was exactly halfway and r is odd:
    every step is exact in floating point.
    """
    x = ctx.ref(node.inputs[0])
    up = ctx.let(f"C.floor(C.plus({x}, 0.5))", "half_up")
    odd = ctx.let(f"C.minus({up}, C.element_times(2.0, C.floor(C.element_times({up}, 0.5))))",
                  "odd")
    tie = f"C.equal(C.minus({up}, {x}), 0.5)"
    ctx.assign(node, f"C.minus({up}, C.element_times({tie}, {odd}), {ctx.name_kw(node)})")


@HANDLERS.register("Clip")
def emit_clip(ctx: EmitContext, node: Node) -> None:
    """``C.clip`` with both bounds; one-sided bounds as element_max/element_min."""
    x = ctx.ref(node.inputs[0])
    low, high = float(node.attr("min")), float(node.attr("max"))
    name = ctx.name_kw(node)
    if math.isfinite(low) and math.isfinite(high):
        ctx.assign(node, f"C.clip({x}, {literal(low)}, {literal(high)}, {name})")
    elif math.isfinite(low):
        ctx.assign(node, f"C.element_max({x}, {literal(low)}, {name})")
    elif math.isfinite(high):
        ctx.assign(node, f"C.element_min({x}, {literal(high)}, {name})")
    else:
        ctx.assign(node, f"C.alias({x}, {name})")


@HANDLERS.register("Where")
def emit_where(ctx: EmitContext, node: Node) -> None:
    cond, a, b = node.inputs[:3]
    lead = next((v for v in (cond, a, b) if ctx.batched(v)), cond)
    ctx.assign(node, f"C.element_select({ctx.operand(cond, lead)}, {ctx.operand(a, lead)}, "
                     f"{ctx.operand(b, lead)}, {ctx.name_kw(node)})")


@HANDLERS.register("Cast")
def emit_cast(ctx: EmitContext, node: Node) -> None:
    """Between float types ``C.cast``; ints and bools stay floats in CNTK, so a cast to
    an integer type truncates toward zero and a cast to bool tests for nonzero."""
    x = node.inputs[0]
    src, dst = ctx.dtype(x), str(node.attr("to"))
    xr = ctx.ref(x)
    name = ctx.name_kw(node)
    if dst == "bool":
        ctx.assign(node, f"C.not_equal({xr}, 0, {name})")
    elif dst in FLOAT_DTYPES:
        if ctx.cntk_dtype(src) == dst:
            ctx.assign(node, f"C.alias({xr}, {name})")
        else:
            ctx.assign(node, f"C.cast({xr}, np.{dst}, {name})")
    elif src in FLOAT_DTYPES:
        ctx.assign(node, f"C.element_select(C.less({xr}, 0), C.ceil({xr}), C.floor({xr}), "
                         f"{name})")
    else:
        ctx.assign(node, f"C.alias({xr}, {name})")


@HANDLERS.register("Erf")
def emit_erf(ctx: EmitContext, node: Node) -> None:
    """CNTK 2.7 has no erf: the generated ``_erf`` (a rational approximation, error
    below 1.5e-7)."""
    ctx.helpers.add("_erf")
    ctx.assign(node, f"_erf({ctx.ref(node.inputs[0])}, {ctx.name_kw(node)})")


@HANDLERS.register("Mod")
def emit_mod(ctx: EmitContext, node: Node) -> None:
    """A - q * B with q = floor(A / B) (fmod=0) or A / B truncated toward zero
    (fmod=1); integers are carried as floats, exact up to 2**24."""
    a, b = node.inputs[:2]
    ea, eb = ctx.operand(a, b), ctx.operand(b, a)
    q = ctx.let(f"C.element_divide({ea}, {eb})", "quotient")
    if node.attr("fmod"):
        whole = ctx.let(f"C.element_times(C.minus(C.greater({q}, 0), C.less({q}, 0)), "
                        f"C.floor(C.abs({q})))", "trunc")
    else:
        whole = ctx.let(f"C.floor({q})", "floor")
    ctx.assign(node, f"C.minus({ea}, C.element_times({whole}, {eb}), {ctx.name_kw(node)})")
