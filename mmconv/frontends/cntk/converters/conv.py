"""Convolution and ConvolutionTranspose, with CNTK's auto padding resolved to explicit
begin/end pads.

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

import numpy as np

from mmconv.formats.cntk import auto_pads
from mmconv.frontends.cntk.axes import per_axis, py_shape
from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, unsupported
from mmconv.ir.ops._common import window_out

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


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


def transpose_pads(ctx: Context, unit: Unit, n: int, out: int | None, k: int, stride: int,
                   dilation: int, auto: bool, lo: int, hi: int) -> tuple[int, int, int]:
    """(pad_begin, pad_end, output_padding) of a transposed convolution along one axis.

    CNTK's transposed convolution is the gradient of the forward convolution from
    its output size ``out`` to the input size ``n``, with that convolution's pads
    (auto padding resolved at size ``out``).  Without an ``outputShape`` CNTK takes
    ``out = (n-1)*stride + 1`` under auto padding (checked with CNTK 2.7) and the
    plain formula otherwise.  Whatever ``out`` the pads leave unreached is the
    ONNX ``output_padding``; a negative one becomes extra end padding.
    """
    ek = (k - 1) * dilation + 1
    if auto:
        out = out or (n - 1) * stride + 1
        lo, hi = auto_pads(out, k, stride, dilation)
    base = (n - 1) * stride + ek - lo - hi
    if out is None:
        out = base
    extra = out - base
    if extra < 0:
        hi, extra = hi - extra, 0
    if lo < 0 or hi < 0 or extra >= max(stride, dilation):
        raise unsupported(ctx, unit, f"output size {out} from input {n} (kernel {k}, stride "
                          f"{stride})")
    return lo, hi, extra


def _spatial(ctx: Context, unit: Unit, rank: int, name: str) -> dict[str, list]:
    """Per-axis attributes in Python order over all ``rank`` sample axes (channels first)."""
    a = unit.attrs
    what = f"{ctx.model.path}: Convolution {name!r}"
    return {
        "strides": per_axis(a.get("strides", (1,)), rank, 1, what),
        "dilations": per_axis(a.get("dilation", (1,)), rank, 1, what),
        "auto": [bool(v) for v in per_axis(a.get("autoPadding", [False]), rank, False, what)],
        "lower": per_axis(a.get("lowerPad", (0,)), rank, 0, what),
        "upper": per_axis(a.get("upperPad", (0,)), rank, 0, what),
    }


@CONVERTERS.register("Convolution")
def convert_convolution(ctx: Context, unit: Unit) -> None:
    a = unit.attrs
    w_uid, x_uid = unit.inputs[:2]
    name = ctx.node_name(unit)
    x = ctx.input(x_uid, unit, name)
    if not ctx.is_weight(w_uid):
        raise unsupported(ctx, unit, "a computed (non-parameter) kernel")
    w = ctx.array(w_uid)
    sample = sample_shape(ctx, x)
    rank = len(sample)
    if not all(a.get("sharing", [True])):
        raise unsupported(ctx, unit, "unshared (locally connected) weights")
    if w.ndim == rank and ctx.batched(x) and not a.get("transpose"):
        _convolve_all_axes(ctx, unit, name, x, w, sample)
        return
    if w.ndim != rank + 1 or not ctx.batched(x):
        raise unsupported(ctx, unit, f"kernel {list(w.shape)} on input {list(sample)}")
    sp = {k: v[1:] for k, v in _spatial(ctx, unit, rank, name).items()}
    groups = int(a.get("groups", 1))
    kernel = list(w.shape[2:])
    wname = ctx.weight(w_uid, ctx.layer_name(unit, name), None)
    if a.get("transpose"):
        if groups != 1 or w.shape[0] != sample[0]:
            raise unsupported(ctx, unit, f"transposed kernel {list(w.shape)} (groups {groups}) "
                              f"on input {list(sample)}")
        shape = [int(d) for d in py_shape(a.get("outputShape", (0,)))]
        if shape == [0] or not any(shape):
            outs: list[int | None] = [None] * (rank - 1)
        elif len(shape) in (rank, rank - 1):
            outs = list(shape[len(shape) - (rank - 1):])
        else:
            raise unsupported(ctx, unit, f"outputShape {shape} for input {list(sample)}")
        begins, ends, extras = [], [], []
        for i, n in enumerate(sample[1:]):
            lo, hi, extra = transpose_pads(ctx, unit, n, outs[i], kernel[i], sp["strides"][i],
                                           sp["dilations"][i], sp["auto"][i],
                                           sp["lower"][i], sp["upper"][i])
            begins.append(lo)
            ends.append(hi)
            extras.append(extra)
        out = ctx.add("ConvTranspose", [x, wname], name, strides=tuple(sp["strides"]),
                      dilations=tuple(sp["dilations"]), pads=tuple(begins + ends),
                      output_padding=tuple(extras) if any(extras) else ())
        finish(ctx, unit, out)
        return
    pads = resolve_pads(ctx, unit, sample[1:], kernel, sp["strides"], sp["dilations"],
                        sp["auto"], sp["lower"], sp["upper"])
    out = ctx.add("Conv", [x, wname], name, strides=tuple(sp["strides"]),
                  dilations=tuple(sp["dilations"]), pads=tuple(pads), group=groups)
    finish(ctx, unit, out)


def _convolve_all_axes(ctx: Context, unit: Unit, name: str, x: str, w: np.ndarray,
                       sample: tuple) -> None:
    """A kernel as deep as the input (no output-map axis): one output map, the window
    sliding over every sample axis, channels included.  CNTK builds LRN this way (a
    (1, 2r+1, 1, 1) kernel over a (1, C, H, W) view).

    As an IR Conv on a single-channel view of the sample.  Axes the kernel leaves
    alone (size 1, stride 1, no padding) are dropped when of size 1 and merged with
    their neighbours otherwise, so CNTK's LRN becomes a plain 2-D convolution.
    """
    rank = len(sample)
    sp = _spatial(ctx, unit, rank, name)
    kernel = list(w.shape)
    pads = resolve_pads(ctx, unit, sample, kernel, sp["strides"], sp["dilations"], sp["auto"],
                        sp["lower"], sp["upper"])
    # (size, kernel, stride, dilation, pad_begin, pad_end) per kept axis
    axes: list[list[int]] = []
    merging = False
    for i in range(rank):
        spec = [sample[i], kernel[i], sp["strides"][i], sp["dilations"][i], pads[i],
                pads[rank + i]]
        trivial = spec[1:] == [1, 1, 1, 0, 0]
        if trivial and spec[0] == 1:
            continue
        if trivial and merging:
            axes[-1][0] *= spec[0]
            continue
        axes.append(spec)
        merging = trivial
    if not axes:
        axes = [[1, 1, 1, 1, 0, 0]]
    out_sample = tuple(
        window_out(sample[i], kernel[i], sp["strides"][i], sp["dilations"][i], pads[i],
                   pads[rank + i]) for i in range(rank))
    view = ctx.add("Reshape", [x], ctx.graph.unique_name(f"{name}/view"),
                   shape=(0, 1, *(s[0] for s in axes)))
    wv = ctx.weight(unit.inputs[0], ctx.layer_name(unit, name), None,
                    w.reshape(1, 1, *(s[1] for s in axes)), key="all_axes")
    conv = ctx.add("Conv", [view, wv], ctx.graph.unique_name(f"{name}/conv"),
                   strides=tuple(s[2] for s in axes), dilations=tuple(s[3] for s in axes),
                   pads=tuple([s[4] for s in axes] + [s[5] for s in axes]))
    finish(ctx, unit, ctx.add("Reshape", [conv], name, shape=(0, *out_sample)))
