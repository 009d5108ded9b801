"""A CNTK loop (:class:`~.loops.Loop`) as one IR ``Scan`` node whose body is a Graph.

The body is built by the **same** per-op converters as the rest of the model, run on
per-step values: inside the loop every value is ``[batch, *sample]`` (no time axis),
which the converters already handle as CNTK's plain batched values.  What differs is
the context (:class:`BodyContext`): nodes go to the body graph, while weights -- the
parameters the body reads and whatever folds from them -- stay in the outer graph,
where the body reads them by name (the IR ``Scan`` contract, TEAM/docs).

A CNTK file does not record the shapes of computed values, and a delay's shape is
that of the value it reads, which is computed from the delay itself.  So the state
shapes are found the way CNTK infers them, as a fixed point: guess each state's
sample shape (from a computed or vector initial state, the weight of a product the
state feeds, else a scalar), convert the body on a throw-away copy of the context,
take the shapes the new states come out with, and repeat until they agree.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mmconv.errors import MmconvError, UnsupportedError
from mmconv.frontends.cntk.builder import Context, Unit, run_unit, units_of
from mmconv.frontends.cntk.loops import RECONCILE, Loop
from mmconv.ir.core import Graph, Node, Shape, Value

if TYPE_CHECKING:
    from mmconv.frontends.cntk.model import Function

#: Rounds of the state-shape fixed point before trying the candidate shapes.
_ROUNDS = 4
#: At most this many combinations of candidate state shapes are tried.
_MAX_TRIALS = 64
#: Ops a state passes through unchanged in shape on its way to a product.
_SAME_SHAPE = frozenset({RECONCILE, "NoOp", "StopGradient", "Pass", "Dropout", "ElementTimes"})


class _BodyGraph(Graph):
    """A body under construction: names unique in the outer graph too, and never one of
    ``reserved`` (the Scan's output names), so a body value never shadows an outer
    weight the body reads."""

    def __init__(self, name: str, outer: Graph, reserved: set[str]) -> None:
        super().__init__(name)
        self.outer = outer
        self.reserved = reserved

    def unique_name(self, base: str) -> str:
        name, i = base, 0
        while (name in self._names or name in self.reserved
               or self.outer.unique_name(name) != name):
            i += 1
            name = f"{base}_{i}"
        return name


class BodyContext(Context):
    """A :class:`Context` building a Scan body: nodes in the body, weights outside."""

    def __init__(self, outer: Context, name: str, reserved: set[str]) -> None:
        super().__init__(outer.model, _BodyGraph(name, outer.graph, reserved))
        self.outer = outer
        # values folded into weights outside (computed from parameters alone) read as such
        self.values = {u: n for u, n in outer.values.items() if outer.is_constant(n)}

    # weights: the outer graph's
    def is_constant(self, name: str) -> bool:
        return self.outer.is_constant(name)

    def constant_array(self, name: str) -> np.ndarray:
        return self.outer.constant_array(name)

    def constant(self, name: str, array: np.ndarray) -> str:
        return self.outer.constant(name, array)

    def cached_weight(self, source: str, layer: str, param: str, array: object,
                      key: str = "") -> str:
        return self.outer.cached_weight(source, layer, param, array, key)  # type: ignore[arg-type]

    def try_fold(self, op: str, inputs: Sequence[str], name: str, attrs: dict) -> str | None:
        return self.outer.try_fold(op, inputs, name, attrs)

    def _value(self, name: str) -> Value:
        found = self.graph.values.get(name)
        return found if found is not None else self.outer.graph.value(name)

    def shape(self, name: str) -> Shape:
        return self._value(name).shape

    def dtype(self, name: str) -> str:
        return self._value(name).dtype

    def add_node(self, op: str, inputs: Sequence[str], name: str,
                 outputs: Sequence[str] | None = None, **attrs: object) -> Node:
        for i in inputs:  # shape inference looks the body's inputs up in its own values
            if i and i not in self.graph.values:
                self.graph.values[i] = self._value(i)
        return super().add_node(op, inputs, name, outputs, **attrs)

    def graph_of(self, outputs: list[str]) -> Graph:
        """The finished body: a plain Graph of its own inputs, nodes and values."""
        g = Graph(self.graph.name)
        g.inputs = list(self.graph.inputs)
        g.nodes = list(self.graph.nodes)
        g.outputs = list(outputs)
        own = {v.name for v in g.inputs} | {o for n in g.nodes for o in n.outputs}
        g.values = {k: v for k, v in self.graph.values.items() if k in own}
        g.rebuild_names()
        return g


def _fail(ctx: Context, unit: Unit, what: str) -> UnsupportedError:
    return UnsupportedError(f"{ctx.model.path}: PastValue/FutureValue loop "
                            f"{unit.attrs.get('label')!r}: {what}")


def convert_loop(ctx: Context, unit: Unit) -> None:
    """The :data:`~.loops.LOOP_OP` function -> one IR ``Scan`` (see the module docstring)."""
    loop: Loop = unit.attrs["loop"]
    label = str(unit.attrs.get("label") or "loop")
    steps: list[str] = []  # outside sequences: scan inputs
    held: list[str] = []  # outside per-sequence values: states the body passes on
    for uid in loop.reads:
        v = ctx.input(uid, unit, label)
        if ctx.is_constant(v):
            continue  # the body reads the weight by name
        if ctx.is_sequence(v):
            steps.append(uid)
        elif ctx.batched(v):
            held.append(uid)
        else:
            raise _fail(ctx, unit, f"it reads {v!r}, a value without a batch axis")
    if not steps:  # the time axis comes from a ReconcileDynamicAxis operand only
        steps = [u for u in loop.layout if ctx.is_sequence(ctx.input(u, unit, label))][:1]
    if not steps:
        raise _fail(ctx, unit, "it runs over no sequence")
    shapes = _state_shapes(ctx, unit, loop, steps, held)
    dtype = ctx.dtype(ctx.values[steps[0]])
    inits = [_initial(ctx, unit, d, shapes[i], dtype, f"{label}/initial{i}")
             for i, d in enumerate(loop.delays)]
    # the loop's values keep the names the user gave them (``elman``); the node and its
    # final states are named after the loop
    taken: set[str] = set()
    ys = [fresh_name(ctx.graph, _output_name(loop, uid, label, k), taken)
          for k, uid in enumerate(loop.outputs)]
    name = fresh_name(ctx.graph, f"{label}/scan", taken)
    finals = [fresh_name(ctx.graph, f"{label}/final{i}", taken)
              for i in range(len(loop.delays) + len(held))]
    body = _body(ctx, unit, loop, shapes, steps, held, label, taken)[0]
    node = ctx.add_node("Scan", [*inits, *(ctx.values[u] for u in held),
                                 *(ctx.values[u] for u in steps)],
                        name, outputs=[*finals, *ys], body=body,
                        num_states=len(finals), reverse=int(loop.reverse))
    ctx.batched_values.update(node.outputs)
    ctx.sequence_values.update(ys)
    for uid, y in zip(loop.outputs, ys, strict=True):
        ctx.values[uid] = y


def fresh_name(graph: Graph, base: str, taken: set[str]) -> str:
    """A name from ``base`` that neither ``graph`` nor ``taken`` (the names the body being
    built claims) has; claimed in ``taken``."""
    name, i = graph.unique_name(base), 0
    while name in taken:
        i += 1
        name = graph.unique_name(f"{base}_{i}")
    taken.add(name)
    return name


def _output_name(loop: Loop, uid: str, label: str, k: int) -> str:
    """A loop value's own name (``elman``) when the user gave it one."""
    for f in [*loop.functions, *loop.delays]:
        if uid in f.outputs and f.name and not f.name.startswith("_"):
            return f.name
    return f"{label}/y{k}"


def _initial(ctx: Context, unit: Unit, d: Function, shape: tuple[int, ...], dtype: str,
             name: str) -> str:
    """The delay's initial state: a [1, *shape] constant (zeros when none is given, CNTK's
    ``initial_state=`` scalar or array broadcast to the state), or a computed
    ``[batch, *shape]`` value (``RecurrenceFrom``); for a delay of k > 1 steps that value
    k times (``[1 or batch, k, *shape]``: CNTK gives the first k steps the initial value)."""
    uid = d.inputs[1] if len(d.inputs) > 1 else ""
    if uid and not ctx.is_weight(uid):
        v = ctx.values[uid]
        if ctx.is_sequence(v) or not ctx.batched(v) or tuple(ctx.shape(v)[1:]) != shape:
            raise _fail(ctx, unit, f"an initial state of shape {list(ctx.shape(v))} for a "
                        f"state of shape [batch, {', '.join(map(str, shape))}]")
        k = _offset(d)
        if k > 1:  # the initial value k times: [batch, k, *shape]
            one = ctx.add("Reshape", [v], ctx.graph.unique_name(f"{name}/one"),
                          shape=(0, 1, *shape))
            v = ctx.add("Concat", [one] * k, ctx.graph.unique_name(name), axis=1)
        return v
    arr = np.asarray(ctx.array(uid)) if uid else np.zeros((), dtype)
    try:
        full = (np.full(shape, arr.reshape(-1)[0]) if arr.size == 1
                else np.broadcast_to(arr, shape))
    except ValueError:
        raise _fail(ctx, unit, f"an initial state of shape {list(arr.shape)} for a state "
                    f"of shape {list(shape)}") from None
    full = np.ascontiguousarray(full, dtype=dtype).reshape(1, *shape)
    k = _offset(d)
    return ctx.constant(name, np.repeat(full[:, None], k, axis=1) if k > 1 else full)


def _body(ctx: Context, unit: Unit, loop: Loop, shapes: list[tuple[int, ...]],
          steps: list[str], held: list[str], name: str,
          reserved: set[str]) -> tuple[Graph, list[tuple[int, ...]]]:
    """The body graph for the given state shapes, and the shapes its new states have."""
    body = BodyContext(ctx, f"{name}/body", reserved)
    g = body.graph
    dtype = ctx.dtype(ctx.values[steps[0]])

    def declare(uid: str, base: str, shape: Sequence[int | None], dt: str) -> str:
        v = g.unique_name(base)
        g.add_input(v, dt, (None, *shape))
        body.batched_values.add(v)
        body.values[uid] = v
        return v

    for i, d in enumerate(loop.delays):
        k = _offset(d)
        state = declare(d.outputs[0], f"{name}/state{i}", (k, *shapes[i]) if k > 1 else shapes[i],
                        dtype)
        if k > 1:  # the delay's output: the oldest of the k values held
            first = body.add("Slice", [state], g.unique_name(f"{state}/first"), starts=(0,),
                             ends=(1,), axes=(1,))
            body.values[d.outputs[0]] = body.add("Reshape", [first],
                                                 g.unique_name(f"{state}/oldest"),
                                                 shape=(0, *shapes[i]))
    for uid in held:
        v = ctx.values[uid]
        declare(uid, f"{v}/held", ctx.shape(v)[1:], ctx.dtype(v))
    for uid in steps:
        v = ctx.values[uid]
        declare(uid, f"{v}/t", ctx.shape(v)[2:], ctx.dtype(v))
    for u in units_of(ctx.model, loop.functions):
        if u.block is None and u.function.op == RECONCILE:
            _reconcile(body, u)
        else:
            run_unit(body, u)
    outs = []
    for uid in [*(d.inputs[0] for d in loop.delays), *held, *loop.outputs]:
        v = body.values.get(uid)
        if v is None:
            raise _fail(ctx, unit, f"its value {uid!r} was not computed")
        if body.is_constant(v):
            raise _fail(ctx, unit, f"its value {uid!r} is a constant")
        # a body input or one value twice may be an output: a state passed on unchanged
        # is written so, which the emitters recognise (CNTK's cannot delay it)
        outs.append(v)
    new = [tuple(body.shape(v)[1:]) for v in outs[: len(loop.delays)]]
    for i, d in enumerate(loop.delays):
        k = _offset(d)
        if k > 1 and new[i] == tuple(shapes[i]):  # the k values held, shifted by one
            state = g.inputs[i].name
            rest = body.add("Slice", [state], g.unique_name(f"{state}/rest"), starts=(1,),
                            ends=(k,), axes=(1,))
            step = body.add("Reshape", [outs[i]], g.unique_name(f"{state}/newest"),
                            shape=(0, 1, *shapes[i]))
            outs[i] = body.add("Concat", [rest, step], g.unique_name(f"{state}/next"), axis=1)
    return body.graph_of(outs), new  # type: ignore[return-value]


def _offset(d: Function) -> int:
    """How many steps the delay reaches back (or ahead): CNTK's ``time_step``."""
    return int(d.attrs.get("offset", 1))


def _reconcile(body: BodyContext, unit: Unit) -> None:
    """``ReconcileDynamicAxis(x, like)`` inside a loop: x itself (both step together)."""
    x = body.input(unit.inputs[0], unit, body.node_name(unit))
    if body.is_constant(x) or not body.batched(x):
        raise UnsupportedError(
            f"{body.model.path}: ReconcileDynamicAxis {unit.function.display_name!r}: "
            "broadcasting a constant into a loop is not supported yet")
    body.values[unit.outputs[0]] = x


# -- state shapes -------------------------------------------------------------------
def _state_shapes(ctx: Context, unit: Unit, loop: Loop, steps: list[str],
                  held: list[str]) -> list[tuple[int, ...]]:
    """Each delay's sample shape: the fixed point described in the module docstring."""
    guess = [_seed(ctx, loop, d) for d in loop.delays]
    tried: set[tuple] = set()
    error: MmconvError | None = None
    for _ in range(_ROUNDS):
        tried.add(tuple(guess))
        try:
            new = _trial(ctx, unit, loop, guess, steps, held)
        except MmconvError as exc:
            error = exc
            break
        if new == guess:
            return guess
        guess = new
    candidates = _candidates(ctx, loop, steps)
    combos = itertools.islice(itertools.product(candidates, repeat=len(loop.delays)),
                              _MAX_TRIALS)
    for combo in combos:
        if combo in tried:
            continue
        try:
            if _trial(ctx, unit, loop, list(combo), steps, held) == list(combo):
                return list(combo)
        except MmconvError as exc:
            error = error or exc
    why = f" ({error})" if error is not None else ""
    raise _fail(ctx, unit, f"no consistent shape for its state(s){why}")


def _trial(ctx: Context, unit: Unit, loop: Loop, shapes: list[tuple[int, ...]],
           steps: list[str], held: list[str]) -> list[tuple[int, ...]]:
    """The new states' shapes when the body is built for ``shapes`` (on a copy)."""
    return _body(ctx.fork(), unit, loop, shapes, steps, held, "trial", set())[1]


def _seed(ctx: Context, loop: Loop, d: Function) -> tuple[int, ...]:
    """A first guess of a delay's sample shape (see the module docstring)."""
    init = d.inputs[1] if len(d.inputs) > 1 else ""
    if init and not ctx.is_weight(init) and init in ctx.values:
        return tuple(ctx.shape(ctx.values[init])[1:])  # type: ignore[arg-type]
    if init and ctx.is_weight(init) and np.asarray(ctx.array(init)).size > 1:
        return tuple(np.asarray(ctx.array(init)).shape)
    if d.inputs[0] in ctx.values and ctx.is_sequence(ctx.values[d.inputs[0]]):
        return tuple(ctx.shape(ctx.values[d.inputs[0]])[2:])  # type: ignore[arg-type]
    product = _product_shape(ctx, loop, d.outputs[0])
    return product if product is not None else ()


def _product_shape(ctx: Context, loop: Loop, uid: str) -> tuple[int, ...] | None:
    """The shape ``uid`` must have where it (or a same-shaped value of it) is the operand
    of a product with a weight: the weight's input axes."""
    work, seen = [uid], set()
    while work:
        u = work.pop()
        if u in seen or len(seen) > 64:
            continue
        seen.add(u)
        for f in loop.functions:
            if u not in f.inputs:
                continue
            if f.op == "Times" and len(f.inputs) == 2 and f.inputs[1] == u \
                    and ctx.is_weight(f.inputs[0]):
                w = np.asarray(ctx.array(f.inputs[0]))
                r = int(f.attrs.get("outputRank", 1))
                if 0 < r <= w.ndim:
                    return tuple(w.shape[: w.ndim - r])
            if f.op in _SAME_SHAPE:
                work.extend(f.outputs[:1])
    return None


def _candidates(ctx: Context, loop: Loop, steps: list[str]) -> list[tuple[int, ...]]:
    """State shapes worth trying when the fixed point does not settle."""
    out: list[tuple[int, ...]] = [()]
    for uid in steps:
        out.append(tuple(ctx.shape(ctx.values[uid])[2:]))  # type: ignore[arg-type]
    for f in loop.functions:
        if f.op == "Times" and len(f.inputs) == 2 and ctx.is_weight(f.inputs[0]):
            w = np.asarray(ctx.array(f.inputs[0]))
            r = int(f.attrs.get("outputRank", 1))
            if 0 < r <= w.ndim:
                out += [tuple(w.shape[: w.ndim - r]), tuple(w.shape[w.ndim - r:])]
    unique = list(dict.fromkeys(s for s in out if all(isinstance(d, int) for d in s)))
    return [s for s in unique if math.prod(s) > 0]


# -- sequence.broadcast_as ------------------------------------------------------------
def convert_broadcast(ctx: Context, unit: Unit) -> None:
    """``ReconcileDynamicAxis(v, like)`` outside a loop: ``v`` with ``like``'s dynamic axes.

    Same axes: ``v`` itself.  A per-sequence value ``[batch, *s]`` (or a constant) next
    to a sequence (``sequence.broadcast_as``) is repeated at every step; the time axis
    may be dynamic, which no IR shape op can grow, so it is the smallest Scan: ``v`` is
    a state the body passes on and returns at each step (a constant a ``[1, *s]``
    state the Scan broadcasts over the batch)."""
    name = ctx.node_name(unit)
    if len(unit.inputs) != 2:
        raise UnsupportedError(f"{ctx.model.path}: ReconcileDynamicAxis {name!r}: "
                               f"{len(unit.inputs)} inputs")
    v, like = (ctx.input(u, unit, name) for u in unit.inputs)
    if ctx.is_constant(like) or ctx.lead(v) == ctx.lead(like):
        ctx.values[unit.outputs[0]] = v
        return
    if not ctx.is_sequence(like) or ctx.is_sequence(v):
        raise UnsupportedError(f"{ctx.model.path}: ReconcileDynamicAxis {name!r}: giving "
                               f"{list(ctx.shape(v))} the dynamic axes of "
                               f"{list(ctx.shape(like))} is not supported")
    if ctx.is_constant(v):
        sample = tuple(ctx.shape(v))
        v = ctx.constant(f"{name}/value", ctx.constant_array(v).reshape(1, *sample))
    else:
        sample = tuple(ctx.shape(v)[1:])  # type: ignore[arg-type]
    taken: set[str] = set()
    y = fresh_name(ctx.graph, name, taken)
    final = fresh_name(ctx.graph, f"{name}/final", taken)
    body = BodyContext(ctx, f"{name}/body", taken | {name})
    g = body.graph
    held = g.add_input(g.unique_name(f"{name}/held"), ctx.dtype(v), (None, *sample)).name
    step = g.unique_name(f"{like}/t")
    g.add_input(step, ctx.dtype(like), (None, *ctx.shape(like)[2:]))
    body.batched_values.update({held, step})
    ctx.add_node("Scan", [v, like], f"{name}/broadcast", outputs=[final, y],
                 body=body.graph_of([held, held]), num_states=1)
    ctx.batched_values.update({final, y})
    ctx.sequence_values.add(y)
    ctx.values[unit.outputs[0]] = y
