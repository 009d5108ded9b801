"""ReduceElements: CNTK's one reduction primitive (sum, mean, max, min, prod, log-sum-exp,
argmax, argmin) over static axes.

The axes come as ``axis`` (one Axis) or ``axisVec`` (several; v1 files always use
this form), in stored order; ``AllStaticAxes`` means every sample axis.
``reductionKeepDimensions`` (default true) keeps reduced axes with size 1.
Argmax/argmin return the index as a float of the input's type in CNTK, so the
IR's int64 result is cast back.  Reducing over the batch (a dynamic axis) is not
a per-sample computation and is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.axes import ir_axis, static_axis
from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, start, unsupported
from mmconv.frontends.cntk.model import Axis

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit

_REDUCE = {"Sum": "ReduceSum", "Mean": "ReduceMean", "Max": "ReduceMax", "Min": "ReduceMin",
           "Prod": "ReduceProd", "LogSum": "ReduceLogSumExp"}
_ARG = {"Argmax": "ArgMax", "Argmin": "ArgMin"}
ALL_STATIC_AXES = "AllStaticAxes"


def _python_axes(ctx: Context, unit: Unit, rank: int) -> list[int]:
    a = unit.attrs
    axes = a.get("axisVec")
    if axes is None:
        axes = [a.get("axis", Axis(0))]
    if not isinstance(axes, list | tuple) or not all(isinstance(x, Axis) for x in axes):
        raise unsupported(ctx, unit, f"reduction axes {axes!r}")
    if any(x.name == ALL_STATIC_AXES for x in axes):
        return list(range(rank))
    what = f"{ctx.model.path}: ReduceElements {unit.function.display_name!r}"
    out = sorted({static_axis(x, rank, what) for x in axes})
    return out


@CONVERTERS.register("ReduceElements")
def convert_reduce(ctx: Context, unit: Unit) -> None:
    name, ins = start(ctx, unit)
    if len(ins) != 1:
        raise unsupported(ctx, unit, f"{len(ins)} inputs")
    x = ins[0]
    kind = str(unit.attrs.get("reductionOpName", ""))
    keep = bool(unit.attrs.get("reductionKeepDimensions", True))
    rank = len(sample_shape(ctx, x))
    axes = _python_axes(ctx, unit, rank)
    batched = ctx.lead(x)
    ir_axes = tuple(ir_axis(p, batched) for p in axes)
    if kind in _ARG:
        if len(ir_axes) != 1:
            raise unsupported(ctx, unit, f"{kind} over {len(ir_axes)} axes")
        index = ctx.add(_ARG[kind], [x], ctx.graph.unique_name(f"{name}/{kind.lower()}"),
                        axis=ir_axes[0], keepdims=keep)
        finish(ctx, unit, ctx.add("Cast", [index], name, to=ctx.dtype(x)))
        return
    if kind not in _REDUCE:
        raise unsupported(ctx, unit, f"reduction {kind!r}")
    if not ir_axes:
        finish(ctx, unit, ctx.add("Identity", [x], name))
        return
    finish(ctx, unit, ctx.add(_REDUCE[kind], [x], name, axes=ir_axes, keepdims=keep))
