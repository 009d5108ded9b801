"""Scan: one ONNX ``Scan`` node (opset >= 9) whose body is emitted by the same handlers.

The IR's Scan is batch-major, so the ONNX node scans axis 1 of its inputs and stacks
axis 1 of its outputs (``scan_input_axes`` / ``scan_output_axes`` = 1): no Transpose.
A reverse loop reads its scan inputs back to front and prepends its outputs
(``scan_*_directions`` = 1), which keeps y[:, t] at the position of x[:, t] as the IR
says.  A [1, ...] initial state is expanded to the batch first (ONNX carries a state in
one shape through every iteration).

The body's nodes go through the handlers of the top graph into a sub-GraphProto.  Its
own values are renamed ``<scan node>/<name>`` (fresh in the whole model, so no body
name shadows an outer one); the outer weights it reads keep their names and are
read from the outer scope, where they are initializers of the main graph.
"""

from __future__ import annotations

import numpy as np
from onnx import GraphProto, ValueInfoProto, helper

from mmconv.emitters.base import emit_all
from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.errors import UnsupportedError
from mmconv.ir.core import Graph, Node, Value
from mmconv.ir.ops.loop import scan_layout
from mmconv.ir.usedef import outer_reads


class _BodyContext(EmitContext):
    """The context of a body: its graph is the renamed body with the outer weights it
    reads as weights; names are shared with the outer context.  An outer weight is
    never stored in another layout for a body (other readers may need its IR form)."""

    def uses(self, name: str) -> int:
        return max(2, super().uses(name)) if name in self.graph.weights else super().uses(name)


def _body_view(ctx: EmitContext, node: Node, body: Graph) -> Graph:
    """``body`` with every value it defines renamed fresh and the outer weights it reads
    as its weights (what the handlers need to see)."""
    own = [v.name for v in body.inputs] + [o for n in body.nodes for o in n.outputs]
    names = {name: ctx.fresh(f"{node.name}/{name}") for name in own}
    view = Graph(body.name)
    view.inputs = [Value(names[v.name], v.dtype, v.shape) for v in body.inputs]
    view.nodes = [Node(n.name, n.op, [names.get(i, i) for i in n.inputs],
                       [names[o] for o in n.outputs], dict(n.attrs)) for n in body.nodes]
    view.outputs = [names[o] for o in body.outputs]
    view.values = {names.get(k, k): Value(names.get(k, k), v.dtype, v.shape)
                   for k, v in body.values.items()}
    view.weights = {k: ctx.graph.weights[k] for k in outer_reads(node)}
    return view


def _info(value: Value) -> ValueInfoProto:
    """A body input or output: its dtype and shape, dynamic axes unnamed."""
    return helper.make_tensor_value_info(
        value.name, helper.np_dtype_to_tensor_dtype(np.dtype(value.dtype)), list(value.shape))


def _body_graph(ctx: EmitContext, node: Node, body: Graph) -> GraphProto:
    """The ONNX GraphProto of ``body``: its nodes through the handlers, constants the
    handlers make as its initializers, and each output a distinct name no input has."""
    view = _body_view(ctx, node, body)
    sub = _BodyContext(view, ctx.opset)
    sub._taken_names = ctx._taken_names  # one name space for the whole model
    sub._node_names = ctx._node_names
    try:
        emit_all(sub, view.nodes, "ONNX")
    except UnsupportedError as exc:
        raise ctx.unsupported(node, f"its body cannot be emitted: {exc}") from None
    assert not sub.reshaped_weights
    outputs, seen = [], {v.name for v in view.inputs}
    for name in view.outputs:
        if name in seen:  # a state passed through, or one value as two outputs
            copy = ctx.fresh(f"{name}/out")
            sub.nodes.append(helper.make_node("Identity", [name], [copy], name=copy))
            name = copy
        seen.add(name)
        outputs.append(name)
    graph = helper.make_graph(
        sub.nodes, f"{node.name}/body", [_info(v) for v in view.inputs],
        [_info(Value(o, view.value(v).dtype, view.value(v).shape))
         for o, v in zip(outputs, view.outputs, strict=True)],
        initializer=sub.constants)
    return graph


def _batch_shape(ctx: EmitContext, x: str, rank: int) -> str:
    """[N, 1, ..., 1] (``rank`` long) with N the batch of ``x``: Expand broadcasts the
    state's other axes."""
    n = ctx.shape(x)[0]
    if n is not None:
        return ctx.int64s([n] + [1] * (rank - 1), "batch_shape")
    batch = ctx.add("Gather", [ctx.add("Shape", [x])[0], ctx.int64s([0], "batch_axis")],
                    axis=0)[0]
    if rank == 1:
        return batch
    return ctx.add("Concat", [batch, ctx.int64s([1] * (rank - 1), "ones")], axis=0)[0]


@HANDLERS.register("Scan")
def emit_scan(ctx: EmitContext, node: Node) -> None:
    ctx.require(node, 9)
    s, m, k = scan_layout(node)
    body: Graph = node.attr("body")
    states = list(node.inputs[:s])
    xs = list(node.inputs[s:])
    for i, st in enumerate(states):
        shape = ctx.shape(st)
        if shape[0] == 1 and ctx.shape(xs[0])[0] != 1:
            states[i] = ctx.add("Expand", [st, _batch_shape(ctx, xs[0], len(shape))])[0]
    graph = _body_graph(ctx, node, body)
    reverse = int(node.attr("reverse"))
    ctx.add("Scan", [*states, *xs], node.outputs, name=node.name, body=graph,
            num_scan_inputs=m, scan_input_axes=[1] * m,
            scan_output_axes=[1] * k if k else None,
            scan_input_directions=[1] * m if reverse else None,
            scan_output_directions=[1] * k if reverse and k else None)
