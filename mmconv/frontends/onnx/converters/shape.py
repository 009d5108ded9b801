"""Shape manipulation: Reshape/Flatten/Squeeze/Unsqueeze, Transpose, Concat/Split/Slice,
ReverseSequence (whole sequences), Gather, Expand/Tile, Pad, DepthToSpace/SpaceToDepth.

Shape operands (Reshape's target, Slice's starts, Pad's pads ...) must be known at
conversion time; a target that depends on the batch size (a folded ``Shape ->
Gather -> Concat`` sub-graph) becomes a static one with 0 or -1 for the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx import known as kn
from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters._util import ints, norm_axis

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode


def _known_input(ctx: OnnxContext, node: OnnxNode, index: int, what: str) -> kn.Known:
    k = ctx.known.get(node.input(index))
    if k is None:
        raise UnsupportedError(f"{ctx.where(node)}: {what} computed at run time is not "
                               "supported (mmconv needs it at conversion time)")
    return k


# -- Reshape family -----------------------------------------------------------------------
@CONVERTERS.register("Reshape", since=5)
def reshape(ctx: OnnxContext, node: OnnxNode) -> None:
    x = ctx.x(node, 0)
    target = _known_input(ctx, node, 1, "the target shape")
    shape = kn.resolve_target(target, ctx.shape(x), ctx.where(node))
    if int(node.attr("allowzero", 0)) and 0 in [int(v) for v in target.a.reshape(-1)]:
        raise UnsupportedError(f"{ctx.where(node)}: allowzero=1 with a 0 in the target")
    ctx.set(node, ctx.add("Reshape", [x], node.name, shape=tuple(shape)))


@CONVERTERS.register("Flatten", since=1)
def flatten(ctx: OnnxContext, node: OnnxNode) -> None:
    x = ctx.x(node, 0)
    axis = norm_axis(int(node.attr("axis", 1)), len(ctx.shape(x)))
    ctx.set(node, ctx.add("Flatten", [x], node.name, axis=axis))


def _squeeze(ctx: OnnxContext, node: OnnxNode, axes: tuple[int, ...] | None) -> None:
    x = ctx.x(node, 0)
    shape = ctx.shape(x)
    if axes is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    drop = {norm_axis(a, len(shape)) for a in axes}
    if any(shape[a] != 1 for a in drop):
        raise UnsupportedError(f"{ctx.where(node)}: squeezes an axis that is not 1 "
                               f"(shape {list(shape)})")
    ctx.set(node, ctx.reshape(x, [d for i, d in enumerate(shape) if i not in drop], node.name))


def _unsqueeze(ctx: OnnxContext, node: OnnxNode, axes: tuple[int, ...]) -> None:
    x = ctx.x(node, 0)
    shape = list(ctx.shape(x))
    rank = len(shape) + len(axes)
    for a in sorted(norm_axis(a, rank) for a in axes):
        shape.insert(a, 1)
    ctx.set(node, ctx.reshape(x, shape, node.name))


@CONVERTERS.register("Squeeze", since=1)
def squeeze_1(ctx: OnnxContext, node: OnnxNode) -> None:
    axes = node.attr("axes")
    _squeeze(ctx, node, ints(axes) if axes is not None else None)


@CONVERTERS.register("Squeeze", since=13)
def squeeze_13(ctx: OnnxContext, node: OnnxNode) -> None:
    axes = ctx.need_static(node, 1, "the axes")
    _squeeze(ctx, node, ints(axes.reshape(-1)) if axes is not None else None)


@CONVERTERS.register("Unsqueeze", since=1)
def unsqueeze_1(ctx: OnnxContext, node: OnnxNode) -> None:
    _unsqueeze(ctx, node, ints(node.attr("axes")))


@CONVERTERS.register("Unsqueeze", since=13)
def unsqueeze_13(ctx: OnnxContext, node: OnnxNode) -> None:
    axes = ctx.need_static(node, 1, "the axes")
    _unsqueeze(ctx, node, ints(np.asarray(axes).reshape(-1)))


@CONVERTERS.register("Transpose", since=1)
def transpose(ctx: OnnxContext, node: OnnxNode) -> None:
    x = ctx.x(node, 0)
    perm = node.attr("perm")
    perm = ints(perm) if perm is not None else tuple(reversed(range(len(ctx.shape(x)))))
    ctx.set(node, ctx.add("Transpose", [x], node.name, perm=perm))


# -- joining and cutting ------------------------------------------------------------------
@CONVERTERS.register("Concat", since=4)
def concat(ctx: OnnxContext, node: OnnxNode) -> None:
    """A batch-sized constant among the inputs (a ViT class token expanded to the batch)
    is expanded at run time from a runtime input's batch."""
    runtime = [node.input(i) for i in range(len(node.inputs)) if node.input(i) in ctx.values]
    like = ctx.values[runtime[0]] if runtime else None
    ins = []
    for i in range(len(node.inputs)):
        if not node.input(i):
            continue
        grown = ctx.batch_sized(node, i, like, f"in{i}") if like is not None else None
        ins.append(grown if grown is not None else ctx.x(node, i, f"in{i}"))
    rank = len(ctx.shape(ins[0]))
    axis = norm_axis(int(node.attr("axis")), rank)
    ins = [i for i in ins if ctx.shape(i)[axis] != 0]
    ctx.set(node, ctx.add("Concat", ins, node.name, axis=axis))


def _split(ctx: OnnxContext, node: OnnxNode, split: tuple[int, ...] | None) -> None:
    x = ctx.x(node, 0)
    shape = ctx.shape(x)
    axis = norm_axis(int(node.attr("axis", 0)), len(shape))
    size = shape[axis]
    if size is None:
        raise UnsupportedError(f"{ctx.where(node)}: Split along the dynamic batch axis")
    n = len(node.outputs)
    if split is None:
        chunk = -(-size // int(node.attr("num_outputs", n)))
        split = tuple(min(chunk, size - i * chunk) for i in range(n))
    start = 0
    for i, length in enumerate(split):
        name = node.name if n == 1 else f"{node.name}_{i}"
        y = ctx.add("Slice", [x], name, starts=(start,), ends=(start + length,), axes=(axis,))
        ctx.set(node, y, i)
        start += length


@CONVERTERS.register("Split", since=2)
def split_2(ctx: OnnxContext, node: OnnxNode) -> None:
    split = node.attr("split")
    _split(ctx, node, ints(split) if split is not None else None)


@CONVERTERS.register("Split", since=13)
def split_13(ctx: OnnxContext, node: OnnxNode) -> None:
    split = ctx.need_static(node, 1, "the split sizes")
    _split(ctx, node, ints(split.reshape(-1)) if split is not None else None)


#: A Slice end at or past this takes the rest of the axis, whatever its length (INT32_MAX,
#: what exporters write for "to the end").
_WHOLE = 2**31 - 1


def _slice(ctx: OnnxContext, node: OnnxNode, starts: tuple, ends: tuple, axes: tuple | None,
           steps: tuple | None) -> None:
    x = ctx.x(node, 0)
    shape = ctx.shape(x)
    rank = len(shape)
    axes = tuple(norm_axis(a, rank) for a in axes) if axes is not None else \
        tuple(range(len(starts)))
    steps = steps or (1,) * len(starts)
    # an axis sliced whole (tf2onnx's strided_slice writes [0:INT_MAX] on the batch)
    # is left out, so targets that cannot slice the batch axis never see it
    keep = [i for i, (b, e, a, st) in enumerate(zip(starts, ends, axes, steps, strict=True))
            if not (st == 1 and b == 0 and (e >= _WHOLE or (shape[a] is not None
                                                              and e >= shape[a])))]
    if not keep:
        ctx.set(node, x)
        return
    starts, ends = tuple(starts[i] for i in keep), tuple(ends[i] for i in keep)
    axes, steps = tuple(axes[i] for i in keep), tuple(steps[i] for i in keep)
    attrs: dict[str, object] = {"starts": starts, "ends": ends, "axes": axes}
    if any(s != 1 for s in steps):
        attrs["steps"] = steps
    clamp = np.iinfo(np.int64)
    attrs["starts"] = tuple(max(min(v, clamp.max), clamp.min) for v in starts)
    attrs["ends"] = tuple(max(min(v, clamp.max), clamp.min) for v in ends)
    ctx.set(node, ctx.add("Slice", [x], node.name, **attrs))


@CONVERTERS.register("Slice", since=1)
def slice_1(ctx: OnnxContext, node: OnnxNode) -> None:
    axes = node.attr("axes")
    _slice(ctx, node, ints(node.attr("starts")), ints(node.attr("ends")),
           ints(axes) if axes is not None else None, None)


@CONVERTERS.register("Slice", since=10)
def slice_10(ctx: OnnxContext, node: OnnxNode) -> None:
    def get(i: int, what: str) -> tuple[int, ...] | None:
        a = ctx.need_static(node, i, what)
        return None if a is None else ints(a.reshape(-1))

    starts, ends = get(1, "the starts"), get(2, "the ends")
    _slice(ctx, node, starts or (), ends or (), get(3, "the axes"), get(4, "the steps"))


@CONVERTERS.register("ReverseSequence", since=10)
def reverse_sequence(ctx: OnnxContext, node: OnnxNode) -> None:
    """Every sequence reversed whole (all ``sequence_lens`` the static time length, what
    tf2onnx writes for ``tf.reverse`` over time in a backward RNN): a Slice with step -1.
    Ragged lengths have no IR op and are refused."""
    x = ctx.x(node, 0)
    rank = len(ctx.shape(x))
    axis = norm_axis(int(node.attr("time_axis", 0)), rank)
    time = ctx.shape(x)[axis]
    k = ctx.known.get(node.input(1))
    if time is None or k is None or not np.all(k.a == time) or not np.all(k.b == time):
        raise UnsupportedError(f"{ctx.where(node)}: only every sequence reversed whole "
                               "(sequence_lens all equal to a static time length) is supported")
    ctx.set(node, ctx.add("Slice", [x], node.name, starts=(-1,),
                          ends=(np.iinfo(np.int64).min,), axes=(axis,), steps=(-1,)))


@CONVERTERS.register("Gather", since=1)
def gather(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "Gather", 2, params=("X", "indices"), axis=int(node.attr("axis", 0)))


# -- broadcasting copies ------------------------------------------------------------------
@CONVERTERS.register("Expand", since=8)
def expand(ctx: OnnxContext, node: OnnxNode) -> None:
    """The target may hold the batch (folded from Shape): it must face X's batch axis."""
    x = ctx.x(node, 0)
    xs = ctx.shape(x)
    target = _known_input(ctx, node, 1, "the target shape")
    if target.is_static:
        shape = [int(v) for v in target.a.reshape(-1)]
    else:
        mask = target.batch_mask().reshape(-1).tolist()
        shape = []
        offset = len(mask) - len(xs)
        for i, (v, dep) in enumerate(zip(target.a.reshape(-1).tolist(), mask, strict=True)):
            j = i - offset
            if dep:
                if j < 0 or xs[j] is not None:
                    raise UnsupportedError(f"{ctx.where(node)}: expanding an axis to the "
                                           "dynamic batch size is not supported")
                shape.append(0)
            else:
                shape.append(int(v))
    # dims that face a dynamic axis of X keep it
    offset = len(shape) - len(xs)
    for j, d in enumerate(xs):
        if d is None and offset + j >= 0 and shape[offset + j] == 1:
            shape[offset + j] = 0
    ctx.set(node, ctx.add("Expand", [x], node.name, shape=tuple(shape)))


@CONVERTERS.register("Tile", since=6)
def tile(ctx: OnnxContext, node: OnnxNode) -> None:
    repeats = ctx.need_static(node, 1, "the repeats")
    ctx.set(node, ctx.add("Tile", [ctx.x(node, 0)], node.name,
                          repeats=ints(np.asarray(repeats).reshape(-1))))


# -- padding ------------------------------------------------------------------------------
def _pad_check(attrs: dict, opset: int) -> str | None:
    mode = attrs.get("mode", "constant")
    return None if mode in ("constant", "reflect", "edge") else f"mode={mode}"


def _pad(ctx: OnnxContext, node: OnnxNode, pads: tuple[int, ...], value: float,
         axes: tuple[int, ...] | None) -> None:
    x = ctx.x(node, 0)
    rank = len(ctx.shape(x))
    if axes is not None:
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            a = norm_axis(a, rank)
            full[a], full[rank + a] = pads[k], pads[len(axes) + k]
        pads = tuple(full)
    if any(p < 0 for p in pads):
        # negative pads crop: a Slice first, then the positive part
        starts = tuple(max(-p, 0) for p in pads[:rank])
        ends = tuple(-max(-p, 0) if p < 0 else np.iinfo(np.int64).max for p in pads[rank:])
        x = ctx.add("Slice", [x], f"{node.name}/crop", starts=starts, ends=ends,
                    axes=tuple(range(rank)))
        pads = tuple(max(p, 0) for p in pads)
    ctx.set(node, ctx.add("Pad", [x], node.name, pads=pads,
                          mode=str(node.attr("mode", "constant")), value=float(value)))


@CONVERTERS.register("Pad", since=2, check=_pad_check)
def pad_2(ctx: OnnxContext, node: OnnxNode) -> None:
    _pad(ctx, node, ints(node.attr("pads")), float(node.attr("value", 0.0)), None)


@CONVERTERS.register("Pad", since=11, check=_pad_check)
def pad_11(ctx: OnnxContext, node: OnnxNode) -> None:
    pads = ctx.need_static(node, 1, "the pads")
    value = ctx.need_static(node, 2, "the pad value")
    axes = ctx.need_static(node, 3, "the axes")
    _pad(ctx, node, ints(pads.reshape(-1)), 0.0 if value is None else float(value.reshape(-1)[0])
         if value.size else 0.0, None if axes is None else ints(axes.reshape(-1)))


# -- space <-> depth ----------------------------------------------------------------------
def _d2s_check(attrs: dict, opset: int) -> str | None:
    mode = attrs.get("mode", "DCR")
    return None if mode in ("DCR", "CRD") else f"mode={mode}"


@CONVERTERS.register("DepthToSpace", since=1, check=_d2s_check)
def depth_to_space(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "DepthToSpace", 1, blocksize=int(node.attr("blocksize")),
               mode=str(node.attr("mode", "DCR")))


@CONVERTERS.register("SpaceToDepth", since=1)
def space_to_depth(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "SpaceToDepth", 1, blocksize=int(node.attr("blocksize")))
