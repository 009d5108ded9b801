"""Shape manipulation: flatten, reshape, transpose, concatenate, slice, pad, gather,
expand, tile."""

from __future__ import annotations

import math

from mmconv.errors import IRError
from mmconv.ir.core import Dim, Node, Value
from mmconv.ir.ops._common import broadcast, need, norm_axis
from mmconv.ir.registry import Attr, op


def _prod(dims: tuple) -> int | None:
    return None if any(d is None for d in dims) else math.prod(dims)


@op(
    "Flatten",
    onnx="Flatten",
    inputs=["X"],
    attrs={"axis": Attr("int", 1, "axes before it form the first output axis")},
    doc="""Reshape to 2-D [prod(shape[:axis]), prod(shape[axis:])] in row-major
    (C) order.""",
)
def infer_flatten(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    axis = node.attr("axis")
    if not 0 <= axis <= x.rank:
        raise IRError(f"node {node.name!r} (Flatten): axis {axis} out of range")
    return [(x.dtype, (_prod(x.shape[:axis]) if axis else 1, _prod(x.shape[axis:])))]


@op(
    "Reshape",
    onnx="Reshape",
    inputs=["X"],
    attrs={"shape": Attr("ints", doc="target shape; 0 copies the input's dim, -1 is inferred")},
    doc="""Row-major reshape to a static target shape (ONNX Reshape with allowzero=0,
    the shape given as an attribute).""",
)
def infer_reshape(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    target = list(node.attr("shape"))
    out: list[int | None] = []
    for i, d in enumerate(target):
        if d == 0:
            if i >= x.rank:
                raise IRError(f"node {node.name!r} (Reshape): 0 at axis {i} beyond input rank")
            out.append(x.shape[i])
        elif d < -1:
            raise IRError(f"node {node.name!r} (Reshape): invalid dim {d}")
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise IRError(f"node {node.name!r} (Reshape): more than one -1 in {target}")
    total = _prod(x.shape)
    if -1 in out:
        rest = [d for d in out if d != -1]
        known = _prod(tuple(rest))
        idx = out.index(-1)
        if total is not None and known:
            if total % known:
                raise IRError(f"node {node.name!r} (Reshape): {list(x.shape)} -> {target}")
            out[idx] = total // known
        elif x.shape and x.shape[0] is None and None in rest and None not in x.shape[1:]:
            out[idx] = _prod(x.shape[1:]) // (_prod(tuple(d for d in rest if d)) or 1)
        elif None in x.shape and all(i < len(target) and target[i] == 0
                                     for i, d in enumerate(x.shape) if d is None):
            # every dynamic axis is copied (a time-major [T, N, ...] merge): -1 is the
            # static rest, whatever position the dynamic axes have
            static_in = _prod(tuple(d for d in x.shape if d is not None)) or 1
            static_out = _prod(tuple(d for d in rest if d is not None)) or 1
            if static_in % static_out == 0:
                out[idx] = static_in // static_out
            else:
                out[idx] = None
        else:
            out[idx] = None
    elif total is not None and None not in out and _prod(tuple(out)) != total:
        raise IRError(f"node {node.name!r} (Reshape): {list(x.shape)} cannot become {target}")
    return [(x.dtype, tuple(out))]


@op(
    "Transpose",
    onnx="Transpose",
    inputs=["X"],
    attrs={"perm": Attr("ints", doc="output axis i is input axis perm[i]")},
    doc="""Permute axes: Y.shape[i] = X.shape[perm[i]].""",
)
def infer_transpose(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    perm = node.attr("perm")
    if sorted(perm) != list(range(x.rank)):
        raise IRError(f"node {node.name!r} (Transpose): perm {list(perm)} for rank {x.rank}")
    return [(x.dtype, tuple(x.shape[p] for p in perm))]


@op(
    "Concat",
    onnx="Concat",
    inputs=["inputs*"],
    attrs={"axis": Attr("int", doc="the axis to join along")},
    doc="""Join tensors of equal shape except along axis.""",
)
def infer_concat(node: Node, inputs: list[Value | None]) -> list[tuple]:
    vals = [need(node, inputs, i) for i in range(len(inputs))]
    if not vals:
        raise IRError(f"node {node.name!r} (Concat): no inputs")
    rank = vals[0].rank
    axis = norm_axis(node, node.attr("axis"), rank)
    out = list(vals[0].shape)
    for v in vals[1:]:
        if v.rank != rank:
            raise IRError(f"node {node.name!r} (Concat): inputs differ in rank")
        a, b = out[axis], v.shape[axis]
        out[axis] = None if a is None or b is None else a + b
    return [(vals[0].dtype, tuple(out))]


def slice_bounds(start: int, end: int, step: int, size: int) -> tuple[int, int, int]:
    """ONNX Slice's clamping of one axis: (start, end, number of elements taken).

    Negative start/end count from the end; then, for a positive step, both are
    clamped to [0, size], for a negative one start to [0, size-1] and end to
    [-1, size-1] (so ``end = -size-1`` means "through element 0").
    """
    if start < 0:
        start += size
    if end < 0:
        end += size
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
        count = max(0, -(-(end - start) // step))
    else:
        start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
        count = max(0, -(-(start - end) // -step))
    return start, end, count


@op(
    "Slice",
    onnx="Slice",
    inputs=["X"],
    attrs={
        "starts": Attr("ints", doc="first index per sliced axis (negative counts from the end)"),
        "ends": Attr("ints", doc="end index (exclusive) per sliced axis, clamped as in ONNX"),
        "axes": Attr("ints", (), "the sliced axes; empty means 0, 1, ... len(starts)-1"),
        "steps": Attr("ints", (), "step per sliced axis (negative walks backwards); empty "
                      "means 1"),
    },
    doc="""Strided slice as ONNX Slice (opset 10+ semantics) with static starts, ends, axes
    and steps: along each listed axis take start, start+step, ... up to (not including)
    end, after ONNX's clamping of out-of-range indices.""",
)
def infer_slice(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    starts, ends = node.attr("starts"), node.attr("ends")
    axes = node.attr("axes") or tuple(range(len(starts)))
    steps = node.attr("steps") or (1,) * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise IRError(f"node {node.name!r} (Slice): starts/ends/axes/steps differ in length")
    out = list(x.shape)
    seen = set()
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        a = norm_axis(node, axis, x.rank)
        if a in seen or step == 0:
            raise IRError(f"node {node.name!r} (Slice): axis {a} repeated or step 0")
        seen.add(a)
        if out[a] is not None:
            out[a] = slice_bounds(start, end, step, out[a])[2]
    return [(x.dtype, tuple(out))]


@op(
    "Pad",
    onnx="Pad",
    inputs=["X"],
    attrs={
        "pads": Attr("ints", doc="begin values of every axis, then end values (ONNX order); "
                     "all >= 0"),
        "mode": Attr("str", "constant", "constant, reflect (mirror without the edge) or edge",
                     choices=("constant", "reflect", "edge")),
        "value": Attr("float", 0.0, "the fill value of constant mode"),
    },
    doc="""Pad every axis as ONNX Pad (pads and value static): constant fills with value,
    reflect mirrors the tensor without repeating the border element, edge repeats it.
    A mirror that repeats the border (CNTK's and TensorFlow's SYMMETRIC) is not a mode:
    frontends build it from reversed Slices and Concat.""",
)
def infer_pad(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    pads = node.attr("pads")
    if len(pads) != 2 * x.rank or any(p < 0 for p in pads):
        raise IRError(
            f"node {node.name!r} (Pad): pads {list(pads)} must be {2 * x.rank} values >= 0")
    out = []
    for i, d in enumerate(x.shape):
        begin, end = pads[i], pads[x.rank + i]
        if d is not None and node.attr("mode") == "reflect" and max(begin, end) >= d:
            raise IRError(f"node {node.name!r} (Pad): reflect padding {max(begin, end)} "
                          f"needs an axis longer than that (size {d})")
        out.append(None if d is None else d + begin + end)
    return [(x.dtype, tuple(out))]


@op(
    "Gather",
    onnx="Gather",
    inputs=["X", "indices"],
    attrs={"axis": Attr("int", 0, "the axis of X that indices select along")},
    doc="""Take entries of X along ``axis`` at integer (int32/int64) ``indices``, as ONNX
    Gather: Y.shape = X.shape[:axis] + indices.shape + X.shape[axis+1:], and a negative
    index counts from the end of the axis. Either input may be a weight: an embedding
    lookup has X a weight and runtime indices; picking entries of an activation (a
    class token, one time step) has constant indices, often a scalar (rank 0), which
    removes the axis.""",
)
def infer_gather(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x, idx = need(node, inputs, 0), need(node, inputs, 1)
    if idx.dtype not in ("int32", "int64"):
        raise IRError(f"node {node.name!r} (Gather): indices must be int32 or int64, "
                      f"got {idx.dtype}")
    if x.rank == 0:
        raise IRError(f"node {node.name!r} (Gather): X must have rank >= 1")
    axis = norm_axis(node, node.attr("axis"), x.rank)
    return [(x.dtype, x.shape[:axis] + idx.shape + x.shape[axis + 1:])]


def expand_shape(node: Node, shape: tuple, target: tuple, batch: Dim | str = "") -> tuple:
    """Expand's output shape: ``target`` (0/-1 keep X's dim) broadcast with X's shape;
    with ``batch`` (the batch_like input's axis 0, given) that is output axis 0."""
    rank = max(len(shape), len(target))
    x = (1,) * (rank - len(shape)) + tuple(shape)
    t = list((1,) * (rank - len(target)) + tuple(target))
    for i, d in enumerate(t):
        if i == 0 and batch != "":
            if x[0] != 1:
                raise IRError(f"node {node.name!r} (Expand): with batch_like, X's axis facing "
                              f"output axis 0 must be 1 (X is {list(shape)})")
            t[0] = 1
        elif d in (0, -1):
            if i < rank - len(shape):
                raise IRError(f"node {node.name!r} (Expand): {d} at axis {i} of {list(target)}"
                              f" has no axis of X to copy (X is {list(shape)})")
            t[i] = 1  # broadcasting against 1 keeps X's dim, dynamic or not
        elif d < -1:
            raise IRError(f"node {node.name!r} (Expand): invalid dim {d} in {list(target)}")
    out = broadcast(node, [x, tuple(t)])
    return out if batch == "" else (batch, *out[1:])


@op(
    "Expand",
    onnx="Expand",
    inputs=["X", "batch_like?"],
    attrs={"shape": Attr("ints", doc="the target shape, right-aligned with X; 1, 0 or -1 "
                         "keep X's dim at that axis")},
    doc="""Broadcast X to ``shape`` as ONNX Expand (bidirectional, numpy rules: shapes are
    right-aligned, a 1 on either side takes the other side's dim, so the output rank is
    max(rank X, len shape)), with the shape static. 0 and -1 in ``shape`` mean "keep X's
    dim here" (like 1, but stating that the dim is X's: how a frontend writes an axis
    that is dynamic, the batch, after folding Shape sub-graphs; -1 as torch's expand);
    they must face an axis of X. Growing a size-1 axis of X to the dynamic batch (a
    class token expanded to the batch, torch's ``cls.expand(n, -1, -1)``) takes the
    optional ``batch_like``: output axis 0 is then that tensor's axis 0 (its batch),
    X's axis facing it must be 1, and shape[0] is not read (write -1). Only the
    values' shape of batch_like matters, never its values.""",
)
def infer_expand(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    like = inputs[1] if len(inputs) > 1 else None
    batch: Dim | str = ""
    if like is not None:
        if like.rank == 0:
            raise IRError(f"node {node.name!r} (Expand): batch_like must have an axis 0")
        batch = like.shape[0]
    return [(x.dtype, expand_shape(node, x.shape, tuple(node.attr("shape")), batch))]


@op(
    "Tile",
    onnx="Tile",
    inputs=["X"],
    attrs={"repeats": Attr("ints", doc="copies per axis, one value >= 1 for every axis of X")},
    doc="""Repeat X ``repeats[i]`` times along each axis i, as ONNX Tile (numpy.tile with
    len(repeats) == rank): Y.shape[i] = X.shape[i] * repeats[i]; the copies are laid
    end to end (a b c a b c, not a a b b c c).""",
)
def infer_tile(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    reps = node.attr("repeats")
    if len(reps) != x.rank or any(r < 1 for r in reps):
        raise IRError(f"node {node.name!r} (Tile): repeats {list(reps)} must be {x.rank} "
                      "values >= 1")
    return [(x.dtype, tuple(None if d is None else d * r for d, r in zip(x.shape, reps,
                                                                        strict=True)))]
