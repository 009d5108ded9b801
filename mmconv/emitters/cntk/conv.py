"""Conv and ConvTranspose as ``C.convolution`` / ``C.convolution_transpose``.

The IR's OIHW kernel is CNTK's convolution map layout already, so weights
pass through untouched.  CNTK's Python ``convolution`` takes no explicit pads,
only ``auto_padding`` per axis (and neither does any C++ overload of
``Convolution`` reachable through SWIG), so per spatial axis:

- pads (0, 0): ``auto_padding`` False;
- pads equal to what CNTK's auto padding would add at that size: True;
- anything else (asymmetric "same" from TensorFlow, explicit pads): a
  ``C.pad`` of zeros in front and ``auto_padding`` False on that axis (what
  CNTK's own ONNX importer does);
- a (dilated) kernel wider than the unpadded input, which CNTK 2.7 refuses even
  with auto padding ("kernel dim 3 <= input dim 2": "same" convs deep in
  small-input nets): explicit pads as above, so the padded input is wide enough.
  Pooling goes through the same plan, and its lowerPad/upperPad overload takes
  such a window too (padding never wins a max; averages exclude it unless
  count_include_pad).

ConvolutionTranspose has an explicit-pad overload in SWIG
(``cntk_py.convolution_transpose(W, x, strides, sharing, lowerPad, upperPad,
outputShape, dilation, maxTempMem, name)``), used when pads are not zero.

Dilation: CNTK 2.7 runs dilated convolution on GPU only ("Dilated convolution
on CPU is not yet implemented").  By default the layer keeps its dilation (the
faithful, retrainable layer); the emit option ``dilation="expand"`` writes the
kernel with zeros between its taps and dilation 1 instead, which runs on CPU
and computes the same numbers.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.codegen import literal
from mmconv.formats.cntk import auto_pads
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs


def plan_padding(ctx: EmitContext, x: str, kernel: list[int], strides: list[int],
                 dilations: list[int], begins: list[int], ends: list[int], ceil: bool = False
                 ) -> tuple[list[bool], list[tuple[int, int]]]:
    """Per spatial axis: CNTK ``auto_padding``, and the explicit (begin, end) left over.

    CNTK 2.7 refuses a kernel wider than its (unpadded) input even when auto padding
    would make room ("same" convs deep in small-input nets: 3x3 on a 2x2 map), so
    there the pads stay explicit and the caller pads the input first."""
    spatial = ctx.sample_shape(x)[1:]
    auto, rest = [], []
    for i, n in enumerate(spatial):
        pads = (begins[i], ends[i])
        if (kernel[i] - 1) * dilations[i] + 1 > n:
            auto.append(False)
            rest.append(pads)
        elif pads == (0, 0):
            auto.append(False)
            rest.append((0, 0))
        elif pads == auto_pads(n, kernel[i], strides[i], dilations[i], ceil):
            auto.append(True)
            rest.append((0, 0))
        else:
            auto.append(False)
            rest.append(pads)
    return auto, rest


def _dilate(w: np.ndarray, dilations: list[int]) -> np.ndarray:
    """The kernel with ``d-1`` zeros between taps on each spatial axis (same numbers, CPU)."""
    spatial = w.shape[2:]
    shape = w.shape[:2] + tuple((k - 1) * d + 1 for k, d in zip(spatial, dilations, strict=True))
    out = np.zeros(shape, dtype=w.dtype)
    out[(slice(None), slice(None), *(slice(None, None, d) for d in dilations))] = w
    return out


def _dilation_mode(ctx: EmitContext) -> str:
    return str(ctx.options.get("dilation", "native"))


@HANDLERS.register("Conv")
def emit_conv(ctx: EmitContext, node: Node) -> None:
    """One ``C.convolution`` (plus a bias ``C.plus`` in the same line)."""
    x, w = node.inputs[0], node.inputs[1]
    if not ctx.batched(x):
        raise ctx.unsupported(node, "convolution of a value without the batch axis")
    n = ctx.rank(w) - 2
    strides, dilations, begins, ends = spatial_attrs(node, n)
    kernel = [int(d) for d in ctx.shape(w)[2:]]  # type: ignore[arg-type]
    if not ctx.is_weight(w):
        raise ctx.unsupported(node, "a kernel computed at run time")
    expand = any(d != 1 for d in dilations) and _dilation_mode(ctx) == "expand"
    if expand:
        kernel = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
        dil = list(dilations)
        dilations = [1] * n
        wexpr = ctx.param(w, lambda a: _dilate(a, dil), "dilated")
    else:
        wexpr = ctx.param(w)
    auto, rest = plan_padding(ctx, x, kernel, strides, dilations, begins, ends)
    xexpr = ctx.ref(x)
    if any(p != (0, 0) for p in rest):
        pattern = [(0, 0), *rest]
        xexpr = ctx.let(f"C.pad({xexpr}, pattern={literal(pattern)})", "pad")
    args = [wexpr, xexpr, f"strides={ints([1, *strides])}",
            f"auto_padding={literal([False, *auto])}"]
    if any(d != 1 for d in dilations):
        args.append(f"dilation={ints([1, *dilations])}")
    group = int(node.attr("group"))
    if group != 1 and n == 1:
        raise ctx.unsupported(node, "grouped 1-D convolution: CNTK 2.7 on CPU computes it wrong or "
                              "fails (mkl err -127)")
    if group != 1:
        args.append(f"groups={group}")
    bias = node.input(2)
    if bias:
        conv = f"C.convolution({', '.join(args)})"
        b = ctx.param(bias, lambda a: a.reshape((-1,) + (1,) * n), "c11")
        ctx.assign(node, f"C.plus({conv}, {b}, {ctx.name_kw(node)})")
    else:
        ctx.assign(node, f"C.convolution({', '.join(args)}, {ctx.name_kw(node)})")


@HANDLERS.register("ConvTranspose")
def emit_conv_transpose(ctx: EmitContext, node: Node) -> None:
    """``C.convolution_transpose``; explicit pads or output_padding through the SWIG overload.

    CNTK 2.7's convolution_transpose has no groups: a grouped one is one transposed
    convolution per group on its slice of the input channels, spliced (the kernel
    split at emit time, one Parameter per group).
    """
    x, w = node.inputs[0], node.inputs[1]
    if not ctx.batched(x):
        raise ctx.unsupported(node, "transposed convolution of a value without the batch axis")
    if not ctx.is_weight(w):
        raise ctx.unsupported(node, "a kernel computed at run time")
    n = ctx.rank(w) - 2
    group = int(node.attr("group"))
    strides, dilations, begins, ends = spatial_attrs(node, n)
    out_shape = tuple(int(d) for d in ctx.shape(node.outputs[0])[1:])  # type: ignore[arg-type]
    dil = list(dilations)
    expand = any(d != 1 for d in dilations) and _dilation_mode(ctx) == "expand"
    if expand:
        dilations = [1] * n
    explicit = any(begins) or any(ends) or any(node.attr("output_padding"))
    if explicit:
        ctx.helpers.add("_convolution_transpose")
    # CNTK wants the forward geometry to tile exactly: (out + pads - k) % stride == 0.
    # output_padding breaks that, so it comes off the end pad; where the end pad is
    # smaller, the surplus rows (beyond the full transposed output: zeros) are a C.pad.
    extra = [0] * n
    for i, op in enumerate(node.attr("output_padding") or [0] * n):
        ends[i] -= op
        if ends[i] < 0:
            extra[i], ends[i] = -ends[i], 0
    out_shape = (out_shape[0], *(d - e for d, e in zip(out_shape[1:], extra, strict=True)))

    def call(wexpr: str, xexpr: str, shape: tuple[int, ...]) -> str:
        """The call without its closing parenthesis (the caller adds name or not)."""
        if not explicit:
            args = [wexpr, xexpr, f"strides={ints([1, *strides])}", "auto_padding=[False]"]
            if any(d != 1 for d in dilations):
                args.append(f"dilation={ints([1, *dilations])}")
            return f"C.convolution_transpose({', '.join(args)}, output_shape={ints(shape)}"
        return (f"_convolution_transpose({wexpr}, {xexpr}, {ints([1, *strides])}, "
                f"{literal([0, *begins])}, {literal([0, *ends])}, {ints(shape)}, "
                f"{ints([1, *dilations])}")

    def kernel(i: int) -> str:
        cin = ctx.shape(w)[0] // group  # type: ignore[operator]

        def layout(a: np.ndarray) -> np.ndarray:
            a = a[i * cin:(i + 1) * cin] if group > 1 else a
            return _dilate(a, dil) if expand else a
        tag = ("dilated" if expand else "ir") + (f"_group{i}" if group > 1 else "")
        return ctx.param(w, layout, tag)

    bias = node.input(2)
    unnamed = ", name='')" if explicit else ")"
    if group == 1:
        conv = call(kernel(0), ctx.ref(x), out_shape)
    else:
        cin = int(ctx.shape(w)[0]) // group  # type: ignore[arg-type]
        shape = (out_shape[0] // group, *out_shape[1:])
        parts = []
        for i in range(group):
            xi = ctx.let(f"C.slice({ctx.ref(x)}, 0, {i * cin}, {(i + 1) * cin})", f"in{i}")
            parts.append(ctx.let(call(kernel(i), xi, shape) + unnamed, f"group{i}"))
        conv = f"C.splice({', '.join(parts)}, axis=0"
        unnamed = ")"
    if any(extra):
        conv = f"C.pad({conv}{unnamed}, pattern={literal([(0, 0)] + [(0, e) for e in extra])}"
        unnamed = ")"
    if bias:
        b = ctx.param(bias, lambda a: a.reshape((-1,) + (1,) * n), "c11")
        ctx.assign(node, f"C.plus({conv}{unnamed}, {b}, {ctx.name_kw(node)})")
    elif conv.startswith("_"):  # the helper takes the name positionally
        ctx.assign(node, f"{conv}, {literal(node.outputs[0])})")
    else:
        ctx.assign(node, f"{conv}, {ctx.name_kw(node)})")
