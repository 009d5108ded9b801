"""IR ``Scan`` (the general recurrent loop) as a CNTK recurrence closed by a delay.

CNTK has no loop op: a recurrence is a graph with a cycle through
``sequence.past_value`` (``future_value`` running backwards), which is how
``cntk.layers.Recurrence``/``RecurrenceFrom`` build theirs.  The Scan is written
the same way, inline in ``KitModel``:

- each state is a ``C.placeholder`` (sample shape, the scan inputs' dynamic axes)
  delayed by one step, with the state input as ``initial_state``: a ``[1, ...]``
  state (a weight, or a batch-less value) as CNTK's constant initial state, a
  computed ``[N, ...]`` one (``RecurrenceFrom``'s case) broadcast along the sequence;
- a state the body returns unchanged is no loop (CNTK refuses a delay of itself): the
  initial value broadcast along the sequence;
- the scan inputs are CNTK sequences: a sequence value as is, a static ``[N, T, ...]``
  through ``to_sequence`` (the others ``to_sequence_like`` the first, so all share one
  sequence axis);
- the body's nodes are emitted by the same handlers as the top graph (a nested
  :class:`~.context.EmitContext`), its state inputs bound to the delayed
  placeholders and its step inputs to the sequences: every body value is a per-step
  value of the sequence;
- the loop is closed by rebinding each delay's placeholder to the body's new state
  (``ForwardDeclaration.resolve_to``);
- final states are the new state at the last step (``sequence.last``; ``first``
  when reverse); the step outputs are sequences, unpacked back to ``[N, T, ...]``
  (``sequence.unpack``) when the scan inputs had a static time axis, as
  :mod:`.recurrent` does.
"""

from __future__ import annotations

from mmconv.emitters.base import body_view, emit_all
from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.codegen import literal
from mmconv.errors import UnsupportedError
from mmconv.ir.core import Graph, Node


def _sequences(ctx: EmitContext, node: Node, scans: list[str]) -> tuple[list[str], bool]:
    """The scan inputs as CNTK sequences sharing one sequence axis; whether their time
    axis was static (then the step outputs are unpacked back)."""
    anchor = next((ctx.ref(x) for x in scans if x in ctx.sequence), None)
    static_time = anchor is None
    seqs = []
    for x in scans:
        if x in ctx.sequence:
            seqs.append(ctx.ref(x))
            continue
        if not ctx.batched(x) or ctx.rank(x) < 2 or ctx.shape(x)[1] is None:
            raise ctx.unsupported(node, f"scan input {x!r} {list(ctx.shape(x))} must be "
                                  "[N, T, ...] with the batch (or a CNTK sequence)")
        ref = ctx.ref(x)
        if ctx.rank(x) == 2:  # a scalar per step: CNTK makes sequences of rank >= 1 only
            ref = f"C.reshape({ref}, {ints((ctx.sample_shape(x)[0], 1))})"
        if anchor is None:
            seq = anchor = ctx.let(f"C.to_sequence({ref})", "sequence")
        else:
            seq = ctx.let(f"C.to_sequence_like({ref}, {anchor})", "sequence")
        seqs.append(ctx.let(f"C.reshape({seq}, ())", "step") if ctx.rank(x) == 2 else seq)
    return seqs, static_time


def _initial_state(ctx: EmitContext, node: Node, port: str, sample: tuple[int, ...],
                   seq: str) -> str:
    """The delay's ``initial_state`` for state input ``port`` (sample shape ``sample``).

    A computed ``[N, ...]`` state is broadcast along the sequence ``seq`` first (the
    delay then reads its first/last step, the value itself): a batch-only initial
    state fails in CNTK 2.7 ("FrameRange's dynamic axis is inconsistent with data")
    whenever it is the Function's first argument."""
    if port in ctx.sequence:
        raise ctx.unsupported(node, f"initial state {port!r} is a sequence")
    if ctx.batched(port):
        return f"C.sequence.broadcast_as({ctx.ref(port)}, {seq})"
    shape = ctx.shape(port)
    if not shape or shape[0] != 1:
        raise ctx.unsupported(node, f"initial state {port!r} {list(shape)} has no batch axis "
                              "and is not [1, ...]")
    if ctx.is_weight(port):  # CNTK's constant initial_state
        return ctx.const(port, lambda a: a.reshape(sample), "initial_state")
    return f"C.reshape({ctx.ref(port)}, {ints(sample)})"


def _emit_body(ctx: EmitContext, node: Node, body: Graph, bound: list[str]) -> list[str]:
    """Emit the body's nodes with its inputs bound to ``bound``; its outputs' expressions."""
    child = ctx.nested(body_view(ctx.graph, body))
    for value, ident in zip(body.inputs, bound, strict=True):
        child.bind(value.name, ident)
    try:
        emit_all(child, body.nodes, "CNTK", on_error=child.stand_in)
    except UnsupportedError as exc:
        raise ctx.unsupported(node, f"its body: {exc}") from None
    outs = []
    for out in body.outputs:
        if child.is_weight(out) and out not in {v.name for v in body.inputs}:
            raise ctx.unsupported(node, f"body output {out!r} is a weight, not a per-step value")
        outs.append(child.ref(out))
    return outs


@HANDLERS.register("Scan")
def emit_scan(ctx: EmitContext, node: Node) -> None:
    if ctx.in_loop:
        raise ctx.unsupported(node, "a Scan inside a Scan body (nested loops) is not written")
    body: Graph = node.attr("body")
    num_states = int(node.attr("num_states"))
    reverse = bool(node.attr("reverse"))
    states, scans = node.inputs[:num_states], node.inputs[num_states:]
    seqs, static_time = _sequences(ctx, node, scans)
    delay = "C.sequence.future_value" if reverse else "C.sequence.past_value"
    holders, delayed = [], []
    for i, (port, value) in enumerate(zip(states, body.inputs, strict=False)):
        if any(d is None for d in value.shape[1:]):
            raise ctx.unsupported(node, f"body state {value.name!r} {list(value.shape)} "
                                  "has a dynamic axis other than the batch")
        sample = tuple(int(d) for d in value.shape[1:])  # type: ignore[arg-type]
        init = _initial_state(ctx, node, port, sample, seqs[0])
        if body.outputs[i] == value.name:
            # returned unchanged (an outer value the body reads at every step): no
            # loop, the value itself at every step (CNTK refuses a delay of itself)
            if not ctx.batched(port):  # a constant: made a sequence value too
                init = f"C.sequence.broadcast_as({init}, {seqs[0]})"
            holders.append("")
            delayed.append(ctx.let(init, f"state{i}"))
            continue
        holder = ctx.let(f"C.placeholder(shape={ints(sample)}, dynamic_axes={seqs[0]}"
                         f".dynamic_axes, name={literal(value.name)})", f"state{i}")
        holders.append(holder)
        delayed.append(ctx.let(f"{delay}({holder}, initial_state={init})", f"prev{i}"))
    outs = _emit_body(ctx, node, body, delayed + seqs)
    for prev, holder, new in zip(delayed, holders, outs, strict=False):
        if holder:
            ctx.helpers.add("_close_loop")
            ctx.lines.append(f"_close_loop({prev}, {holder}, {new})")
    pick = "C.sequence.first" if reverse else "C.sequence.last"
    for out, new in zip(node.outputs[:num_states], outs, strict=False):
        if out:
            ctx.assign(node, f"{pick}({new}, {ctx.name_kw(node, out)})", out=out,
                       batched=True, sequence=False)
    for out, new in zip(node.outputs[num_states:], outs[num_states:], strict=False):
        if not out:
            continue
        if static_time:
            ctx.assign(node, f"C.sequence.unpack({new}, 0, no_mask_output=True, "
                       f"{ctx.name_kw(node, out)})", out=out, batched=True, sequence=False)
        elif new in delayed:
            # the previous step's state itself: CNTK 2.7 fails to evaluate an alias of a
            # delay inside a loop ("_Map_base::at"); a reshape to its own shape runs
            shape = ints(ctx.shape(out)[2:])  # type: ignore[arg-type]
            ctx.assign(node, f"C.reshape({new}, {shape}, {ctx.name_kw(node, out)})", out=out,
                       batched=True, sequence=True)
        else:
            ctx.assign(node, f"C.alias({new}, {ctx.name_kw(node, out)})", out=out,
                       batched=True, sequence=True)
