"""Convolution, with CNTK's auto padding resolved to explicit begin/end pads.

CNTK's rule (Source/Math/ConvolveGeometry.h, and checked against CNTK 2.7 for
kernels 1-6, strides 1-3 and inputs 7-9): with ``autoPadding`` on an axis the
output has ``ceil(n / stride)`` cells, ``extra = n - ((out - 1) * stride + 1)``
input cells are left over, and the kernel centres are shifted by
``extra // 2``; so ``pad_begin = (k - 1) // 2 - extra // 2`` and ``pad_end =
(k - 1) - (k - 1) // 2 - (extra - extra // 2)`` (k the dilated kernel extent).
This differs from TensorFlow's SAME whenever ``extra > 1`` (e.g. n=8, k=3,
stride 2: CNTK pads 1 before, TF pads 0).  A negative end pad only drops input
cells no window reaches, so it becomes 0 when the output size is unchanged; a
negative begin pad (kernel smaller than the stride) is reported unsupported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.axes import per_axis
from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, unsupported

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


def auto_pads(n: int, k: int, stride: int, dilation: int, ceil: bool = False
              ) -> tuple[int, int]:
    """CNTK's (begin, end) padding for one auto-padded axis (see the module docstring).

    With ``ceil`` (pooling's ``ceilOutDim``) the output is ``ceil((n-1)/stride)+1``
    and ``extra`` may be -1; CNTK's C++ integer division truncates toward zero,
    which the centre computation reproduces.
    """
    ek = (k - 1) * dilation + 1
    out = -(-(n - 1) // stride) + 1 if ceil else (n - 1) // stride + 1
    extra = n - ((out - 1) * stride + 1)
    center = int(extra / 2)
    lo = (ek - 1) // 2 - center
    hi = (ek - 1) - (ek - 1) // 2 - (extra - center)
    if hi < 0 and (n + lo - ek) // stride + 1 == out:
        hi = 0
    return lo, hi


def resolve_pads(ctx: Context, unit: Unit, spatial: tuple, kernel: list[int],
                 strides: list[int], dilations: list[int], auto: list[bool],
                 lower: list[int], upper: list[int], ceil: bool = False) -> list[int]:
    """ONNX-order pads (all begins, then all ends) for the spatial axes."""
    begins, ends = [], []
    for i, n in enumerate(spatial):
        if auto[i]:
            lo, hi = auto_pads(n, kernel[i], strides[i], dilations[i], ceil)
        else:
            lo, hi = lower[i], upper[i]
        if lo < 0 or hi < 0:
            raise unsupported(ctx, unit, f"auto padding that crops the input (axis {i})")
        begins.append(lo)
        ends.append(hi)
    return begins + ends


@CONVERTERS.register("Convolution")
def convert_convolution(ctx: Context, unit: Unit) -> None:
    a = unit.attrs
    if a.get("transpose"):
        raise unsupported(ctx, unit, "ConvolutionTranspose")
    w_uid, x_uid = unit.inputs[:2]
    name = ctx.node_name(unit)
    x = ctx.input(x_uid, unit, name)
    if not ctx.is_weight(w_uid):
        raise unsupported(ctx, unit, "a computed (non-parameter) kernel")
    w = ctx.array(w_uid)
    sample = sample_shape(ctx, x)
    rank = len(sample)
    if w.ndim != rank + 1 or not ctx.batched(x):
        raise unsupported(ctx, unit, f"kernel {list(w.shape)} on input {list(sample)}")
    if not all(a.get("sharing", [True])):
        raise unsupported(ctx, unit, "unshared (locally connected) weights")
    what = f"{ctx.model.path}: Convolution {name!r}"
    strides = per_axis(a.get("strides", (1,)), rank, 1, what)[1:]
    dilations = per_axis(a.get("dilation", (1,)), rank, 1, what)[1:]
    auto = per_axis(a.get("autoPadding", [False]), rank, False, what)[1:]
    lower = per_axis(a.get("lowerPad", (0,)), rank, 0, what)[1:]
    upper = per_axis(a.get("upperPad", (0,)), rank, 0, what)[1:]
    groups = int(a.get("groups", 1))
    kernel = list(w.shape[2:])
    pads = resolve_pads(ctx, unit, sample[1:], kernel, strides, dilations, auto, lower, upper)
    wname = ctx.weight(w_uid, ctx.layer_name(unit, name), None)
    out = ctx.add("Conv", [x, wname], name, strides=tuple(strides), dilations=tuple(dilations),
                  pads=tuple(pads), group=groups)
    finish(ctx, unit, out)
