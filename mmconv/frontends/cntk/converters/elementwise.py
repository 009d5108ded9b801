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

from mmconv.frontends.cntk.converters import BLOCK_CONVERTERS, CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, simple, start

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
            shape = (0, *([1] * (rank - len(sample))), *sample)
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
