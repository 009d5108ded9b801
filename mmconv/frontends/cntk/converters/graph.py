"""Structure: Combine, identities (NoOp/Alias, StopGradient, Pass, Dropout at inference)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, start, unsupported

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


@CONVERTERS.register("NoOp", "StopGradient", "Pass", "Dropout")
def convert_identity(ctx: Context, unit: Unit) -> None:
    """An Identity node (kept so the name survives; the identity pass removes it).

    Dropout is the identity at inference; CNTK's Alias is saved as NoOp.
    """
    name, ins = start(ctx, unit)
    if len(ins) != 1:
        raise unsupported(ctx, unit, f"{len(ins)} inputs")
    finish(ctx, unit, ctx.add("Identity", ins, name))


@CONVERTERS.register("Combine")
def convert_combine(ctx: Context, unit: Unit) -> None:
    """Combine only groups outputs (the model's outputs are its inputs); nothing to compute."""
    if unit.inputs and unit.inputs[0] in ctx.values:
        finish(ctx, unit, ctx.values[unit.inputs[0]])
