"""Reshape and Splice, with CNTK's stored (reversed) axes turned to Python order.

A CNTK reshape is row-major in Python order (column-major in storage order of
the reversed shapes: the same element order), so it maps to IR Reshape with
the batch axis copied (0).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mmconv.frontends.cntk.axes import ir_axis, py_shape, static_axis
from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, start, unsupported
from mmconv.frontends.cntk.converters.elementwise import align
from mmconv.frontends.cntk.model import Axis

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


@CONVERTERS.register("Reshape")
def convert_reshape(ctx: Context, unit: Unit) -> None:
    a = unit.attrs
    name, (x,) = start(ctx, unit)
    sample = tuple(sample_shape(ctx, x))
    rank = len(sample)
    # beginAxis/endAxis delimit the reshaped range in storage order: [begin, end).
    begin = a.get("beginAxis")
    end = a.get("endAxis")
    b = 0 if begin is None else begin.static_index
    e = rank if end is None else end.static_index
    b, e = (b + rank if b < 0 else b), (e + rank if e < 0 else e)
    if not 0 <= b <= e <= rank:
        raise unsupported(ctx, unit, f"axes [{b}, {e}) for rank {rank}")
    new = list(py_shape(a.get("newShape", ())))
    old = sample[rank - e: rank - b]
    if new.count(-1) > 1 or any(d < -1 for d in new):
        raise unsupported(ctx, unit, f"target shape {new}")
    if -1 in new:
        known = math.prod(d for d in new if d != -1)
        new[new.index(-1)] = math.prod(old) // known if known else 0
    if math.prod(new) != math.prod(old):
        raise unsupported(ctx, unit, f"reshaping {list(old)} to {new}")
    target = (*sample[: rank - e], *new, *sample[rank - b:])
    shape = (0, *target) if ctx.batched(x) else target
    finish(ctx, unit, ctx.add("Reshape", [x], name, shape=tuple(shape)))


@CONVERTERS.register("Splice")
def convert_splice(ctx: Context, unit: Unit) -> None:
    name, ins = start(ctx, unit)
    ins = align(ctx, ins, name)
    rank = max(len(sample_shape(ctx, v)) for v in ins)
    axis = unit.attrs.get("axis", Axis(0))
    if isinstance(axis, Axis) and axis.is_static and axis.static_index >= rank:
        raise unsupported(ctx, unit, "splicing along a new axis")
    py = static_axis(axis, rank, name)
    batched = [ctx.batched(v) for v in ins]
    if not all(batched):
        raise unsupported(ctx, unit, "splicing constants with batched values")
    finish(ctx, unit, ctx.add("Concat", ins, name, axis=ir_axis(py, True)))
