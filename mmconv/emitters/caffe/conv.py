"""Conv and ConvTranspose as Caffe's Convolution and Deconvolution; a zero Pad in front
of a convolution folds into its padding.

Weights keep the IR's layout, which is Caffe's: ``[out, in/group, kh, kw]``
for Convolution, ``[in, out/group, kh, kw]`` for Deconvolution.  Caffe pads
symmetrically; an IR convolution with other pads is fitted by
:func:`.windows.fit_axis` (a larger symmetric pad, then a crop).  A
Deconvolution computes the full output for the smaller of the two pads and is
cropped to the IR's; a dilated one gets its kernel spread out with zeros
(OpenCV ignores Deconvolution's dilation).  1-D convolutions run as 2-D ones on ``[N, C, L, 1]``
(Reshape layers around them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.emitters.caffe.windows import fit_axis
from mmconv.ir.core import Node


def ints(node: Node, attr: str, n: int, default: int) -> list[int]:
    values = [int(v) for v in node.attr(attr)]
    return values if values else [default] * n


@dataclass
class Window:
    """A 1-D or 2-D window op's geometry, as the 2-D layer Caffe runs (1-D: width 1)."""

    blob: str
    in_size: list[int]
    out_size: list[int]
    strides: list[int]
    dilations: list[int]
    pads: list[int]  # top, left, bottom, right
    one_d: bool


def window(ctx: EmitContext, node: Node, foldable: bool = False) -> Window:
    """The 2-D geometry of ``node`` (a Pad folded into it when ``foldable``)."""
    x, y = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    if rank not in (3, 4):
        raise ctx.unsupported(node, f"a {rank - 2}-D window op; Caffe's layers here are "
                              "1-D or 2-D")
    n = rank - 2
    pads = ints(node, "pads", 2 * n, 0)
    source = x
    if foldable and x in ctx.folded_pads:
        source, extra = ctx.folded_pads[x]
        pads = [a + b for a, b in zip(pads, extra[:n] + extra[2:2 + n], strict=True)]
    in_size = list(ctx.static_shape(node, source)[2:])
    out_size = list(ctx.static_shape(node, y)[2:])
    strides, dilations = ints(node, "strides", n, 1), ints(node, "dilations", n, 1)
    if n == 1:
        blob = ctx.as_2d(node, source)
        return Window(blob, [*in_size, 1], [*out_size, 1], [*strides, 1], [*dilations, 1],
                      [pads[0], 0, pads[1], 0], True)
    return Window(ctx.blob(source), in_size, out_size, strides, dilations, pads, False)


def finish(ctx: EmitContext, node: Node, type_: str, win: Window, crops: list[tuple[int, int]],
           full: list[int], **params: object) -> None:
    """Write the layer, the crops of its surplus outputs and (1-D) the Reshape back."""
    plain = all(c == 0 for c, _ in crops) and [o for _, o in crops] == full
    if plain and not win.one_d:
        ctx.final(node, type_, [win.blob], **params)  # type: ignore[arg-type]
        return
    (out,) = ctx.layer(type_, [win.blob], hint=type_.lower(), **params)  # type: ignore[arg-type]
    for axis, (start, length) in enumerate(crops):
        out = ctx.crop(out, axis + 2, start, length, full[axis])
    if win.one_d:
        ctx.from_2d(node, out)
    else:
        ctx.alias(node.outputs[0], out)


def _param(w: np.ndarray, win: Window, num_output: int, bias: bool, group: int,
           pads: list[int]) -> pb.ConvolutionParameter:
    param = pb.ConvolutionParameter(
        num_output=num_output, bias_term=bias, kernel_h=int(w.shape[2]),
        kernel_w=int(w.shape[3]), stride_h=win.strides[0], stride_w=win.strides[1],
        pad_h=pads[0], pad_w=pads[1], group=group)
    if any(d != 1 for d in win.dilations):
        param.dilation.extend(win.dilations)
    return param


def _weights(ctx: EmitContext, node: Node, win: Window) -> tuple[np.ndarray, list[np.ndarray]]:
    w = ctx.need_weight(node, node.inputs[1], "the kernel")
    if win.one_d:
        w = w.reshape(*w.shape, 1)
    blobs = [w]
    if node.input(2):
        blobs.append(ctx.need_weight(node, node.input(2), "the bias").reshape(-1))
    return w, blobs


@HANDLERS.register("Conv")
def conv(ctx: EmitContext, node: Node) -> None:
    win = window(ctx, node, foldable=True)
    w, blobs = _weights(ctx, node, win)
    fits = []
    for axis in range(2):
        extent = (w.shape[2 + axis] - 1) * win.dilations[axis] + 1
        fit = fit_axis(win.in_size[axis], extent, win.strides[axis], win.pads[axis],
                       win.out_size[axis], pool=False)
        if fit is None:  # cannot happen for valid IR; kept as a clear error
            raise ctx.unsupported(node, f"no Caffe pad reproduces spatial axis {axis}")
        fits.append(fit)
    param = _param(w, win, int(w.shape[0]), len(blobs) == 2, int(node.attr("group")),
                   [f.pad for f in fits])
    finish(ctx, node, "Convolution", win, [(f.crop, f.out) for f in fits],
           [f.size for f in fits], blobs=blobs, convolution_param=param)


def _dilate(w: np.ndarray, dilations: list[int]) -> np.ndarray:
    """The kernel with ``d - 1`` zeros between taps: the same transposed convolution
    without dilation (OpenCV's Deconvolution ignores the dilation field)."""
    kh, kw = w.shape[2:]
    dh, dw = dilations
    out = np.zeros((*w.shape[:2], (kh - 1) * dh + 1, (kw - 1) * dw + 1), dtype=w.dtype)
    out[:, :, ::dh, ::dw] = w
    return out


@HANDLERS.register("ConvTranspose")
def conv_transpose(ctx: EmitContext, node: Node) -> None:
    win = window(ctx, node)
    w, blobs = _weights(ctx, node, win)
    if any(d != 1 for d in win.dilations):
        w = blobs[0] = _dilate(w, win.dilations)
        win.dilations = [1, 1]
    group = int(node.attr("group"))
    pads, crops, full = [], [], []
    for axis in range(2):
        extent = (w.shape[2 + axis] - 1) * win.dilations[axis] + 1
        pad = min(win.pads[axis], win.pads[axis + 2])
        size = win.strides[axis] * (win.in_size[axis] - 1) + extent - 2 * pad
        start = win.pads[axis] - pad
        if start + win.out_size[axis] > size:
            raise ctx.unsupported(node, f"output_padding beyond the end padding on spatial "
                                  f"axis {axis}: Caffe's Deconvolution cannot grow its output")
        pads.append(pad)
        crops.append((start, win.out_size[axis]))
        full.append(size)
    param = _param(w, win, int(w.shape[1]) * group, len(blobs) == 2, group, pads)
    finish(ctx, node, "Deconvolution", win, crops, full, blobs=blobs, convolution_param=param)


@HANDLERS.register("Pad")
def pad(ctx: EmitContext, node: Node) -> None:
    """Caffe has no padding layer: a zero Pad of the spatial axes that only convolutions
    read becomes part of their padding (recorded here, used by :func:`conv`)."""
    x, y = node.inputs[0], node.outputs[0]
    pads = [int(p) for p in node.attr("pads")]
    rank = len(pads) // 2
    readers = ctx.graph.consumers().get(y, [])
    foldable = (node.attr("mode") == "constant" and float(node.attr("value")) == 0.0
                and rank in (3, 4) and not any(pads[:2]) and not any(pads[rank:rank + 2])
                and y not in ctx.graph.outputs and readers
                and all(r.op == "Conv" and r.inputs[0] == y and y not in r.inputs[1:]
                        for r in readers))
    if not foldable:
        raise ctx.unsupported(node, "Caffe has no padding layer; only a zero Pad of the "
                              "spatial axes read by convolutions alone can be written (as "
                              "their padding)")
    spatial = rank - 2
    begin, end = pads[2:rank], pads[rank + 2:]
    # stored as [top, left, bottom, right] (1-D: [begin, 0, end, 0]) like Window.pads
    ctx.folded_pads[y] = (x, (begin + [0] * (2 - spatial)) + (end + [0] * (2 - spatial)))
    ctx.blob(x)  # the input must exist
