"""Reshape, Splice, Slice, TransposeAxes and Pad, with CNTK's stored (reversed) axes
turned to Python order.

A CNTK reshape is row-major in Python order (column-major in storage order of
the reversed shapes: the same element order), so it maps to IR Reshape with
the batch axis copied (0).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mmconv.frontends.cntk.axes import ir_axis, per_axis, py_shape, static_axis
from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import (
    finish,
    lead_dims,
    sample_shape,
    start,
    unsupported,
)
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
    shape = (*lead_dims(ctx, x), *target)
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
    finish(ctx, unit, ctx.add("Concat", ins, name, axis=ir_axis(py, ctx.lead(ins[0]))))


def _axes_of(ctx: Context, unit: Unit, single: str, vector: str, rank: int) -> list[int]:
    """Python axes named by an ``axis``-style attribute or its ``...Vec`` form."""
    a = unit.attrs
    axes = a.get(vector)
    if axes is None:
        axes = [a.get(single, Axis(0))]
    if not isinstance(axes, list | tuple) or not all(isinstance(x, Axis) for x in axes):
        raise unsupported(ctx, unit, f"axes {axes!r}")
    return [static_axis(x, rank, f"{ctx.model.path}: {unit.op} {unit.function.display_name!r}")
            for x in axes]


def _ints(ctx: Context, unit: Unit, single: str, vector: str, n: int, default: int) -> list[int]:
    """An int attribute or its ``...Vec`` form, as ``n`` ints."""
    a = unit.attrs
    values = [int(v) for v in a[vector]] if vector in a else [int(a.get(single, default))] * n
    if len(values) != n:
        raise unsupported(ctx, unit, f"{vector} with {len(values)} values for {n} axes")
    return values


@CONVERTERS.register("Slice")
def convert_slice(ctx: Context, unit: Unit) -> None:
    """CNTK slice: a negative begin counts from the end, an end <= 0 too (0 = "to the
    end"); positive strides only.  Resolved to in-range indices with the static sizes."""
    name, (x,) = start(ctx, unit)
    sample = sample_shape(ctx, x)
    axes = _axes_of(ctx, unit, "axis", "axisVec", len(sample))
    n = len(axes)
    begins = _ints(ctx, unit, "beginIndex", "beginIndexVec", n, 0)
    ends = _ints(ctx, unit, "endIndex", "endIndexVec", n, 0)
    steps = _ints(ctx, unit, "sliceStrides", "sliceStridesVec", n, 1)
    starts, stops = [], []
    for axis, b, e, s in zip(axes, begins, ends, steps, strict=True):
        size = sample[axis]
        if s <= 0:
            raise unsupported(ctx, unit, f"stride {s}")
        b = b + size if b < 0 else b
        e = e + size if e <= 0 else e
        b, e = min(max(b, 0), size), min(max(e, 0), size)
        if e <= b:
            raise unsupported(ctx, unit, f"an empty slice [{b}, {e}) of axis size {size}")
        starts.append(b)
        stops.append(e)
    batched = ctx.lead(x)
    out = ctx.add("Slice", [x], name, starts=tuple(starts), ends=tuple(stops),
                  axes=tuple(ir_axis(a, batched) for a in axes), steps=tuple(steps))
    finish(ctx, unit, out)


@CONVERTERS.register("TransposeAxes")
def convert_transpose_axes(ctx: Context, unit: Unit) -> None:
    """``swapaxes`` (``axis1``/``axis2``) or ``transpose(perm)`` (``axisVec``).

    ``axisVec[j]`` is the stored input axis of stored output axis ``j``; in Python
    order output axis ``r-1-j`` is input axis ``r-1-axisVec[j]``.
    """
    name, (x,) = start(ctx, unit)
    rank = len(sample_shape(ctx, x))
    what = f"{ctx.model.path}: TransposeAxes {name!r}"
    a = unit.attrs
    if "axisVec" in a:
        stored = a["axisVec"]
        if len(stored) != rank:
            raise unsupported(ctx, unit, f"a permutation of {len(stored)} axes for rank {rank}")
        perm = [0] * rank
        for j, ax in enumerate(stored):
            perm[rank - 1 - j] = static_axis(ax, rank, what)
    else:
        perm = list(range(rank))
        p1 = static_axis(a.get("axis1", Axis(0)), rank, what)
        p2 = static_axis(a.get("axis2", Axis(1)), rank, what)
        perm[p1], perm[p2] = perm[p2], perm[p1]
    if sorted(perm) != list(range(rank)):
        raise unsupported(ctx, unit, f"permutation {perm}")
    if ctx.batched(x):
        perm = [0, *(p + 1 for p in perm)]
    finish(ctx, unit, ctx.add("Transpose", [x], name, perm=tuple(perm)))


_PAD_MODES = {0: "constant", 1: "reflect", 2: "symmetric"}


@CONVERTERS.register("Pad")
def convert_pad(ctx: Context, unit: Unit) -> None:
    """``C.pad``: constant and reflect are IR Pad; symmetric (mirror that repeats the
    border, a mode ONNX lacks) is built per axis as reversed Slices around X + Concat."""
    a = unit.attrs
    name, (x,) = start(ctx, unit)
    sample = sample_shape(ctx, x)
    rank = len(sample)
    what = f"{ctx.model.path}: Pad {name!r}"
    head = per_axis(a.get("paddingHead", (0,)), rank, 0, what)
    foot = per_axis(a.get("paddingFoot", (0,)), rank, 0, what)
    mode = _PAD_MODES.get(int(a.get("paddingMode", 0)))
    if mode is None or any(p < 0 for p in head + foot):
        raise unsupported(ctx, unit, f"padding mode {a.get('paddingMode')} / pads {head} {foot}")
    batched = ctx.lead(x)
    lead = [0] * batched
    if mode != "symmetric":
        pads = (*lead, *head, *lead, *foot)
        out = ctx.add("Pad", [x], name, pads=tuple(int(p) for p in pads), mode=mode,
                      value=float(a.get("paddingConstantValue", 0.0)))
        finish(ctx, unit, out)
        return
    axes = [i for i in range(rank) if head[i] or foot[i]]
    out = x
    for k, i in enumerate(axes):
        size, axis = sample[i], ir_axis(i, batched)
        if head[i] > size or foot[i] > size:
            raise unsupported(ctx, unit, f"symmetric padding wider than axis {i} ({size})")
        parts = []
        if head[i]:
            parts.append(ctx.add("Slice", [out], ctx.graph.unique_name(f"{name}/head{i}"),
                                 starts=(head[i] - 1,), ends=(-size - 1,), axes=(axis,),
                                 steps=(-1,)))
        parts.append(out)
        if foot[i]:
            end = size - 1 - foot[i]
            parts.append(ctx.add("Slice", [out], ctx.graph.unique_name(f"{name}/foot{i}"),
                                 starts=(size - 1,), ends=(end if end >= 0 else -size - 1,),
                                 axes=(axis,), steps=(-1,)))
        last = k == len(axes) - 1
        out = ctx.add("Concat", parts, name if last else ctx.graph.unique_name(
            f"{name}/axis{i}"), axis=axis)
    if not axes:
        out = ctx.add("Identity", [x], name)
    finish(ctx, unit, out)
