"""IR ``Scan`` (the general recurrent loop) as ``keras.layers.RNN`` over a ``ScanCell``.

The body is written as its own functional ``keras.Model`` by the same handlers as the
top graph (a nested :class:`~.context.EmitContext` sharing the code, the weights file
and the identifiers) and handed to the custom :class:`~.cells.ScanCell`, whose config
nests the body's, so the ``.keras`` file holds the whole loop and the body's layers
train with the model.  ``keras.layers.RNN`` carries one sequence and states of one
axis: the scan inputs are flattened and concatenated into ``[N, T, sum F]``, the states
flattened to ``[N, F]`` (a ``[1, ...]`` state broadcast to the batch first), and the
cell reshapes them to the body's shapes; the step outputs come back concatenated and
are split and reshaped to ``[N, T, ...]``.  ``reverse=1`` is ``go_backwards``, whose
outputs Keras returns in processing order: they are flipped back to input positions.

Refused per node: non-batch dimensions that are not static (the flattening needs
them), values of different dtypes or integer ones (one sequence, float states),
a body whose step output is a weight.
"""

from __future__ import annotations

import math

from mmconv.emitters.base import body_view, emit_all
from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, identity
from mmconv.errors import UnsupportedError
from mmconv.ir.core import Graph, Node


def _static(ctx: EmitContext, node: Node, dims: tuple, what: str) -> list[int]:
    if any(d is None for d in dims):
        raise ctx.unsupported(node, f"{what} has dynamic non-batch dims {list(dims)}; the "
                              "Keras loop flattens each step value and needs them static")
    return [int(d) for d in dims]


def _flat(ctx: EmitContext, expr: str, shape: list[int], what: str, time: bool,
          dtype_kw: str) -> str:
    """``expr`` ([N, (T,) *shape]) as [N, (T,) F]: one feature axis."""
    if len(shape) == 1:
        return expr
    if not shape:
        return f"ops.expand_dims({expr}, -1)"
    ident = ctx.ident(what)
    target = (-1, math.prod(shape)) if time else (math.prod(shape),)
    ctx.line(f"{ident} = layers.Reshape({literal(target)}, name={literal(ident)}{dtype_kw})"
             f"({expr})")
    return ident


def _unflat(ctx: EmitContext, node: Node, index: int, expr: str, shape: list[int],
            time: bool) -> None:
    """Output ``index`` of ``node`` from its flattened form ``expr`` ([N, (T,) F])."""
    rank = len(shape) + (2 if time else 1)
    if len(shape) == 1:
        ctx.define(node, expr, identity(rank), index=index)
    elif not shape:
        ctx.define(node, f"{expr}[..., 0]", identity(rank), index=index)
    else:
        target = (-1, *shape) if time else tuple(shape)
        ctx.define(node, f"layers.Reshape({literal(target)}, name="
                         f"{literal(ctx.out(node, index))}{ctx.dtype_kw(node.outputs[index])})"
                         f"({expr})",
                   identity(rank), index=index)


def _emit_body(ctx: EmitContext, node: Node, body: Graph, shapes: list[list[int]]) -> str:
    """Write the body's functional model; returns its identifier."""
    sub = ctx.nested(body)
    inputs = []
    for value, shape in zip(body.inputs, shapes, strict=True):
        ident = sub.declare_input(value.name, identity(value.rank))
        ctx.line(f"{ident} = keras.Input(shape={literal(tuple(shape))}, "
                 f"dtype={literal(value.dtype)}, name={literal(ident)})")
        inputs.append(ident)
    try:
        emit_all(sub, body.nodes, "Keras", on_error=sub.stand_in)
    except UnsupportedError as exc:
        why = str(exc).removesuffix(f" ({ctx.target_note()})")
        raise ctx.unsupported(node, f"its body cannot be emitted: {why}") from exc
    outputs: list[str] = []
    for name in body.outputs:
        if sub.weight(name) is not None:
            raise ctx.unsupported(node, f"body output {name!r} is a weight, not a step value")
        expr = sub.plain(name)
        if expr in inputs or expr in outputs:  # a value passed through: a layer of its own
            ident = ctx.ident(f"{name}_out")
            ctx.line(f"{ident} = layers.Identity(name={literal(ident)}"
                     f"{ctx.dtype_kw(node.inputs[0])})({expr})")
            expr = ident
        outputs.append(expr)
    ctx.uses_cells = ctx.uses_cells or sub.uses_cells
    model = ctx.ident(f"{node.name}_body")
    ctx.line(f"{model} = keras.Model(inputs=[{', '.join(inputs)}], "
             f"outputs=[{', '.join(outputs)}], name={literal(model)})")
    for layer, keys in sub.layer_weights:
        arrays = ", ".join(f"weights[{literal(k)}]" for k in keys)
        ctx.line(f"{model}.get_layer({literal(layer)}).set_weights([{arrays}])")
    return model


@HANDLERS.register("Scan")
def emit_scan(ctx: EmitContext, node: Node) -> None:
    body: Graph = node.attr("body")
    count = int(node.attr("num_states"))
    xs = node.inputs[count:]
    dtype = ctx.dtype(xs[0])
    kinds = {ctx.dtype(v) for v in node.inputs} | {ctx.dtype(v) for v in node.outputs}
    if len(kinds) > 1 or not dtype.startswith("float"):
        raise ctx.unsupported(node, f"states and step values of dtypes {sorted(kinds)}; the "
                              "Keras loop carries one float dtype")
    if any(ctx.weight(x) is not None for x in xs):
        raise ctx.unsupported(node, "a scan input is a weight (it needs a batch axis)")
    states = [_static(ctx, node, ctx.shape(f)[1:], f"state {f!r}") for f in node.outputs[:count]]
    steps = [_static(ctx, node, ctx.shape(x)[2:], f"scan input {x!r}") for x in xs]
    outs = [_static(ctx, node, ctx.shape(y)[2:], f"scan output {y!r}")
            for y in node.outputs[count:]]
    model = _emit_body(ctx, node, body_view(ctx.graph, body), states + steps)

    # the scan inputs as one [N, T, F] sequence
    parts = [_flat(ctx, ctx.plain(x), shape, f"{x}_steps", True, ctx.dtype_kw(x))
             for x, shape in zip(xs, steps, strict=True)]
    seq = parts[0]
    if len(parts) > 1:
        seq = ctx.ident(f"{node.name}_sequence")
        ctx.line(f"{seq} = ops.concatenate([{', '.join(parts)}], axis=-1)")
    batch = ctx.ident(f"{node.name}_batch_zeros")  # [N, 1]: broadcasts a [1, F] state
    ctx.line(f"{batch} = ops.zeros_like({seq}[:, 0, :1])")
    init = []
    for s, shape in zip(node.inputs[:count], states, strict=True):
        array = ctx.weight(s)
        if array is not None:
            expr = ctx.const(array.reshape(array.shape[0], math.prod(shape)), "state")
        else:
            expr = _flat(ctx, ctx.plain(s), shape, f"{s}_flat", False, ctx.dtype_kw(s))
        # a [1, ...] state (or one whose batch is unknown here) is broadcast to the batch;
        # zeros [N, 1] first: ops.add(x1, x2) bias_adds when x2 looks like a bias of x1
        init.append(f"ops.add({batch}, {expr})"
                    if array is not None or ctx.shape(s)[0] in (None, 1) else expr)
    if not init:  # Keras needs a state: one zero column the cell carries unchanged
        init.append(batch)
    res = ctx.ident(f"{node.name}_results")
    name = ctx.ident(f"{node.name}_scan")
    back = ", go_backwards=True" if node.attr("reverse") else ""
    cell = (f"ScanCell({model}, {literal(states)}, {literal(steps)}, {literal(outs)}"
            f"{ctx.dtype_kw(xs[0])})")
    states_in = ", ".join(init)
    ctx.line(f"{res} = layers.RNN({cell}, return_sequences=True, return_state=True{back}, "
             f"name={literal(name)}{ctx.dtype_kw(xs[0])})({seq}, initial_state=[{states_in}])")
    ctx.uses_cells = True
    for i, shape in enumerate(states):
        _unflat(ctx, node, i, f"{res}[{1 + i}]", shape, False)
    ys = f"{res}[0]"
    if node.attr("reverse") and outs:  # Keras returns a backwards run in processing order
        ys = ctx.ident(f"{node.name}_outputs")
        ctx.line(f"{ys} = ops.flip({res}[0], axis=1)")
    start = 0
    for j, shape in enumerate(outs):
        size = math.prod(shape)
        part = ys if len(outs) == 1 else f"{ys}[:, :, {start}:{start + size}]"
        _unflat(ctx, node, count + j, part, shape, True)
        start += size
