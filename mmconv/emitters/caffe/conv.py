"""Conv and ConvTranspose as Caffe's Convolution and Deconvolution; a zero Pad in front
of a convolution folds into its padding.

Weights keep the IR's layout, which is Caffe's: ``[out, in/group, kh, kw]``
for Convolution, ``[in, out/group, kh, kw]`` for Deconvolution.  Caffe pads
symmetrically; an IR convolution with other pads is fitted by
:func:`.windows.fit_axis` (a larger symmetric pad, then a crop).  A
Deconvolution computes the full output for the smaller of the two pads and is
cropped to the IR's.  Caffe's layers are 2-D here (1-D convolutions are refused).
"""

from __future__ import annotations

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.emitters.caffe.windows import fit_axis
from mmconv.ir.core import Node


def _ints(node: Node, attr: str, n: int, default: int) -> list[int]:
    values = [int(v) for v in node.attr(attr)]
    return values if values else [default] * n


def _geometry(ctx: EmitContext, node: Node) -> tuple[str, list[int], list[int], list[int]]:
    """(input blob, strides, dilations, pads [t, l, b, r]) with a folded Pad added."""
    x = node.inputs[0]
    if ctx.rank(x) != 4:
        raise ctx.unsupported(node, f"a {ctx.rank(x) - 2}-D convolution; the Caffe target "
                              "writes 2-D ones only")
    pads = _ints(node, "pads", 4, 0)
    if x in ctx.folded_pads:
        source, extra = ctx.folded_pads[x]
        pads = [a + b for a, b in zip(pads, extra, strict=True)]
        blob = ctx.blob(source)
    else:
        blob = ctx.blob(x)
    return blob, _ints(node, "strides", 2, 1), _ints(node, "dilations", 2, 1), pads


@HANDLERS.register("Conv")
def conv(ctx: EmitContext, node: Node) -> None:
    x, w_name, y = node.inputs[0], node.inputs[1], node.outputs[0]
    w = ctx.need_weight(node, w_name, "the kernel")
    blob, strides, dilations, pads = _geometry(ctx, node)
    group = int(node.attr("group"))
    in_shape = ctx.static_shape(node, x)[2:]
    if x in ctx.folded_pads:
        in_shape = ctx.static_shape(node, ctx.folded_pads[x][0])[2:]
    out_shape = ctx.static_shape(node, y)[2:]
    fits = []
    for axis in range(2):
        extent = (w.shape[2 + axis] - 1) * dilations[axis] + 1
        fit = fit_axis(in_shape[axis], extent, strides[axis], pads[axis], out_shape[axis],
                       pool=False)
        if fit is None:  # cannot happen for valid IR; kept as a clear error
            raise ctx.unsupported(node, f"no Caffe pad reproduces spatial axis {axis}")
        fits.append(fit)
    blobs = [w]
    bias = node.input(2)
    if bias:
        blobs.append(ctx.need_weight(node, bias, "the bias").reshape(-1))
    param = pb.ConvolutionParameter(
        num_output=int(w.shape[0]), bias_term=bool(bias), kernel_h=int(w.shape[2]),
        kernel_w=int(w.shape[3]), stride_h=strides[0], stride_w=strides[1],
        pad_h=fits[0].pad, pad_w=fits[1].pad, group=group)
    if any(d != 1 for d in dilations):
        param.dilation.extend(dilations)
    if all(f.crop == 0 and f.out == f.size for f in fits):
        ctx.final(node, "Convolution", [blob], blobs=blobs, convolution_param=param)
        return
    (out,) = ctx.layer("Convolution", [blob], hint="conv", blobs=blobs,
                       convolution_param=param)
    for axis, fit in enumerate(fits):
        out = ctx.crop(out, axis + 2, fit.crop, fit.out, fit.size)
    ctx.alias(y, out)


@HANDLERS.register("ConvTranspose")
def conv_transpose(ctx: EmitContext, node: Node) -> None:
    x, w_name, y = node.inputs[0], node.inputs[1], node.outputs[0]
    w = ctx.need_weight(node, w_name, "the kernel")
    blob, strides, dilations, pads = _geometry(ctx, node)
    if x in ctx.folded_pads:
        raise ctx.unsupported(node, "a Pad in front of a transposed convolution")
    group = int(node.attr("group"))
    in_shape = ctx.static_shape(node, x)[2:]
    out_shape = ctx.static_shape(node, y)[2:]
    caffe_pads, crops, full = [], [], []
    for axis in range(2):
        extent = (w.shape[2 + axis] - 1) * dilations[axis] + 1
        pad = min(pads[axis], pads[axis + 2])
        size = strides[axis] * (in_shape[axis] - 1) + extent - 2 * pad
        start = pads[axis] - pad
        if start + out_shape[axis] > size:
            raise ctx.unsupported(node, f"output_padding beyond the end padding on spatial "
                                  f"axis {axis}: Caffe's Deconvolution cannot grow its output")
        caffe_pads.append(pad)
        crops.append(start)
        full.append(size)
    blobs = [w]
    bias = node.input(2)
    if bias:
        blobs.append(ctx.need_weight(node, bias, "the bias").reshape(-1))
    param = pb.ConvolutionParameter(
        num_output=int(w.shape[1]) * group, bias_term=bool(bias), kernel_h=int(w.shape[2]),
        kernel_w=int(w.shape[3]), stride_h=strides[0], stride_w=strides[1],
        pad_h=caffe_pads[0], pad_w=caffe_pads[1], group=group)
    if any(d != 1 for d in dilations):
        param.dilation.extend(dilations)
    if crops == [0, 0] and full == list(out_shape):
        ctx.final(node, "Deconvolution", [blob], blobs=blobs, convolution_param=param)
        return
    (out,) = ctx.layer("Deconvolution", [blob], hint="deconv", blobs=blobs,
                       convolution_param=param)
    for axis in range(2):
        out = ctx.crop(out, axis + 2, crops[axis], out_shape[axis], full[axis])
    ctx.alias(y, out)


@HANDLERS.register("Pad")
def pad(ctx: EmitContext, node: Node) -> None:
    """Caffe has no padding layer: a zero Pad of the spatial axes that only convolutions
    read becomes part of their padding (recorded here, used by :func:`conv`)."""
    x, y = node.inputs[0], node.outputs[0]
    pads = [int(p) for p in node.attr("pads")]
    rank = len(pads) // 2
    readers = ctx.graph.consumers().get(y, [])
    foldable = (node.attr("mode") == "constant" and float(node.attr("value")) == 0.0
                and rank == 4 and not any(pads[:2]) and not any(pads[rank:rank + 2])
                and y not in ctx.graph.outputs and readers
                and all(r.op == "Conv" and r.inputs[0] == y and y not in r.inputs[1:]
                        for r in readers))
    if not foldable:
        raise ctx.unsupported(node, "Caffe has no padding layer; only a zero Pad of the "
                              "spatial axes read by convolutions alone can be written (as "
                              "their padding)")
    ctx.folded_pads[y] = (x, [pads[2], pads[3], pads[6], pads[7]])
    ctx.blob(x)  # the input must exist
