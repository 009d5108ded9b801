"""Activations and the softmax family.

CNTK's primitive Softmax/LogSoftmax/Hardmax normalize over *all* elements of
a sample (checked with CNTK 2.7 on a (3, 4) input), not over the last axis;
``C.softmax(x, axis=a)`` is saved as a ``Softmax`` block of primitives, which
is converted as one IR Softmax along that axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.axes import ir_axis, static_axis
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

_UNARY = {
    "ReLU": "Relu", "Sigmoid": "Sigmoid", "StableSigmoid": "Sigmoid", "Tanh": "Tanh",
    "ELU": "Elu",
}


@CONVERTERS.register(*_UNARY)
def convert_unary(ctx: Context, unit: Unit) -> None:
    simple(ctx, unit, _UNARY[unit.op])


_SOFTMAX = {"Softmax": "Softmax", "LogSoftmax": "LogSoftmax", "Hardmax": "Hardmax"}


@CONVERTERS.register(*_SOFTMAX)
def convert_softmax(ctx: Context, unit: Unit) -> None:
    """Normalize over the whole sample: flatten it first when it has more than one axis."""
    name, (x,) = start(ctx, unit)
    batched = ctx.batched(x)
    sample = sample_shape(ctx, x)
    op = _SOFTMAX[unit.op]
    if len(sample) <= 1:
        out = ctx.add(op, [x], name, axis=-1)
    else:
        if not batched:
            raise unsupported(ctx, unit, "an input without batch axis of rank > 1")
        flat = ctx.add("Flatten", [x], ctx.graph.unique_name(f"{name}/flatten"),
                       axis=ctx.lead(x))
        norm = ctx.add(op, [flat], ctx.graph.unique_name(f"{name}/{op.lower()}"), axis=-1)
        out = ctx.add("Reshape", [norm], name, shape=(*lead_dims(ctx, x), *sample))
    finish(ctx, unit, out)


@BLOCK_CONVERTERS.register("Softmax", "LogSoftmax")
def convert_softmax_block(ctx: Context, unit: Unit) -> None:
    """``C.softmax(x, axis)`` / ``C.log_softmax(x, axis)``: one op along the axis."""
    name, ins = start(ctx, unit)
    if len(ins) != 1 or "axis" not in unit.attrs:
        raise unsupported(ctx, unit, "this form of the block")
    x = ins[0]
    axis = static_axis(unit.attrs["axis"], len(sample_shape(ctx, x)), name)
    finish(ctx, unit, ctx.add(unit.op, [x], name, axis=ir_axis(axis, ctx.lead(x))))


_PARAM_BLOCKS = {"ELU": ("Elu", ("alpha",)), "LeakyReLU": ("LeakyRelu", ("alpha",)),
                 "SELU": ("Selu", ("alpha", "gamma"))}


@BLOCK_CONVERTERS.register(*_PARAM_BLOCKS)
def convert_param_activation(ctx: Context, unit: Unit) -> None:
    """CNTK builds these from Less/Select/ElementTimes (and ELU); one IR op each."""
    op, keys = _PARAM_BLOCKS[unit.op]
    name, ins = start(ctx, unit)
    if len(ins) != 1:
        raise unsupported(ctx, unit, f"{len(ins)} inputs")
    attrs = {k: float(unit.attrs[k]) for k in keys if k in unit.attrs}
    finish(ctx, unit, ctx.add(op, ins, name, **attrs))


@BLOCK_CONVERTERS.register("PReLU")
def convert_prelu(ctx: Context, unit: Unit) -> None:
    """``C.param_relu(alpha, x)``: the slope parameter broadcasts against the sample."""
    name, ins = start(ctx, unit)
    if len(ins) != 2:
        raise unsupported(ctx, unit, f"{len(ins)} inputs")
    weights = [i for i, uid in enumerate(unit.inputs) if ctx.is_weight(uid)]
    if len(weights) != 1:
        raise unsupported(ctx, unit, "a computed slope")
    slope = ins[weights[0]]
    x = ins[1 - weights[0]]
    finish(ctx, unit, ctx.add("PRelu", [x, slope], name))
