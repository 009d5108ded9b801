"""Small helpers the converter families share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.errors import UnsupportedError

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


def start(ctx: Context, unit: Unit) -> tuple[str, list[str]]:
    """The unit's IR node name and its inputs as IR values (weights created as needed)."""
    name = ctx.node_name(unit)
    return name, [ctx.input(uid, unit, name) for uid in unit.inputs]


def finish(ctx: Context, unit: Unit, *values: str) -> None:
    """Map the unit's CNTK outputs to the IR values that compute them."""
    for uid, value in zip(unit.outputs, values, strict=False):
        ctx.values[uid] = value


def unsupported(ctx: Context, unit: Unit, what: str) -> UnsupportedError:
    return UnsupportedError(
        f"{ctx.model.path}: {unit.op} {unit.function.display_name!r}: {what} is not supported yet")


def sample_shape(ctx: Context, value: str) -> tuple:
    """The shape of an IR value without its batch (and time) axes: the CNTK sample shape."""
    return ctx.shape(value)[ctx.lead(value):]


def lead_dims(ctx: Context, value: str) -> tuple[int, ...]:
    """Reshape dims (0 = copy) keeping ``value``'s batch and time axes."""
    return (0,) * ctx.lead(value)


def simple(ctx: Context, unit: Unit, op: str, **attrs: object) -> str:
    """One IR node computing the unit, inputs in CNTK order."""
    name, ins = start(ctx, unit)
    out = ctx.add(op, ins, name, **attrs)
    finish(ctx, unit, out)
    return out
