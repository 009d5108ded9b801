"""Pooling as ``C.pooling``: MaxPool, AveragePool and the global pools.

Pads: CNTK's Python ``pooling`` takes only ``auto_padding``; when the IR's
explicit pads are what CNTK's auto padding would add, that is used (the
readable, common case), otherwise the SWIG overload with ``lowerPad`` /
``upperPad`` (the generated ``_pooling`` helper).  Ceil mode is CNTK's
``ceil_out_dim`` and count_include_pad its ``include_pad``, both with the
IR's meaning.  CNTK pooling has no dilation.
"""

from __future__ import annotations

from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.cntk.conv import plan_padding
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs, window_out

_KIND = {"MaxPool": "C.MAX_POOLING", "AveragePool": "C.AVG_POOLING",
         "GlobalMaxPool": "C.MAX_POOLING", "GlobalAveragePool": "C.AVG_POOLING"}


@HANDLERS.register("MaxPool", "AveragePool")
def emit_pool(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    if not ctx.batched(x):
        raise ctx.unsupported(node, "pooling of a value without the batch axis")
    kernel = [int(k) for k in node.attr("kernel_shape")]
    n = len(kernel)
    strides, dilations, begins, ends = spatial_attrs(node, n)
    if any(d != 1 for d in dilations):
        raise ctx.unsupported(node, "CNTK pooling has no dilation")
    ceil = bool(node.attr("ceil_mode"))
    include = node.op == "AveragePool" and bool(node.attr("count_include_pad"))
    spatial = ctx.sample_shape(x)[1:]
    floor_out = [window_out(spatial[i], kernel[i], strides[i], 1, begins[i], ends[i])
                 for i in range(n)]
    ceil_out = [window_out(spatial[i], kernel[i], strides[i], 1, begins[i], ends[i], True)
                for i in range(n)]
    if ceil and floor_out == ceil_out:
        ceil = False  # the same windows either way; floor mode needs no exact-cover care
    if ceil and include:
        raise ctx.unsupported(node, "ceil_mode with count_include_pad: CNTK divides a last partial "
                              "window by the full window size, the IR by its padded extent")
    auto, rest = plan_padding(ctx, x, kernel, strides, dilations, begins, ends, ceil)
    kind = _KIND[node.op]
    if any(p != (0, 0) for p in rest):
        _explicit_pool(ctx, node, kind, kernel, strides, begins, ends, ceil, include)
        return
    args = [ctx.ref(x), kind, ints(kernel), f"strides={ints(strides)}"]
    if any(auto):
        args.append(f"auto_padding={literal([False, *auto])}")
    if ceil:
        args.append("ceil_out_dim=True")
    if include:
        args.append("include_pad=True")
    ctx.assign(node, f"C.pooling({', '.join(args)}, {ctx.name_kw(node)})")


def _explicit_pool(ctx: EmitContext, node: Node, kind: str, kernel: list[int],
                   strides: list[int], begins: list[int], ends: list[int], ceil: bool,
                   include: bool) -> None:
    """The SWIG overload with lowerPad/upperPad.

    Without ceil_out_dim CNTK insists that the windows cover the padded input
    exactly ("kernel fills the entire space"); the end padding no window reaches
    is dropped (the same windows), and input pixels no window reaches are sliced off.
    """
    x = node.inputs[0]
    spatial = ctx.sample_shape(x)[1:]
    ends = list(ends)
    crop = []
    if not ceil:
        for i, size in enumerate(spatial):
            unused = (size + begins[i] + ends[i] - kernel[i]) % strides[i]
            ends[i] -= unused
            if ends[i] < 0:
                crop.append((i + 1, size + ends[i]))
                ends[i] = 0
    xexpr = ctx.ref(x)
    if crop:
        axes, stops = [a for a, _ in crop], [s for _, s in crop]
        xexpr = ctx.let(f"C.slice({xexpr}, axis={literal(axes)}, begin_index="
                        f"{literal([0] * len(axes))}, end_index={literal(stops)})", "crop")
    ctx.helpers.add("_pooling")
    ctx.assign(node, f"_pooling({xexpr}, {kind}, {ints(kernel)}, {ints(strides)}, "
                     f"{literal([0, *begins])}, {literal([0, *ends])}, {ceil}, {include}, "
                     f"{literal(node.outputs[0])})")


@HANDLERS.register("GlobalAveragePool", "GlobalMaxPool")
def emit_global_pool(ctx: EmitContext, node: Node) -> None:
    """A pooling window over the whole map (as ``cntk.layers.Global*Pooling`` does)."""
    x = node.inputs[0]
    if not ctx.batched(x):
        raise ctx.unsupported(node, "pooling of a value without the batch axis")
    window = ctx.sample_shape(x)[1:]
    ctx.assign(node, f"C.pooling({ctx.ref(x)}, {_KIND[node.op]}, {ints(window)}, "
                     f"{ctx.name_kw(node)})")
