"""The general recurrent loop: Scan, a body graph run once per time step.

Why an op with a body rather than more cells: CNTK (and hand-written loops
elsewhere) build recurrences from any ops closed by a delay (PastValue /
FutureValue) -- cumulative sums, projections, self-stabilisers, features of the
next step -- that no fixed cell expresses.  The body says what one step computes
in IR ops, and each target runs it with its own loop (ONNX ``Scan``, a PyTorch
for-loop, a Keras RNN cell, a CNTK recurrence).  Batch-major like the IR's LSTM:
scan inputs are ``[N, T, ...]``.  The numpy semantics in code is
:mod:`mmconv.ir.scan`.
"""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import Dim, Graph, Node, Shape, Value
from mmconv.ir.registry import Attr, Port, op


def _fits(a: Shape, b: Shape) -> bool:
    """Same rank and no two known dimensions differ."""
    return len(a) == len(b) and all(x is None or y is None or x == y
                                    for x, y in zip(a, b, strict=True))


def _show(shape: Shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _known(*dims: Dim) -> Dim:
    return next((d for d in dims if d is not None), None)


def scan_layout(node: Node) -> tuple[int, int, int]:
    """(S, M, K) of a Scan node: states, scan inputs, scan outputs."""
    states = int(node.attr("num_states"))
    body: Graph = node.attr("body")
    return states, len(node.inputs) - states, len(body.outputs) - states


def _infer(node: Node, inputs: list[Value | None]) -> list[tuple]:
    where = f"node {node.name!r} (Scan)"
    body: Graph = node.attr("body")
    s, m, k = scan_layout(node)
    if s < 0 or m < 1:
        raise IRError(f"{where}: needs num_states (got {s}) state inputs and at least one "
                      f"scan input; it has {len(inputs)} inputs")
    if any(v is None for v in inputs):
        raise IRError(f"{where}: no input may be omitted")
    ins: list[Value] = [v for v in inputs if v is not None]
    if len(body.inputs) != s + m:
        raise IRError(f"{where}: the body has {len(body.inputs)} inputs, the node {s} states "
                      f"and {m} scan inputs")
    if k < 0 or len(node.outputs) != s + k:
        raise IRError(f"{where}: {len(node.outputs)} outputs, the body has "
                      f"{len(body.outputs)} ({s} new states, then the step outputs)")
    xs = ins[s:]
    if any(x.rank < 2 for x in xs):
        raise IRError(f"{where}: scan inputs are [N, T, ...], got "
                      f"{[_show(x.shape) for x in xs]}")
    n, t = _known(*(x.shape[0] for x in xs)), _known(*(x.shape[1] for x in xs))
    if any(x.shape[0] not in (None, n) or x.shape[1] not in (None, t) for x in xs):
        raise IRError(f"{where}: scan inputs disagree on [N, T]: "
                      f"{[_show(x.shape) for x in xs]}")
    for i, (x, b) in enumerate(zip(xs, body.inputs[s:], strict=True)):
        step = (x.shape[0], *x.shape[2:])
        if x.dtype != b.dtype or not _fits(step, b.shape):
            raise IRError(f"{where}: scan input {i} is {x.dtype}{_show(x.shape)}, a step "
                          f"{_show(step)}, but body input {b.name!r} is {b.dtype}"
                          f"{_show(b.shape)}")
    out: list[tuple] = []
    for i, (st, b) in enumerate(zip(ins[:s], body.inputs[:s], strict=True)):
        if st.rank < 1 or (n is not None and st.shape[0] not in (None, 1, n)):
            raise IRError(f"{where}: state {i} is {_show(st.shape)}, expected [N, ...] or "
                          f"[1, ...] with N = {n}")
        batch = n if st.shape[0] == 1 else _known(st.shape[0], n)
        state = (batch, *st.shape[1:])
        new = body.value(body.outputs[i])
        for what, v in (("input", b), ("output", new)):
            if v.dtype != st.dtype or not _fits(state, v.shape):
                raise IRError(f"{where}: state {i} is {st.dtype}{_show(st.shape)} but body "
                              f"{what} {v.name!r} is {v.dtype}{_show(v.shape)}")
        out.append((st.dtype, (batch, *(_known(a, c) for a, c in zip(
            st.shape[1:], new.shape[1:], strict=True)))))
    for name in body.outputs[s:]:
        y = body.value(name)
        if y.rank < 1:
            raise IRError(f"{where}: step output {name!r} is a scalar; step outputs are "
                          "[N, ...]")
        out.append((y.dtype, (_known(n, y.shape[0]), t, *y.shape[1:])))
    return out


op(
    "Scan", onnx="Scan",
    inputs=[Port("inputs", "S initial states s_1..s_S ([N, ...], or [1, ...] broadcast over "
                 "the batch), then M >= 1 scan inputs x_1..x_M ([N, T, ...])", variadic=True)],
    outputs=[Port("outputs", "S final states f_1..f_S ([N, ...]), then K scan outputs "
                  "y_1..y_K ([N, T, ...])", variadic=True)],
    attrs={
        "body": Attr("graph", doc="one step: inputs are the S states then the M step values "
                     "x_m[:, t] ([N, ...]); outputs are the S new states (each shaped like "
                     "its state) then the K step outputs; it reads outer weights by name "
                     "and holds none itself"),
        "num_states": Attr("int", doc="S, the number of loop-carried states"),
        "reverse": Attr("int", 0, "1: run t = T-1 .. 0 (outputs stay at their input "
                        "positions)", choices=(0, 1)),
    },
    doc="""A loop over the time axis of batch-major scan inputs: at step t the body gets
    the current states and x_m[:, t] and returns the new states and y_k[:, t]; the
    outputs are the final states and the stacked y_k [N, T, ...]. Like ONNX Scan with
    scan_input_axes = scan_output_axes = 1 (the batch stays axis 0). A [1, ...] state is
    broadcast to the batch before the first step. T may be dynamic. The body reads
    only its own inputs and values and the outermost graph's weights (by name; it holds
    none of its own), and holds no recurrent ops (LSTM, GRU, RNN, Scan).""",
)(_infer)
