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
"""

from __future__ import annotations

from collections.abc import Sequence

from mmconv.emitters.mxnet.context import EmitContext, Entry
from mmconv.emitters.mxnet.symbol import AttrValue, SymbolGraph, SymNode


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
