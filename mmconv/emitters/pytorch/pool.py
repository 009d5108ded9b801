"""Pooling as ``nn.MaxPool{n}d`` / ``nn.AvgPool{n}d`` where PyTorch means the same.

PyTorch's pools take one symmetric ``padding`` (at most half the kernel) and
decide ceil mode's last window by ``(out - 1) * stride >= size + padding``.  The
IR's pads are begin/end and its ceil rule counts the begin pad only.  So:

- symmetric pads within PyTorch's limit: the layer does everything;
- asymmetric pads: ``F.pad`` adds the difference (``-inf`` for max, zeros for an
  average that counts padding), the layer pads the symmetric part, and the
  output size PyTorch would compute is checked against the IR's;
- what that cannot express exactly (an average whose divisor leaves padding
  out on asymmetric pads, dilated averages, a ceil-mode size that would differ
  or cannot be checked statically) goes through the ``_pool`` helper, which
  pads explicitly and computes sums and counts with ones-kernels.
"""

from __future__ import annotations

from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext, ints
from mmconv.emitters.pytorch.conv import split_pads, torch_pads
from mmconv.ir.core import Node
from mmconv.ir.ops._common import spatial_attrs, window_out


def _torch_out(size: int, kernel: int, stride: int, dilation: int, pad: int,
               ceil_mode: bool) -> int:
    """The output length PyTorch's pooling computes (symmetric ``pad``)."""
    span = (kernel - 1) * dilation + 1
    total = size + 2 * pad - span
    if not ceil_mode:
        return total // stride + 1
    out = -(-total // stride) + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _native_fits(ctx: EmitContext, node: Node, kernel: list[int], strides: list[int],
                 dilations: list[int], begin: list[int], end: list[int],
                 layer_pads: list[int]) -> bool:
    """Whether F.pad + the PyTorch layer yield exactly the IR's windows."""
    if any(2 * p > k for p, k in zip(layer_pads, kernel, strict=True)):
        return False
    if not node.attr("ceil_mode"):
        return True
    x_shape = ctx.shape(node.inputs[0])
    for i, k in enumerate(kernel):
        size = x_shape[2 + i]
        if size is None:
            if begin[i] != end[i]:
                return False
            continue  # symmetric: PyTorch's rule is the IR's
        padded = size + begin[i] + end[i] - 2 * layer_pads[i]
        want = window_out(size, k, strides[i], dilations[i], begin[i], end[i], True)
        if _torch_out(padded, k, strides[i], dilations[i], layer_pads[i], True) != want:
            return False
    return True


def _emit_pool(ctx: EmitContext, node: Node) -> None:
    kernel = [int(k) for k in node.attr("kernel_shape")]
    n = len(kernel)
    if n not in (1, 2, 3):
        raise ctx.unsupported(node, f"{n}-d pooling (PyTorch has 1-d to 3-d)")
    strides, dilations, begin, end = spatial_attrs(node, n)
    is_max = node.op == "MaxPool"
    include_pad = bool(node.attr("count_include_pad")) if not is_max else False
    ceil_mode = bool(node.attr("ceil_mode"))
    sym, extra_b, extra_e = split_pads(begin, end)
    asymmetric = any(extra_b) or any(extra_e)
    if any(2 * p > k for p, k in zip(sym, kernel, strict=True)):
        # too much padding for the layer: all of it explicit
        sym, extra_b, extra_e = [0] * n, list(begin), list(end)
        asymmetric = any(begin) or any(end)
    x = ctx.value(node.inputs[0])
    native = (
        (is_max or (all(d == 1 for d in dilations) and (include_pad or not asymmetric)))
        and _native_fits(ctx, node, kernel, strides, dilations, begin, end, sym)
    )
    if not native:
        helper = ctx.helper("_pool")
        ctx.assign(node, f"{helper}({x}, {literal('max' if is_max else 'avg')}, {kernel}, "
                         f"{list(strides)}, {list(dilations)}, {begin + end}, {ceil_mode}, "
                         f"{include_pad})")
        return
    if asymmetric:
        fill = ", value=-float('inf')" if is_max else ""
        x = f"F.pad({x}, {torch_pads(extra_b, extra_e)}{fill})"
    args = [f"kernel_size={ints(kernel)}"]
    if strides != kernel:
        args.append(f"stride={ints(strides)}")
    if any(sym):
        args.append(f"padding={ints(sym)}")
    if is_max and any(d != 1 for d in dilations):
        args.append(f"dilation={ints(dilations)}")
    if ceil_mode:
        args.append("ceil_mode=True")
    if not is_max and any(sym) and not include_pad:
        args.append("count_include_pad=False")
    cls = f"nn.MaxPool{n}d" if is_max else f"nn.AvgPool{n}d"
    layer = ctx.layer(node, f"{cls}({', '.join(args)})", {})
    ctx.assign(node, f"{layer}({x})")


HANDLERS.register("MaxPool", "AveragePool")(_emit_pool)


@HANDLERS.register("GlobalAveragePool", "GlobalMaxPool")
def emit_global_pool(ctx: EmitContext, node: Node) -> None:
    """A mean/max over the spatial axes, kept with size 1 (ONNX's Global*Pool)."""
    x = ctx.value(node.inputs[0])
    dims = list(range(2, ctx.rank(node.inputs[0])))
    fn = "torch.mean" if node.op == "GlobalAveragePool" else "torch.amax"
    ctx.assign(node, f"{fn}({x}, dim={dims}, keepdim=True)")
