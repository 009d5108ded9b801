"""Shape ops: Flatten/Reshape (``C.reshape``), Transpose, Concat (``C.splice``), Slice, Pad.

Shapes and axes are those of one sample (the IR shape without its batch
axis); an op that would move data across the batch is refused.  Only the IR's
own Transpose nodes become ``C.transpose``; the emitter adds none.
"""

from __future__ import annotations

from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Node
from mmconv.ir.passes.reversal import whole_reversal


def _reshape(ctx: EmitContext, node: Node) -> None:
    """The target is the inferred output shape (the IR's 0/-1 already resolved)."""
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(out)
    if x in ctx.folded:
        # ROI pooling's [N*R, ...] back to [N, R, ...]: CNTK already holds (R, ...)
        if not shape or shape[0] is not None:
            raise ctx.unsupported(node, f"ROI-pooled values reshaped to {list(shape)}")
        target = shape[1:]
    elif x in ctx.sequence:
        spec = tuple(node.attr("shape")) if node.op == "Reshape" else ()
        if len(shape) < 2 or shape[0] is not None or shape[1] is not None \
                or spec[:2] != (0, 0):
            raise ctx.unsupported(node, f"it reshapes across the batch or sequence axis "
                                  f"({list(ctx.shape(x))} to {list(shape)})")
        target = shape[2:]  # per step, the sequence axis kept
    elif ctx.batched(x):
        if not shape or shape[0] is not None:
            raise ctx.unsupported(node, f"it reshapes across the batch axis ({list(ctx.shape(x))} "
                                  f"to {list(shape)})")
        target = shape[1:]
    else:
        target = shape
    if any(d is None for d in target):
        raise ctx.unsupported(node, f"a dynamic target shape {list(shape)}")
    ctx.assign(node, f"C.reshape({ctx.ref(x)}, {ints(target)}, {ctx.name_kw(node)})")  # type: ignore[arg-type]


HANDLERS.register("Flatten", "Reshape")(_reshape)


@HANDLERS.register("Transpose")
def emit_transpose(ctx: EmitContext, node: Node) -> None:
    x = node.inputs[0]
    perm = [int(p) for p in node.attr("perm")]
    if ctx.batched(x):
        if perm[0] != 0:
            raise ctx.unsupported(node, f"perm {perm} moves the batch axis")
        perm = [p - 1 for p in perm[1:]]
    ctx.assign(node, f"C.transpose({ctx.ref(x)}, perm={ints(perm)}, {ctx.name_kw(node)})")


@HANDLERS.register("Concat")
def emit_concat(ctx: EmitContext, node: Node) -> None:
    ins = node.inputs
    lead = next((v for v in ins if ctx.batched(v)), ins[0])
    axis = ctx.axis(lead, int(node.attr("axis")))
    parts = ", ".join(ctx.operand(v, lead) for v in ins)
    ctx.assign(node, f"C.splice({parts}, axis={axis}, {ctx.name_kw(node)})")


def _indices(start: int, end: int, step: int, dim: int) -> range:
    """The positions an ONNX slice takes along one axis of size ``dim`` (after clamping)."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)
    return range(start, end, step)


@HANDLERS.register("Slice")
def emit_slice(ctx: EmitContext, node: Node) -> None:
    """``C.slice`` with begin/end/strides per axis; a negative step (the mirror of a
    symmetric pad) as a splice of the single positions, since CNTK 2.7 slices forward only.
    On a sequence's (dynamic) time axis: its first or last step, or all of it reversed
    (the generated ``_reversed_sequence``)."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    starts, ends = list(node.attr("starts")), list(node.attr("ends"))
    axes = [int(a) % rank for a in node.attr("axes")] or list(range(len(starts)))
    steps = list(node.attr("steps")) or [1] * len(starts)
    sample = ctx.sample_shape(x)
    if x in ctx.sequence and 1 in axes:
        if axes == [1] and whole_reversal(int(starts[0]), int(ends[0]), int(steps[0])):
            # a sequence back to front (a go_backwards layer's output in Keras' order)
            ctx.helpers.add("_reversed_sequence")
            ctx.assign(node, f"_reversed_sequence({ctx.ref(x)}, {literal(node.outputs[0])})")
            return
        # one step of a sequence (how frontends write sequence.first/last): CNTK's own op,
        # kept [N, 1, ...] as the IR has it
        one = axes == [1] and steps == [1]
        pick = ("C.sequence.first" if one and (starts[0], ends[0]) == (0, 1) else
                "C.sequence.last" if one and starts[0] == -1 and ends[0] >= 2**31 - 1 else "")
        if not pick:
            raise ctx.unsupported(node, "a slice of the sequence axis other than its first "
                                  "or last step or all of it reversed (fix the length with "
                                  "--inputShape)")
        ctx.assign(node, f"C.reshape({pick}({ctx.ref(x)}), {ints((1, *sample))}, "
                         f"{ctx.name_kw(node)})", sequence=False)
        return
    forward = []
    backward = []
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        cntk_axis = ctx.axis(x, axis)
        taken = _indices(int(start), int(end), int(step), sample[cntk_axis])
        if step > 0:
            forward.append((cntk_axis, taken.start, max(taken.stop, taken.start), step))
        else:
            backward.append((cntk_axis, list(taken)))
    expr = ctx.ref(x)
    if forward:
        f_axes, f_begin, f_end, f_steps = (list(t) for t in zip(*forward, strict=True))
        call = (f"C.slice({expr}, axis={literal(f_axes)}, begin_index={literal(f_begin)}, "
                f"end_index={literal(f_end)}")
        if any(s != 1 for s in f_steps):
            call += f", strides={literal(f_steps)}"
        if not backward:
            ctx.assign(node, f"{call}, {ctx.name_kw(node)})")
            return
        expr = ctx.let(call + ")", "slice")
    for i, (cntk_axis, taken) in enumerate(backward):
        if not taken:
            raise ctx.unsupported(node, "an empty slice")
        parts = ", ".join(f"C.slice({expr}, {cntk_axis}, {p}, {p + 1})" for p in taken)
        call = f"C.splice({parts}, axis={cntk_axis}"
        if i == len(backward) - 1:
            ctx.assign(node, f"{call}, {ctx.name_kw(node)})")
        else:
            expr = ctx.let(call + ")", "reversed")


_PAD_MODES = {"constant": "C.ops.CONSTANT_PAD", "reflect": "C.ops.REFLECT_PAD",
              "edge": ""}


def _edge_pad(ctx: EmitContext, node: Node, pattern: list[tuple[int, int]]) -> None:
    """CNTK has no edge mode: per padded axis, the border slice repeated and spliced
    around the tensor (exact; one line per axis)."""
    expr = ctx.ref(node.inputs[0])
    sample = ctx.sample_shape(node.inputs[0])
    padded = [i for i, p in enumerate(pattern) if p != (0, 0)]
    if not padded:
        ctx.assign(node, f"C.alias({expr}, {ctx.name_kw(node)})")
        return
    for k, axis in enumerate(padded):
        begin, end = pattern[axis]
        size = sample[axis]
        first = f"C.slice({expr}, {axis}, 0, 1)"
        last = f"C.slice({expr}, {axis}, {size - 1}, {size})"
        parts = ", ".join([first] * begin + [expr] + [last] * end)
        call = f"C.splice({parts}, axis={axis}"
        if k == len(padded) - 1:
            ctx.assign(node, f"{call}, {ctx.name_kw(node)})")
        else:
            expr = ctx.let(call + ")", f"edge{axis}")


@HANDLERS.register("Pad")
def emit_pad(ctx: EmitContext, node: Node) -> None:
    """``C.pad`` (constant or reflect); edge mode by splicing border slices."""
    x = node.inputs[0]
    mode = str(node.attr("mode"))
    if mode not in _PAD_MODES:
        raise ctx.unsupported(node, f"pad mode {mode!r}")
    pads = [int(p) for p in node.attr("pads")]
    rank = ctx.rank(x)
    pattern = list(zip(pads[:rank], pads[rank:], strict=True))
    if ctx.batched(x):
        if pattern[0] != (0, 0):
            raise ctx.unsupported(node, "it pads the batch axis")
        pattern = pattern[1:]
    if mode == "edge":
        _edge_pad(ctx, node, pattern)
        return
    value = float(node.attr("value"))
    extra = f", constant_value={literal(value)}" if mode == "constant" and value else ""
    ctx.assign(node, f"C.pad({ctx.ref(x)}, pattern={literal(pattern)}, "
                     f"mode={_PAD_MODES[mode]}{extra}, {ctx.name_kw(node)})")


def take_expr(expr: str, axis: int, indices: list[int]) -> str:
    """Positions ``indices`` of static axis ``axis`` as one expression: runs of
    consecutive positions are single ``C.slice`` s, spliced together.  CNTK 2.7's
    ``gather`` refuses a reference with the batch axis, and a slice is exact."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1]:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    parts = [f"C.slice({expr}, {axis}, {a}, {b})" for a, b in runs]
    return parts[0] if len(parts) == 1 else f"C.splice({', '.join(parts)}, axis={axis})"


@HANDLERS.register("Gather")
def emit_gather(ctx: EmitContext, node: Node) -> None:
    """A weight table read at runtime indices along axis 0: ``C.gather`` (indices come as
    floats, negative ones wrapped).  Weight indices into a runtime tensor: slices of
    the positions (:func:`take_expr`), reshaped to the IR's output shape."""
    x, idx_name = node.inputs[:2]
    rank = ctx.rank(x)
    axis = int(node.attr("axis")) % rank
    out = ctx.shape(node.outputs[0])
    idx = ctx.weight(idx_name)
    if idx is None:
        if not ctx.is_weight(x) or axis != 0:
            raise ctx.unsupported(node, "runtime indices need X to be a weight gathered along "
                                  "axis 0 (CNTK's gather)")
        size = ctx.shape(x)[0]
        i = ctx.ref(idx_name)
        wrapped = f"C.plus({i}, C.element_times(C.less({i}, 0), {size}))"
        ctx.assign(node, f"C.gather({ctx.const(x)}, {wrapped}, {ctx.name_kw(node)})",
                   batched=ctx.batched(idx_name))
        return
    cntk_axis = ctx.axis(x, axis)
    size = ctx.sample_shape(x)[cntk_axis]
    flat = [int(i) + size if int(i) < 0 else int(i) for i in idx.reshape(-1)]
    taken = take_expr(ctx.ref(x), cntk_axis, flat)
    target = out[1:] if ctx.batched(x) else out
    if idx.ndim == 1:
        ctx.assign(node, f"C.alias({taken}, {ctx.name_kw(node)})")
        return
    ctx.assign(node, f"C.reshape({taken}, {ints(target)}, {ctx.name_kw(node)})")  # type: ignore[arg-type]


@HANDLERS.register("Expand")
def emit_expand(ctx: EmitContext, node: Node) -> None:
    """X plus zeros of the output's sample shape: CNTK broadcasts like numpy over the
    sample and keeps the batch axis.  X's batch must stay X's leading axis.  With
    batch_like, the zeros come from that tensor (``zeros_like`` of its mean over the
    sample, reshaped to ones), so the result carries its batch axis."""
    x, like = node.inputs[0], node.input(1)
    out = ctx.shape(node.outputs[0])
    dtype = ctx.cntk_dtype(ctx.dtype(x))
    if like:
        if not ctx.batched(like) or ctx.batched(x):
            raise ctx.unsupported(node, "batch_like must carry the batch and X must not")
        sample = tuple(int(d) for d in out[1:])  # type: ignore[arg-type]
        static = f"C.constant(0.0, shape={ints(sample)}, dtype=np.{dtype})"
        xr = ctx.ref(x)
        if ctx.rank(x) == len(out):  # X's axis 0 (size 1) faces the batch: drop it
            xr = f"C.reshape({xr}, {ints(ctx.shape(x)[1:])})"  # type: ignore[arg-type]
        axes = tuple(range(len(ctx.sample_shape(like))))
        zeros = f"C.zeros_like(C.reduce_mean({ctx.ref(like)}, axis={literal(axes)}))" \
            if axes else f"C.zeros_like({ctx.ref(like)})"
        ones = ctx.let(f"C.reshape({zeros}, {ints((1,) * len(sample))})", "batch_zeros")
        ctx.assign(node, f"C.plus(C.plus({xr}, {static}), {ones}, {ctx.name_kw(node)})",
                   batched=True)
        return
    if ctx.batched(x) and ctx.rank(x) != len(out):
        raise ctx.unsupported(node, "a rank increase would move the batch axis")
    target = out[1:] if ctx.batched(x) else out
    zeros = f"C.constant(0.0, shape={ints(target)}, dtype=np.{dtype})"  # type: ignore[arg-type]
    ctx.assign(node, f"C.plus({ctx.ref(x)}, {zeros}, {ctx.name_kw(node)})")


@HANDLERS.register("Tile")
def emit_tile(ctx: EmitContext, node: Node) -> None:
    """Copies spliced along each repeated sample axis (the batch is not repeated)."""
    x = node.inputs[0]
    reps = [int(r) for r in node.attr("repeats")]
    expr = ctx.ref(x)
    repeated = [(ctx.axis(x, a), r) for a, r in enumerate(reps) if r != 1]
    if not repeated:
        ctx.assign(node, f"C.alias({expr}, {ctx.name_kw(node)})")
        return
    for k, (axis, r) in enumerate(repeated):
        call = f"C.splice({', '.join([expr] * r)}, axis={axis}"
        if k == len(repeated) - 1:
            ctx.assign(node, f"{call}, {ctx.name_kw(node)})")
        else:
            expr = ctx.let(call + ")", f"tile{axis}")
