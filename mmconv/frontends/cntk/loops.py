"""A CNTK loop that is no recognised cell, described as the parts of an IR ``Scan``.

CNTK writes every recurrence as primitives closed by ``PastValue``/``FutureValue``.
:mod:`.recurrence` turns the loops that are cntk.layers cells into IR LSTM/GRU/RNN
nodes; every other delay -- a hand-written loop, a cell CNTK's layers add something
to (a projection, self-stabilisation, a constant initial state), a running sum, or a
lone delay with no cycle (``x + future_value(x)``, a one-step shift) -- is described
here as one synthetic function (op :data:`LOOP_OP`) holding a :class:`Loop`, which
:mod:`.converters.loop` turns into an IR ``Scan`` whose body is built from the same
per-op converters as the rest of the model.

The mapping (docs/recurrent.md, "CNTK source"): each delay is one state of the scan.
Inside the body, the delay's output is the state as the previous step left it, and
the value the delay reads (its first input) is the new state; its second input is
the initial state.  A lone delay is the same thing with the body an identity: its
state is ``x_t`` and its step output the state it was given (``x_{t-1}`` for a
PastValue, ``x_{t+1}`` for a FutureValue, the initial state at the edge).
PastValue loops run forward, FutureValue loops backwards (``reverse``).
A delay of k > 1 steps (``time_step=k``, attribute ``offset``) keeps the last k values:
its state is ``[batch, k, ...]``, its output ``state[:, 0]`` (the value k steps away,
or the initial value for the first k steps, as CNTK fills them) and its new state
``concat(state[:, 1:], x_t[:, None])``; its initial state is the initial value k times.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmconv.frontends.cntk.model import DELAY_OPS, Function, Model

#: The synthetic op a loop becomes (attribute ``loop``: a :class:`Loop`).
LOOP_OP = "mmconv.Loop"
#: CNTK's op giving a value another operand's dynamic axes; inside a loop, where both
#: operands step together, an identity of its first input (the second is layout only).
RECONCILE = "ReconcileDynamicAxis"


class LoopError(Exception):
    """The loop cannot be a Scan (the message says why, for the one-line refusal)."""


@dataclass
class Loop:
    """One recurrence as the parts of a Scan (uids of the CNTK model)."""

    #: The loop's functions but the delays, in the model's (topological) order.
    functions: list[Function]
    #: The delays: one scan state each.
    delays: list[Function]
    #: True for FutureValue loops (the scan runs t = T-1 .. 0).
    reverse: bool
    #: Loop values read outside the loop: the scan outputs, in order.
    outputs: list[str]
    #: Outside values the body reads (neither parameters nor constants), in order.
    reads: list[str]
    #: Computed initial states (RecurrenceFrom-style; constants are read from the model).
    initial: list[str]
    #: Outside values only a ReconcileDynamicAxis reads (for their sequence axis).
    layout: list[str]
    #: The name shown for the loop (its Recurrence's or a function's).
    label: str


def _is_weight(model: Model, uid: str) -> bool:
    var = model.variables.get(uid)
    return var is not None and var.kind in ("parameter", "constant")


def describe(model: Model, uids: set[str], used_outside: set[str], label: str) -> Loop:
    """The :class:`Loop` of the functions ``uids`` (a strongly connected set through
    delays, or one lone delay); ``used_outside`` are the values other functions (or the
    model's outputs) read.  Raises :class:`LoopError` for what a Scan cannot say."""
    fns = [f for f in model.functions if f.uid in uids]
    delays = [f for f in fns if f.op in DELAY_OPS]
    if not delays:
        raise LoopError("a loop without a delay")
    if len({d.op for d in delays}) > 1:
        raise LoopError("a loop mixing PastValue and FutureValue")
    for d in delays:
        offset = int(d.attrs.get("offset", 1))
        if offset < 1:
            raise LoopError(f"a delay of {offset} steps (offset < 1)")
        if not d.inputs or len(d.inputs) > 2 or len(d.outputs) != 1:
            raise LoopError(f"a delay with {len(d.inputs)} inputs")
    produced = {o for f in fns for o in f.outputs}
    reads: list[str] = []
    layout: list[str] = []

    def read(uid: str) -> None:
        if uid and uid not in produced and not _is_weight(model, uid) and uid not in reads:
            reads.append(uid)

    body = [f for f in fns if f.op not in DELAY_OPS]
    for f in body:
        if f.op == RECONCILE:
            read(f.inputs[0] if f.inputs else "")
            layout.extend(i for i in f.inputs[1:] if i not in produced and i not in layout)
        else:
            for i in f.inputs:
                read(i)
    initial: list[str] = []
    for d in delays:
        read(d.inputs[0])  # a lone delay's new state is an outside value
        if len(d.inputs) > 1:
            if d.inputs[1] in produced:
                raise LoopError("an initial state computed inside its own loop")
            if not _is_weight(model, d.inputs[1]) and d.inputs[1] not in initial:
                initial.append(d.inputs[1])
    outputs = [o for f in fns for o in f.outputs if o in used_outside]
    if not outputs:
        raise LoopError("a loop whose values nothing reads")
    return Loop(body, delays, delays[0].op == "FutureValue", outputs, reads, initial,
                [u for u in layout if u not in reads], label)


def loop_function(loop: Loop, uid: str, blocks: tuple) -> Function:
    """The synthetic function standing for ``loop`` in the model (inputs: every outside
    value it reads, so the functions computing them are kept and run first)."""
    return Function(uid=uid, name="", op=LOOP_OP, inputs=[*loop.reads, *loop.initial, *loop.layout],
                    outputs=list(loop.outputs), attrs={"loop": loop, "label": loop.label},
                    blocks=blocks)
