"""Elementwise arithmetic with CNTK's broadcasting.

CNTK broadcasts sample shapes like numpy does in Python order (aligned at the
last Python axis, which is CNTK's first stored axis); the batch axis is
separate.  In the IR the batch axis is an ordinary leading axis, so a batched
operand whose sample rank is lower than the other operand's gets size-1 axes
inserted after its batch axis first (numpy would otherwise align the batch
axis with a sample axis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmconv.frontends.cntk.converters import BLOCK_CONVERTERS, CONVERTERS
from mmconv.frontends.cntk.converters._util import (
    finish,
    lead_dims,
    sample_shape,
    simple,
    start,
    unsupported,
)

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit

_BINARY = {"Plus": "Add", "Minus": "Sub", "ElementTimes": "Mul", "ElementDivide": "Div",
           "Pow": "Pow"}
_UNARY = {"Negate": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Abs": "Abs",
          "Floor": "Floor", "Reciprocal": "Reciprocal"}


def align(ctx: Context, values: list[str], name: str) -> list[str]:
    """Operands made numpy-broadcastable in the IR (see the module docstring)."""
    rank = max(len(sample_shape(ctx, v)) for v in values)
    out = []
    for v in values:
        sample = sample_shape(ctx, v)
        if ctx.batched(v) and len(sample) < rank:
            shape = (*lead_dims(ctx, v), *([1] * (rank - len(sample))), *sample)
            v = ctx.add("Reshape", [v], ctx.graph.unique_name(f"{name}/expand"), shape=shape)
        out.append(v)
    return out


def binary(ctx: Context, unit: Unit, op: str) -> None:
    name, ins = start(ctx, unit)
    finish(ctx, unit, ctx.add(op, align(ctx, ins, name), name))


@CONVERTERS.register("Plus", "Minus", "ElementTimes", "Pow")
def convert_binary(ctx: Context, unit: Unit) -> None:
    binary(ctx, unit, _BINARY[unit.op])


@BLOCK_CONVERTERS.register("ElementDivide")
def convert_divide(ctx: Context, unit: Unit) -> None:
    """CNTK saves ``element_divide(a, b)`` as a block ``a * Reciprocal(b)``: one Div."""
    binary(ctx, unit, "Div")


@CONVERTERS.register(*_UNARY)
def convert_unary(ctx: Context, unit: Unit) -> None:
    simple(ctx, unit, _UNARY[unit.op])


@BLOCK_CONVERTERS.register("ElementMin", "ElementMax")
def convert_min_max(ctx: Context, unit: Unit) -> None:
    """CNTK saves element_min/max as Less/Greater + Select blocks: one Min/Max."""
    binary(ctx, unit, "Min" if unit.op == "ElementMin" else "Max")


#: CNTK comparison -> (IR comparison, negate the result).
_COMPARE = {"Equal": ("Equal", False), "NotEqual": ("Equal", True), "Less": ("Less", False),
            "LessEqual": ("LessOrEqual", False), "Greater": ("Greater", False),
            "GreaterEqual": ("GreaterOrEqual", False)}


@CONVERTERS.register(*_COMPARE)
def convert_compare(ctx: Context, unit: Unit) -> None:
    """CNTK comparisons yield 0/1 in the operands' float type, the IR's yield bool: Cast."""
    op, negate = _COMPARE[unit.op]
    name, ins = start(ctx, unit)
    if len(ins) != 2:
        raise unsupported(ctx, unit, f"{len(ins)} inputs")
    a, b = align(ctx, ins, name)
    test = ctx.add(op, [a, b], ctx.graph.unique_name(f"{name}/{op.lower()}"))
    if negate:
        test = ctx.add("Not", [test], ctx.graph.unique_name(f"{name}/not"))
    finish(ctx, unit, ctx.add("Cast", [test], name, to=ctx.dtype(ins[0])))


@CONVERTERS.register("Select")
def convert_select(ctx: Context, unit: Unit) -> None:
    """``element_select(cond, a, b)``: a where cond is nonzero (Cast to bool is exactly
    "nonzero"), with CNTK's broadcasting of all three."""
    name, ins = start(ctx, unit)
    if len(ins) != 3:
        raise unsupported(ctx, unit, f"{len(ins)} inputs")
    cond, a, b = align(ctx, ins, name)
    test = ctx.add("Cast", [cond], ctx.graph.unique_name(f"{name}/nonzero"), to="bool")
    finish(ctx, unit, ctx.add("Where", [test, a, b], name))


def _scalar_weight(ctx: Context, uid: str) -> float | None:
    """The value of a one-element parameter/constant, else None."""
    if not ctx.is_weight(uid):
        return None
    arr = ctx.array(uid)
    return float(arr.reshape(-1)[0]) if arr.size == 1 else None


@CONVERTERS.register("Clip")
def convert_clip(ctx: Context, unit: Unit) -> None:
    """``clip(x, lo, hi)`` = min(max(x, lo), hi): IR Clip when the bounds are scalars
    known now, else Max then Min (bounds may be tensors that broadcast)."""
    if len(unit.inputs) != 3:
        raise unsupported(ctx, unit, f"{len(unit.inputs)} inputs")
    lo, hi = (_scalar_weight(ctx, u) for u in unit.inputs[1:])
    name, (x, low, high) = start(ctx, unit)
    if lo is not None and hi is not None:
        finish(ctx, unit, ctx.add("Clip", [x], name, min=lo, max=hi))
        return
    x, low, high = align(ctx, [x, low, high], name)
    floor = ctx.add("Max", [x, low], ctx.graph.unique_name(f"{name}/max"))
    finish(ctx, unit, ctx.add("Min", [floor, high], name))


@CONVERTERS.register("LogPlus")
def convert_log_plus(ctx: Context, unit: Unit) -> None:
    """``log(exp(a) + exp(b))``.  With a zero constant operand it is softplus (how
    ``C.softplus`` is built); otherwise the stable ``max(a, b) + softplus(-|a - b|)``."""
    if len(unit.inputs) != 2:
        raise unsupported(ctx, unit, f"{len(unit.inputs)} inputs")
    name = ctx.node_name(unit)
    for i in (0, 1):
        other = unit.inputs[1 - i]
        if ctx.is_weight(other) and ctx.array(other).size == 1 and not np.any(
                ctx.array(other)):
            x = ctx.input(unit.inputs[i], unit, name)
            finish(ctx, unit, ctx.add("Softplus", [x], name))
            return
    a, b = align(ctx, [ctx.input(u, unit, name) for u in unit.inputs], name)
    big = ctx.add("Max", [a, b], ctx.graph.unique_name(f"{name}/max"))
    diff = ctx.add("Sub", [a, b], ctx.graph.unique_name(f"{name}/sub"))
    gap = ctx.add("Abs", [diff], ctx.graph.unique_name(f"{name}/abs"))
    neg = ctx.add("Neg", [gap], ctx.graph.unique_name(f"{name}/neg"))
    soft = ctx.add("Softplus", [neg], ctx.graph.unique_name(f"{name}/softplus"))
    finish(ctx, unit, ctx.add("Add", [big, soft], name))
