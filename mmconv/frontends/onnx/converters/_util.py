"""Small helpers the converter families share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.errors import UnsupportedError

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode


def norm_axis(axis: int, rank: int) -> int:
    """A non-negative axis (ONNX allows negative ones from opset 11)."""
    return axis + rank if axis < 0 else axis


def ints(values: object) -> tuple[int, ...]:
    return tuple(int(v) for v in values)  # type: ignore[attr-defined]


def only_first_output(ctx: OnnxContext, node: OnnxNode, what: str) -> None:
    """Refuse a node whose extra outputs (indices, saved statistics) are read."""
    extra = [o for o in node.outputs[1:] if o]
    if not extra:
        return
    readers = {i for n in ctx.model.graph.node for i in n.input}
    graph_outs = {o.name for o in ctx.model.graph.output}
    used = [o for o in extra if o in readers or o in graph_outs]
    if used:
        raise UnsupportedError(f"{ctx.where(node)}: its {what} output is not supported")


def spatial(ctx: OnnxContext, x: str, node: OnnxNode) -> tuple[int, ...]:
    """The static spatial sizes of an NC... activation (auto_pad needs them)."""
    dims = ctx.shape(x)[2:]
    if any(d is None for d in dims):
        raise UnsupportedError(f"{ctx.where(node)}: auto_pad on a dynamic spatial size")
    return tuple(int(d) for d in dims)  # type: ignore[arg-type]


def auto_pads(mode: str, sizes: tuple[int, ...], kernel: tuple[int, ...],
              strides: tuple[int, ...], dilations: tuple[int, ...]) -> tuple[int, ...]:
    """ONNX auto_pad resolved to explicit pads (begins, then ends) for Conv and pooling.

    SAME_UPPER puts the odd pixel at the end (TensorFlow's "same"), SAME_LOWER at the
    beginning; VALID pads nothing.
    """
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        if mode == "VALID":
            begins.append(0)
            ends.append(0)
            continue
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        begins.append(small if mode == "SAME_UPPER" else total - small)
        ends.append(total - small if mode == "SAME_UPPER" else small)
    return (*begins, *ends)
