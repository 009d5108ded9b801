"""MXNet's loop operator ``_foreach`` (``mx.sym.contrib.foreach``), for recurrent cells
the fused ``RNN`` operator cannot compute.

``_foreach`` runs a body symbol once per slice of its data inputs along axis 0 (time,
so the data is time-major), threading states, and stacks the body's step outputs along
axis 0; T may be dynamic.  The body is a symbol graph of its own, written inline as the
node's ``subgraphs`` (nnvm's JSON).  Its inputs are matched by position, in the order
MXNet's ``list_inputs`` gives them (:meth:`SymbolGraph.input_order`): the node's inputs
are the data, then the initial states, then the remaining (loop-invariant) inputs —
here parameters, read by the body under the same names — and ``in_data_locs``,
``in_state_locs``, ``remain_locs`` say where each sits among the body's inputs.
Outputs: the stacked step outputs, then the final states.

Two users: :mod:`.recurrent_loop` (cells the fused ``RNN`` op cannot compute) and IR
``Scan`` (:func:`emit_scan`), whose body nodes go through the same handlers as the top
graph (a :class:`_BodyContext` writing into the loop body).  Scan is batch-major and
``_foreach`` iterates axis 0, so each scan input and output crosses one
``SwapAxis(0, 1)``; a reverse Scan also ``reverse(axis=0)``s them (outputs stay at
their inputs' positions); a ``[1, ...]`` state is ``broadcast_like`` the batch first.
MXNet wants every body input read and no body output that is an input itself or a
second copy of another (the checks ``mx.sym.contrib.foreach`` makes): such outputs go
through ``identity``, and an unread input feeds an extra, ignored step output
(``shape_array``: no arithmetic on its values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mmconv.emitters.base import body_view, emit_all
from mmconv.emitters.mxnet.context import HANDLERS, EmitContext, Entry
from mmconv.emitters.mxnet.symbol import AttrValue, SymbolGraph, SymNode
from mmconv.errors import UnsupportedError
from mmconv.ir import usedef
from mmconv.ir.core import Graph, Node
from mmconv.ir.ops.loop import scan_layout


class Body:
    """A loop body under construction: its own nodes and names."""

    def __init__(self, prefix: str) -> None:
        self.graph = SymbolGraph()
        self.prefix = prefix
        self._names: set[str] = set()
        #: outer parameter entry -> the body's variable of the same name
        self.remains: dict[Entry, Entry] = {}

    def _name(self, hint: str) -> str:
        name, k = f"{self.prefix}/{hint}", 1
        while name in self._names:
            k += 1
            name = f"{self.prefix}/{hint}_{k}"
        self._names.add(name)
        return name

    def var(self, hint: str) -> Entry:
        """A per-step input (data slice or state)."""
        return (self.graph.add(SymNode("null", self._name(hint))), 0)

    def outer(self, ctx: EmitContext, entry: Entry) -> Entry:
        """Outer parameter ``entry`` as seen inside the body (a remaining input)."""
        if entry not in self.remains:
            name = ctx.sym.nodes[entry[0]].name
            self._names.add(name)
            self.remains[entry] = (self.graph.add(SymNode("null", name)), 0)
        return self.remains[entry]

    def op(self, op: str, inputs: Sequence[Entry], hint: str | None = None,
           **attrs: AttrValue) -> Entry:
        node = SymNode(op, self._name(hint or op), list(inputs),
                       {k: v for k, v in attrs.items() if v is not None})
        return (self.graph.add(node), 0)


def foreach(ctx: EmitContext, body: Body, data: Sequence[tuple[Entry, Entry]],
            states: Sequence[tuple[Entry, Entry]], outputs: Sequence[Entry],
            new_states: Sequence[Entry], hint: str = "loop") -> int:
    """A ``_foreach`` node: ``data`` and ``states`` pair an outer entry with the body
    variable standing for it; the body returns ``outputs`` (stacked) then ``new_states``.
    Returns the node's index (output i: ``(index, i)``)."""
    body.graph.heads = list(outputs) + list(new_states)
    order = body.graph.input_order()
    position = {idx: i for i, idx in enumerate(order)}
    remains = sorted(body.remains.items(), key=lambda kv: position[kv[1][0]])
    used = {v[0] for _, v in data} | {v[0] for _, v in states} | {v[0] for _, v in remains}
    if set(order) != used:
        raise AssertionError("a loop body input is neither data, state nor parameter")
    inputs = [e for e, _ in data] + [e for e, _ in states] + [e for e, _ in remains]
    n_out = len(outputs) + len(new_states)
    node = SymNode("_foreach", ctx.helper_name(hint), inputs,
                   {"num_args": len(inputs) + 1, "num_outputs": n_out,
                    "num_out_data": len(outputs),
                    "in_state_locs": tuple(position[v[0]] for _, v in states),
                    "in_data_locs": tuple(position[v[0]] for _, v in data),
                    "remain_locs": tuple(position[v[0]] for _, v in remains)},
                   n_out, [body.graph])
    return ctx.sym.add(node)


# -- IR Scan -------------------------------------------------------------------------------
class _BodyContext(EmitContext):
    """The context a Scan body's nodes are emitted in: symbol nodes go into the loop
    body; the outer weights it reads are parameters of the outer symbol (one variable
    per weight and layout, shared with the top graph's readers) that the body reads as
    remaining inputs of the same name.  Names are fresh in the whole model: a body value
    ``v`` becomes the node ``<scan node>/v``."""

    def __init__(self, outer: EmitContext, scan: Node, view: Graph, body: Body) -> None:
        super().__init__(view)
        self.outer, self.scan, self.loop_body = outer, scan, body
        self.sym = body.graph
        self._taken_names = outer._taken_names  # one name space for the whole model

    def value_node_name(self, out: str) -> str:
        return self.fresh(f"{self.scan.name}/{out}")

    def variable(self, name: str, array: np.ndarray | None = None, *, aux: bool = False
                 ) -> Entry:
        if array is None:
            raise AssertionError("a loop body's inputs are made by the Scan handler")
        return self.loop_body.outer(self.outer, self.outer.variable(name, array, aux=aux))

    def param(self, name: str, transform: Callable[[np.ndarray], np.ndarray] | None = None,
              layout: str = "ir", *, aux: bool = False) -> Entry:
        if self.outer.graph.weights.get(name) is self.graph.weights[name]:
            entry = self.outer.param(name, transform, layout, aux=aux)
            return self.loop_body.outer(self.outer, entry)
        # a weight of the body's own (a weights-only body node folded): named fresh
        key = (name, layout)
        if key not in self._vars:
            array = self.graph.weights[name]
            array = transform(array) if transform is not None else array
            self._vars[key] = self.variable(self.fresh(f"{self.scan.name}/{name}"), array,
                                            aux=aux)
        return self._vars[key]


def _body_outputs(ctx: _BodyContext, body: Body, heads: list[Entry]) -> list[Entry]:
    """``heads`` as ``_foreach`` takes them: an input of the body, or an entry already
    returned, through ``identity`` (MXNet's own foreach does the same)."""
    seen: set[Entry] = set()
    out = []
    for i, entry in enumerate(heads):
        if entry in seen or body.graph.nodes[entry[0]].op == "null":
            entry = ctx.op("identity", [entry], f"{ctx.scan.name}/out{i}")
        seen.add(entry)
        out.append(entry)
    return out


def _time_major(ctx: EmitContext, entry: Entry, reverse: bool, hint: str) -> Entry:
    """[N, T, ...] <-> [T, N, ...], reversed along time for a reverse Scan (the same
    two steps undo themselves, in the other order, on the way out)."""
    swapped = ctx.op("SwapAxis", [entry], f"{hint}_time_major", dim1=0, dim2=1)
    return ctx.op("reverse", [swapped], f"{hint}_reversed", axis=0) if reverse else swapped


@HANDLERS.register("Scan")
def emit_scan(ctx: EmitContext, node: Node) -> None:
    s, _, k = scan_layout(node)
    body_ir: Graph = node.attr("body")
    reverse = bool(node.attr("reverse"))
    xs = [ctx.input(x) for x in node.inputs[s:]]
    states = []
    for port in node.inputs[:s]:
        entry = ctx.input(port)
        if ctx.shape(port)[0] == 1:  # a constant initial state: broadcast to the batch
            entry = ctx.op("broadcast_like", [entry, xs[0]], f"{port}/batch",
                           lhs_axes=(0,), rhs_axes=(0,))
        states.append(entry)
    data = [_time_major(ctx, x, reverse, f"x{i}") for i, x in enumerate(xs)]

    view = body_view(ctx.graph, body_ir)
    body = Body(ctx.fresh(f"{node.name}/step"))
    sub = _BodyContext(ctx, node, view, body)
    bound = []
    for value in view.inputs:
        bound.append(body.var(value.name))
        ctx._taken_names.add(body.graph.nodes[bound[-1][0]].name)  # type: ignore[union-attr]
        sub.entries[value.name] = bound[-1]

    def stand_in(failed: Node) -> None:
        for out in failed.outputs:
            sub.entries[out] = body.var(f"{out}/unsupported")

    live = {n.name for n in usedef.live_nodes(view)}
    try:
        emit_all(sub, (n for n in view.nodes if n.name in live), "MXNet", on_error=stand_in)
    except UnsupportedError as exc:
        raise ctx.unsupported(node, f"its body: {exc}") from None
    heads = _body_outputs(sub, body, [sub.input(o) for o in view.outputs])
    new_states, outputs = heads[:s], heads[s:]
    # every body input must be read: an unread one feeds an extra step output, ignored
    read = set(SymbolGraph(body.graph.nodes, heads).input_order())
    body.remains = {k: v for k, v in body.remains.items() if v[0] in read}  # dead reads
    extra = [body.op("shape_array", [v], f"read_{i}") for i, v in enumerate(bound)
             if v[0] not in read]
    loop = foreach(ctx, body, list(zip(data, bound[s:], strict=True)),
                   list(zip(states, bound[:s], strict=True)), outputs + extra, new_states,
                   "loop")
    n_data = len(outputs) + len(extra)
    for j, out in enumerate(node.outputs[:s]):
        if out:
            ctx.op("identity", [(loop, n_data + j)], out=out)
    for j, out in enumerate(node.outputs[s:s + k]):
        if out:
            ys = (loop, j)
            if reverse:
                ys = ctx.op("reverse", [ys], f"y{j}_unreversed", axis=0)
            ctx.op("SwapAxis", [ys], out=out, dim1=0, dim2=1)
