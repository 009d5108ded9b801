"""Loop in its "for t in range(T) over a sequence" form -> the IR's Scan.

What tf2onnx writes for a TensorFlow ``while_loop`` over time (Keras GRU and SimpleRNN
in a SavedModel): ``Loop(M, cond, t0, h0, W...)`` whose body reads ``x[t]`` with
``Gather(x, t)`` from the outer scope, returns ``t + 1``, the new state and the weights
unchanged, and stacks the step output along axis 0.  That is a Scan exactly when:

- the trip count ``M`` is known at conversion time and the continue condition is
  true at every step before it (the condition may read only counters and constants; it
  is evaluated for each step with onnx.reference, not guessed);
- every loop-carried value is a counter (known start, ``+ 1`` per step: the body
  uses it only to index its sequences and in the condition), an invariant (returned
  unchanged: the body reads the outer value itself), or a state;
- every sequence is read as ``Gather(x, t)`` (axis 0) with ``t`` a counter starting
  at 0 (or the iteration number), where ``x`` is an outer value of ``M`` rows.

Anything else is refused with one line naming the Loop and what it does.  The Scan
built is the one :func:`~mmconv.frontends.onnx.converters.scan.build_scan` makes;
the scan outputs (stacked on axis 0, time-major) get one Transpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import helper

from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx import known as kn
from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.converters.scan import build_scan, scan_input, scan_output
from mmconv.frontends.onnx.reader import tensor_array

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode

#: The most steps whose continue condition is evaluated one by one (a condition of
#: elementwise ops is evaluated for all steps at once, whatever their number).
MAX_STEPS = 1 << 14
#: Ops a condition is computed with for every step at once (counters as vectors).
ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Cast", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "Equal", "And", "Or", "Not", "Xor", "Identity", "Min", "Max", "Neg", "Abs"})


class _Refused(Exception):
    """Why the Loop is not the for-over-a-sequence form (becomes the one-line error)."""


def _scalar_int(array: np.ndarray | None) -> int | None:
    if array is None or array.size != 1 or array.dtype.kind not in "iu":
        return None
    return int(array.reshape(()))


def _constant(ctx: OnnxContext, body: Any, name: str) -> np.ndarray | None:
    """A body initializer, or an outer value known at conversion time (static)."""
    for t in body.initializer:
        if t.name == name:
            return tensor_array(ctx.path, t)
    return ctx.static(name)


class _Form:
    """The Loop read as a for-loop: counters, invariants, states, sequences."""

    def __init__(self, ctx: OnnxContext, node: OnnxNode) -> None:
        self.ctx, self.node = ctx, node
        body = self.body = node.attr("body").g
        self.producer = {o: n for n in body.node for o in n.output}
        trips = _scalar_int(ctx.static(node.input(0)))
        if trips is None or trips < 1:
            raise _Refused("its trip count is not a positive number known at conversion "
                           "time (the time axis is dynamic; for an ONNX file --inputShape "
                           "can fix it)")
        self.trips = trips
        cond = ctx.static(node.input(1)) if node.input(1) else np.array(True)
        if cond is None or not bool(np.all(cond)):
            raise _Refused("its start condition is not known to be true")
        n_vars = len(node.inputs) - 2
        names = [i.name for i in body.input]
        self.iteration, self.cond_in = names[0], names[1]
        self.var_ins, outs = names[2:], [o.name for o in body.output]
        self.cond_out, self.var_outs = outs[0], outs[1:1 + n_vars]
        self.scan_outs = outs[1 + n_vars:]
        #: body input -> start value of each counter (the iteration number starts at 0)
        self.counters: dict[str, int] = {self.iteration: 0}
        self.invariants: dict[str, str] = {}  # body input -> the outer value it stays
        self.states: list[int] = []  # indices into the loop-carried values
        for i, (vin, vout) in enumerate(zip(self.var_ins, self.var_outs, strict=True)):
            self._classify(i, vin, vout)

    def _classify(self, i: int, vin: str, vout: str) -> None:
        source = self._through_identity(vout)
        if source == vin:
            self.invariants[vin] = self.node.input(2 + i)
            return
        step = self.producer.get(vout)
        start = _scalar_int(self.ctx.static(self.node.input(2 + i)))
        if step is not None and step.op_type == "Add" and start is not None and \
                vin in step.input:
            other = step.input[1] if step.input[0] == vin else step.input[0]
            if _scalar_int(_constant(self.ctx, self.body, other)) == 1:
                self.counters[vin] = start
                return
        self.states.append(i)

    def _through_identity(self, name: str) -> str:
        while name in self.producer and self.producer[name].op_type == "Identity":
            name = self.producer[name].input[0]
        return name

    def _cone(self, outputs: list[str], stop: set[str]) -> list[Any]:
        """The body nodes ``outputs`` depend on (not past ``stop``), in body order."""
        keep: set[int] = set()
        stack = [self.producer[o] for o in outputs if o in self.producer and o not in stop]
        while stack:
            n = stack.pop()
            if id(n) in keep:
                continue
            keep.add(id(n))
            stack.extend(self.producer[i] for i in n.input
                         if i in self.producer and i not in stop)
        return [n for n in self.body.node if id(n) in keep]

    def check_condition(self) -> None:
        """The continue condition after steps 0 .. trips-2 is true: evaluated per step
        from the counters (it may read nothing else that changes)."""
        cone = self._cone([self.cond_out], set())
        made = {o for n in cone for o in n.output}
        allowed = set(self.counters) | {self.cond_in} | made
        for n in cone:
            if n.op_type not in kn.FOLDABLE or n.domain not in ("", "ai.onnx"):
                raise _Refused(f"its continue condition computes {n.op_type}")
            for i in n.input:
                if i and i not in allowed and _constant(self.ctx, self.body, i) is None:
                    raise _Refused(f"its continue condition reads {i!r}, which changes "
                                   "from step to step")
        starts = {v: self.ctx.static(self.node.input(2 + self.var_ins.index(v)))
                  for v in self.counters if v != self.iteration}
        steps = self.trips - 1
        if all(n.op_type in ELEMENTWISE for n in cone):
            # every step at once: counters as vectors over the steps; the condition read
            # at step j is the one computed at j - 1, true by induction if all are true
            self._check_steps(cone, starts, np.arange(steps), np.ones(steps, bool))
            return
        if steps > MAX_STEPS:
            raise _Refused(f"its continue condition computes more than elementwise ops "
                           f"and its trip count {self.trips} is above {MAX_STEPS}")
        for step in range(steps):
            self._check_steps(cone, starts, np.array(step), np.array(True))

    def _check_steps(self, cone: list[Any], starts: dict[str, np.ndarray | None],
                     step: np.ndarray, cond: np.ndarray) -> None:
        """Evaluate the condition at ``step`` (a step or a vector of them); refuse if it
        is false at any."""
        env: dict[str, np.ndarray] = {self.iteration: step.astype(np.int64),
                                      self.cond_in: cond}
        for v, start in starts.items():
            assert start is not None
            env[v] = (start + step).astype(start.dtype)
        for n in cone:
            ins = [None if not i else env[i] if i in env else
                   _constant(self.ctx, self.body, i) for i in n.input]
            for o, a in zip(n.output, kn.evaluate(self.ctx.path, n, self.ctx.opset, ins),
                            strict=False):
                env[o] = a
        out = env.get(self.cond_out)
        if out is None:
            out = _constant(self.ctx, self.body, self.cond_out)
        if out is None or out.dtype != np.bool_:
            raise _Refused("its continue condition is not a boolean computed from counters")
        false = np.flatnonzero(~np.broadcast_to(out.reshape(-1) if out.ndim else out,
                                                step.shape))
        if false.size:
            first = int(np.reshape(step, -1)[false[0]]) if step.ndim else int(step)
            raise _Refused(f"its continue condition is false after step {first}, before "
                           f"its trip count {self.trips}")

    def sequences(self) -> list[tuple[Any, str]]:
        """The Gather nodes reading ``x[t]`` (t a counter from 0) that the kept outputs
        use, with the outer value each reads."""
        kept = [self.var_outs[i] for i in self.states] + self.scan_outs
        own = {t.name for t in self.body.initializer}
        gathers = []
        for n in self._cone(kept, set(self.var_ins)):
            if n.op_type == "Gather" and len(n.input) == 2 and \
                    self.counters.get(n.input[1]) == 0 and n.input[0] not in self.producer \
                    and n.input[0] not in self.var_ins and n.input[0] not in own and \
                    int(next((a.i for a in n.attribute if a.name == "axis"), 0)) == 0:
                gathers.append((n, n.input[0]))
        return gathers

    def step_body(self, gathers: list[tuple[Any, str]]) -> Any:
        """The Scan body: the states' inputs, then each Gather's output as a step input;
        the nodes the new states and step outputs need; invariants read from outside."""
        stops = {n.output[0] for n, _ in gathers} | {self.var_ins[i] for i in self.states}
        kept = [self.var_outs[i] for i in self.states] + self.scan_outs
        nodes = self._cone(kept, stops)
        counters = set(self.counters) | {self.cond_in}
        for n in nodes:
            read = next((i for i in n.input if i in counters), None)
            if read is not None:
                raise _Refused(f"its body uses the loop counter {read!r} as a value (node "
                               f"{n.name or n.op_type!r})")
        rename = self.invariants
        step_nodes = []
        for n in nodes:
            copy = helper.make_node(n.op_type, [rename.get(i, i) for i in n.input],
                                    list(n.output), name=n.name, domain=n.domain)
            copy.attribute.extend(n.attribute)
            step_nodes.append(copy)
        outputs = [rename.get(o, o) for o in kept]
        if any(o in self.counters for o in outputs):
            raise _Refused("a step output is a loop counter")
        inputs = [self.var_ins[i] for i in self.states] + [n.output[0] for n, _ in gathers]
        return helper.make_graph(
            step_nodes, self.body.name,
            [helper.make_empty_tensor_value_info(i) for i in inputs],
            [helper.make_empty_tensor_value_info(o) for o in outputs],
            initializer=list(self.body.initializer))


@CONVERTERS.register("Loop", since=7)
def loop(ctx: OnnxContext, node: OnnxNode) -> None:
    where = ctx.where(node)
    try:
        form = _Form(ctx, node)
        form.check_condition()
        gathers = form.sequences()
        if not gathers:
            raise _Refused("its body reads no sequence as x[t]")
        body = form.step_body(gathers)
    except _Refused as why:
        raise UnsupportedError(
            f"{where}: not converted: {why}; mmconv converts a Loop only in its "
            "'for t in range(T) over a sequence' form (see docs/onnx-source.md)") from None
    from mmconv.frontends.onnx.builder import OnnxNode

    xs = []
    for n, outer in gathers:
        x = scan_input(ctx, OnnxNode(n, node.name, {}), 0, 0)  # the Gather's x, axis 0
        if ctx.shape(x)[1] != form.trips:
            raise UnsupportedError(
                f"{where}: not converted: it reads {outer!r} {list(ctx.shape(x))} (batch-"
                f"major) as x[t] for {form.trips} steps; a sequence must have as many")
        xs.append(x)
    states = [2 + i for i in form.states]
    finals, ys = build_scan(ctx, node, states, xs, body, 0)
    n_vars = len(form.var_ins)
    for i, vin in enumerate(form.var_ins):
        out = node.outputs[i] if i < len(node.outputs) else ""
        if not out:
            continue
        if i in form.states:
            ctx.values[out] = finals[form.states.index(i)]
        elif vin in form.invariants:
            src = node.input(2 + i)
            if src in ctx.values:
                ctx.values[out] = ctx.values[src]
            else:
                ctx.known[out] = ctx.known[src]
        else:
            start = ctx.static(node.input(2 + i))
            assert start is not None
            ctx.known[out] = kn.Known.static((start + form.trips).astype(start.dtype))
    for j, y in enumerate(ys):
        ctx.set(node, scan_output(ctx, y, 0, j), n_vars + j)
