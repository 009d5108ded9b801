"""Scan (opset 9+) -> the IR's Scan, its body converted by these same converters.

The IR's Scan is batch-major (``x_m[:, t]``), ONNX's scans any axis, by default 0
(time-major).  A scan input whose axis ``a`` is not 1 gets one Transpose moving ``a``
to 1 (the other axes keep their order, so the step the body sees is the one ONNX
gives it); a scan output whose axis is not 1 gets the Transpose back.  Directions:
every input forward, or every input reverse with every output prepended (what the
IR's ``reverse`` means: outputs stay at their input positions); mixed directions are
refused by name.  Opset 8's Scan (a batch axis plus ``sequence_lens``) has no converter
(listed as ``Scan (opset 8; mmconv has it from opset 9)``).

The body (:mod:`mmconv.frontends.onnx.body`) reads outer initializers as outer
weights; an outer activation it reads is passed in as an extra state the body
returns unchanged.  A state must be ``[N, ...]`` with N the step's first axis, or a
batch-sized constant (an exporter's ``Expand(c, Shape(x))``), which becomes the IR's
``[1, ...]`` state broadcast over the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmconv.errors import IRError, UnsupportedError
from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters._util import norm_axis
from mmconv.ir.core import Dim, Shape

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode


def _check(attrs: dict, opset: int) -> str | None:
    if len(set(attrs.get("scan_input_directions") or [0])) > 1:
        return "mixed scan_input_directions"
    return None


def _show(shape: Shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _to_axis1(axis: int, rank: int) -> tuple[int, ...]:
    """The permutation moving ``axis`` to 1, the other axes in their order."""
    rest = [i for i in range(rank) if i != axis]
    return (rest[0], axis, *rest[1:])


def _from_axis1(axis: int, rank: int) -> tuple[int, ...]:
    """The permutation putting axis 1 (the time of an IR scan output) at ``axis``."""
    rest = [i for i in range(rank) if i != 1]
    return (*rest[:axis], 1, *rest[axis:])


def _same(a: Dim, b: Dim) -> bool:
    return a is None or b is None or a == b


def _state(ctx: OnnxContext, node: OnnxNode, i: int, n: Dim) -> tuple[str, Shape]:
    """State input ``i`` as an IR value, and the shape the body sees it with."""
    from mmconv.frontends.onnx.body import is_batch_sized

    where = ctx.where(node)
    if is_batch_sized(ctx, node.input(i)):  # the same [1, ...] for every sample
        value = ctx.x(node, i, f"state{i}", broadcast=True)
        return value, (n, *ctx.shape(value)[1:])
    value = ctx.x(node, i, f"state{i}")
    shape = ctx.shape(value)
    if not shape or (shape[0] == 1 and n != 1) or not _same(shape[0], n):
        raise UnsupportedError(
            f"{where}: state {node.input(i)!r} is {_show(shape)} but the scan's steps are "
            f"[{'?' if n is None else n}, ...]; the IR's Scan carries states [N, ...] with N "
            "the steps' first axis")
    return value, shape


@CONVERTERS.register("Scan", since=9, check=_check)
def scan(ctx: OnnxContext, node: OnnxNode) -> None:
    where = ctx.where(node)
    m = int(node.attr("num_scan_inputs"))
    s = len(node.inputs) - m
    body_proto = node.attr("body").g
    k = len(body_proto.output) - s
    in_dirs = list(node.attr("scan_input_directions") or [0] * m)
    out_dirs = list(node.attr("scan_output_directions") or [0] * k)
    reverse = int(in_dirs[0]) if in_dirs else 0
    if any(int(d) != reverse for d in out_dirs):
        raise UnsupportedError(
            f"{where}: scan_input_directions {in_dirs} and scan_output_directions {out_dirs} "
            "mix directions; mmconv converts all-forward scans and all-reverse ones whose "
            "outputs are prepended (scan_output_directions 1)")
    in_axes = list(node.attr("scan_input_axes") or [0] * m)
    out_axes = list(node.attr("scan_output_axes") or [0] * k)
    xs = [scan_input(ctx, node, s + j, int(in_axes[j])) for j in range(m)]
    finals, ys = build_scan(ctx, node, list(range(s)), xs, body_proto, reverse)
    for i, final in enumerate(finals):
        ctx.set(node, final, i)
    for j, y in enumerate(ys):
        ctx.set(node, scan_output(ctx, y, int(out_axes[j]), j), s + j)


def scan_input(ctx: OnnxContext, node: OnnxNode, index: int, axis: int) -> str:
    """Input ``index``, scanned along ``axis``, as an IR scan input [N, T, ...]."""
    x = ctx.x(node, index)
    rank = len(ctx.shape(x))
    if rank < 2:
        raise UnsupportedError(f"{ctx.where(node)}: scan input {node.input(index)!r} has "
                               f"rank {rank}; the IR's Scan needs steps of rank >= 1")
    perm = _to_axis1(norm_axis(axis, rank), rank)
    if perm != tuple(range(rank)):
        x = ctx.add("Transpose", [x], f"{node.name}/scan_input{index}", perm=perm)
    return x


def scan_output(ctx: OnnxContext, y: str, axis: int, j: int) -> str:
    """IR scan output ``y`` [N, T, ...] with its time axis moved to ``axis``."""
    rank = len(ctx.shape(y))
    perm = _from_axis1(norm_axis(axis, rank), rank)
    if perm != tuple(range(rank)):
        y = ctx.add("Transpose", [y], f"{y}/scan_output{j}", perm=perm)
    return y


def build_scan(ctx: OnnxContext, node: OnnxNode, states: list[int], xs: list[str],
               body_proto: Any, reverse: int) -> tuple[list[str], list[str]]:
    """One IR Scan: the node's inputs ``states`` (indices) as its states, ``xs`` (IR
    values [N, T, ...]) as its scan inputs, ``body_proto`` (inputs: the states, then
    the steps; outputs: the new states, then the step outputs) as its body.  Returns
    the IR final states and scan outputs ([N, T, ...])."""
    from mmconv.frontends.onnx.body import BodyContext

    where = ctx.where(node)
    s, m = len(states), len(xs)
    k = len(body_proto.output) - s
    firsts = [ctx.shape(x)[0] for x in xs]
    n = next((d for d in firsts if d is not None), None)
    if any(not _same(d, n) for d in firsts):
        raise UnsupportedError(f"{where}: the steps of its scan inputs differ in their first "
                               f"axis ({[_show(ctx.shape(x)) for x in xs]}); the IR's Scan "
                               "needs one")
    values = [_state(ctx, node, i, n) for i in states]
    bctx = BodyContext(ctx, body_proto, f"{node.name}/body", where)
    bctx.declare(body_proto, [(ctx.dtype(v), shape) for v, shape in values] +
                 [(ctx.dtype(x), (ctx.shape(x)[0], *ctx.shape(x)[2:])) for x in xs])
    bctx.convert(body_proto)
    for outer in bctx.captured:
        shape = ctx.shape(outer)
        if not shape or not _same(shape[0], n) or (shape[0] == 1 and n != 1):
            raise UnsupportedError(
                f"{where}: its body reads outer value {outer!r} {_show(shape)}, which mmconv "
                "would pass in as a state, but states are [N, ...] with N the steps' first "
                f"axis ({'?' if n is None else n})")
    body = bctx.finish()
    captured = list(bctx.captured.values())
    declared = body.inputs[:s + m]
    body.inputs = [*declared[:s], *[body.value(c) for c in captured], *declared[s:]]
    outs = list(body.outputs)
    body.outputs = [*outs[:s], *captured, *outs[s:]]
    base = ctx.graph.unique_name(node.name)
    names = [base] + [ctx.graph.unique_name(f"{base}/out{i}")
                      for i in range(1, s + len(captured) + k)]
    try:
        ctx.add_node("Scan", [*(v for v, _ in values), *bctx.captured, *xs], base,
                     outputs=names, body=body, num_states=s + len(captured), reverse=reverse)
    except IRError as exc:
        raise UnsupportedError(f"{where}: the IR's Scan cannot hold it: {exc}") from None
    return names[:s], names[s + len(captured):]
