"""The recurrent cells MXNet's fused ``RNN`` operator cannot compute, as a ``_foreach``
loop (:mod:`.loop`) over a body holding ONNX's arithmetic for one step.

Used for an LSTM with peepholes or ``input_forget``, a GRU with
``linear_before_reset=0`` (CNTK's: the reset gate before the recurrent product),
``clip``, activations other than the fused op's, and an LSTM whose last cell state is
read with ``sequence_lens`` (the fused op has no per-step cell output).  One loop per
direction (a reverse one between two ``reverse(axis=0)``, or ``SequenceReverse`` of each
row's prefix with lengths), each with its parameters laid out at
emit time in the IR's gate order: ``<node>/loop_W_<d>`` ``[G*H, in]`` and its bias,
``loop_R_<d>`` ``[G*H, H]`` and its bias (a reset-before GRU's split into the z, r
rows and the h rows), ``loop_P<gate>_<d>`` ``[1, H]`` peepholes.  A step is a few
``FullyConnected``, ``slice_axis`` and elementwise nodes; slower than the fused op but
exact, and T may stay dynamic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmconv.emitters.mxnet.context import EmitContext, Entry
from mmconv.emitters.mxnet.loop import Body, foreach
from mmconv.ir.core import Node
from mmconv.ir.ops.recurrent import GATES, activations, num_directions

Act = tuple[str, float | None, float | None]


def _act(body: Body, act: Act, x: Entry, hint: str) -> Entry:
    """ONNX activation ``act`` (name, alpha, beta) of ``x`` in the body."""
    name, a, b = act
    if name in ("Relu", "Tanh", "Sigmoid", "Softsign"):
        return body.op("Activation", [x], hint, act_type=name.lower())
    if name == "Softplus":
        return body.op("Activation", [x], hint, act_type="softrelu")
    if name == "HardSigmoid":
        return body.op("hard_sigmoid", [x], hint, alpha=float(a or 0.0), beta=float(b or 0.0))
    if name == "LeakyRelu":
        return body.op("LeakyReLU", [x], hint, act_type="leaky", slope=float(a or 0.0))
    if name == "Elu":
        return body.op("LeakyReLU", [x], hint, act_type="elu", slope=float(a or 0.0))
    if name == "Affine":
        scaled = body.op("_mul_scalar", [x], f"{hint}_scaled", scalar=float(a or 0.0))
        return body.op("_plus_scalar", [scaled], hint, scalar=float(b or 0.0))
    if name == "ScaledTanh":
        inner = body.op("_mul_scalar", [x], f"{hint}_inner", scalar=float(b or 0.0))
        tanh = body.op("Activation", [inner], f"{hint}_tanh", act_type="tanh")
        return body.op("_mul_scalar", [tanh], hint, scalar=float(a or 0.0))
    if name == "ThresholdedRelu":
        keep = body.op("_greater_scalar", [x], f"{hint}_keep", scalar=float(a or 0.0))
        return body.op("elemwise_mul", [x, keep], hint)
    raise AssertionError(f"activation {name} is not one of ONNX's")


def _step(ctx: EmitContext, node: Node, body: Body, d: int, x: Entry, h: Entry,
          c: Entry | None, acts: Sequence[Act], run_dtype: str) -> tuple[Entry, Entry | None]:
    """One step of direction ``d``: the new h (and c)."""
    op, hid = node.op, int(node.attr("hidden_size"))
    g = GATES[op]
    w = np.asarray(ctx.weight(node.inputs[0 + 1]))[d].astype(run_dtype)
    r = np.asarray(ctx.weight(node.inputs[2]))[d].astype(run_dtype)
    b_name = node.inputs[3] if len(node.inputs) > 3 else ""
    bias = (np.asarray(ctx.weight(b_name))[d] if b_name
            else np.zeros(2 * g * hid)).astype(run_dtype)
    wb, rb = bias[:g * hid], bias[g * hid:]
    clip = float(node.attr("clip"))

    def param(array: np.ndarray, hint: str) -> Entry:
        return body.outer(ctx, ctx.new_param(array, f"loop_{hint}_{d}"))

    def fc(value: Entry, weight: np.ndarray, b: np.ndarray, hint: str) -> Entry:
        return body.op("FullyConnected", [value, param(weight, hint), param(b, f"{hint}b")],
                       hint, num_hidden=int(weight.shape[0]))

    def gate(value: Entry, k: int, hint: str) -> Entry:
        return body.op("slice_axis", [value], hint, axis=1, begin=k * hid, end=(k + 1) * hid)

    def pre(value: Entry, hint: str) -> Entry:  # ONNX clips what goes into an activation
        return body.op("clip", [value], f"{hint}_clipped", a_min=-clip, a_max=clip) \
            if clip > 0 else value

    def add(a: Entry, b: Entry, hint: str) -> Entry:
        return body.op("elemwise_add", [a, b], hint)

    def mul(a: Entry, b: Entry, hint: str) -> Entry:
        return body.op("elemwise_mul", [a, b], hint)

    xw = fc(x, w, wb, "W")
    if op == "GRU" and not node.attr("linear_before_reset"):
        hr = fc(h, r[:2 * hid], rb[:2 * hid], "R")  # z, r rows
    else:
        hr = fc(h, r, rb, "R")
    if op == "RNN":
        new_h = _act(body, acts[0], pre(add(xw, hr, "sum"), "sum"), "h")
        return new_h, None
    if op == "GRU":
        z = _act(body, acts[0], pre(add(gate(xw, 0, "xz"), gate(hr, 0, "hz"), "z_sum"),
                                    "z"), "z")
        rg = _act(body, acts[0], pre(add(gate(xw, 1, "xr"), gate(hr, 1, "hr"), "r_sum"),
                                     "r"), "r")
        if node.attr("linear_before_reset"):
            recurrent = mul(rg, gate(hr, 2, "hh"), "reset")
        else:
            recurrent = fc(mul(rg, h, "reset_h"), r[2 * hid:], rb[2 * hid:], "Rh")
        cand = _act(body, acts[1], pre(add(gate(xw, 2, "xh"), recurrent, "h_sum"), "h"),
                    "candidate")
        # (1 - z) * cand + z * h = cand + z * (h - cand)
        delta = body.op("elemwise_sub", [h, cand], "h_minus_candidate")
        return add(cand, mul(z, delta, "kept"), "h"), None
    assert c is not None
    p_name = node.inputs[7] if len(node.inputs) > 7 else ""
    p = np.asarray(ctx.weight(p_name))[d].astype(run_dtype) if p_name else None
    gates = add(xw, hr, "gates")  # i, o, f, c

    def peep(value: Entry, k: int, cell: Entry, hint: str) -> Entry:
        if p is None:
            return value
        pk = param(p[k * hid:(k + 1) * hid].reshape(1, hid), f"P{hint}")
        return add(value, body.op("broadcast_mul", [cell, pk], f"peephole_{hint}"),
                   f"{hint}_peeped")

    i = _act(body, acts[0], pre(peep(gate(gates, 0, "gi"), 0, c, "i"), "i"), "i")
    if node.attr("input_forget"):
        f = body.op("_rminus_scalar", [i], "f", scalar=1.0)
    else:
        f = _act(body, acts[0], pre(peep(gate(gates, 2, "gf"), 2, c, "f"), "f"), "f")
    cand = _act(body, acts[1], pre(gate(gates, 3, "gc"), "c"), "candidate")
    new_c = add(mul(f, c, "forget"), mul(i, cand, "input"), "c")
    o = _act(body, acts[0], pre(peep(gate(gates, 1, "go"), 1, new_c, "o"), "o"), "o")
    new_h = mul(o, _act(body, acts[2], new_c, "c_act"), "h")
    return new_h, new_c


def _live_steps(ctx: EmitContext, x_time: Entry, lens: Entry, run_dtype: str) -> Entry:
    """[T, N] 1/0: whether step t is inside row n's length (``t < len``)."""
    steps = ctx.op("_contrib_arange_like", [x_time], "step_index", axis=0)
    column = ctx.op("Reshape", [steps], "step_column", shape=(-1, 1))
    row = ctx.op("Reshape", [ctx.op("Cast", [lens], "lens_float", dtype=run_dtype)],
                 "lens_row", shape=(1, -1))
    return ctx.op("broadcast_lesser", [column, row], "live_steps")


def emit_loop(ctx: EmitContext, node: Node, x_batch: Entry, x_time: Entry,
              given: Sequence[Entry | None], run_dtype: str, lens: Entry | None = None
              ) -> tuple[Entry, list[Entry | None]]:
    """The node as one ``_foreach`` per direction: time-major Y [T, N, nd*H], Y_h and
    Y_c [nd, N, H] (Y_c None for GRU/RNN).

    With ``lens`` (ONNX's sequence_lens) the loop also reads whether each step is live:
    a step past a row's end keeps its states and outputs zeros, so the final states are
    the last valid ones; a reverse direction runs over ``SequenceReverse``d prefixes."""
    nd, hid = num_directions(node), int(node.attr("hidden_size"))
    acts = activations(node)
    per = len(acts) // nd
    lstm = node.op == "LSTM"
    zero_row = None
    live = _live_steps(ctx, x_time, lens, run_dtype) if lens is not None else None
    seq = {"use_sequence_length": True}
    ys, finals_h, finals_c = [], [], []
    for d in range(nd):
        reverse = d == 1 or node.attr("direction") == "reverse"

        def flip(value: Entry, hint: str) -> Entry:
            if lens is not None:
                return ctx.op("SequenceReverse", [value, lens], hint, **seq)
            return ctx.op("reverse", [value], hint, axis=0)

        xd = flip(x_time, f"reversed_{d}") if reverse else x_time
        states = []
        for i, entry in enumerate(given[:2 if lstm else 1]):
            port = ("initial_h", "initial_c")[i]
            if entry is None:
                if zero_row is None:  # [N, H] zeros: the batch from X
                    zero_row = ctx.op("broadcast_like", [
                        ctx.op("_zeros", [], "zero_row", shape=(1, hid), dtype=run_dtype),
                        x_batch], "zeros", lhs_axes=(0,), rhs_axes=(0,))
                states.append(zero_row)
                continue
            if nd > 1:
                entry = ctx.op("slice_axis", [entry], f"{port}_{d}", axis=1, begin=d,
                               end=d + 1)
            states.append(ctx.op("Reshape", [entry], f"{port}_{d}_rows", shape=(0, -1)))
        body = Body(f"{node.name}/step_{d}")
        x_t = body.var("x_t")
        h = body.var("h")
        c = body.var("c") if lstm else None
        new_h, new_c = _step(ctx, node, body, d, x_t, h, c, acts[d * per:(d + 1) * per],
                             run_dtype)
        data = [(xd, x_t)]
        out = new_h
        if live is not None:  # past the end: states kept, output zeros
            live_t = body.var("live")
            data.append((live, live_t))
            out = body.op("where", [live_t, new_h, body.op("zeros_like", [new_h], "zeros")],
                          "y_t")
            new_h = body.op("where", [live_t, new_h, h], "h_kept")
            if new_c is not None and c is not None:
                new_c = body.op("where", [live_t, new_c, c], "c_kept")
        pairs = [(states[0], h)] + ([(states[1], c)] if c is not None else [])
        loop = foreach(ctx, body, data, pairs, [out],
                       [new_h] + ([new_c] if new_c is not None else []), f"loop_{d}")
        y = (loop, 0)
        ys.append(flip(y, f"unreversed_{d}") if reverse else y)
        finals_h.append((loop, 1))
        if lstm:
            finals_c.append((loop, 2))
    y_all = ys[0] if nd == 1 else ctx.op("Concat", ys, "directions", dim=2, num_args=nd)
    last_h = ctx.op("stack", finals_h, "Y_h_stack", axis=0, num_args=nd)
    last_c = ctx.op("stack", finals_c, "Y_c_stack", axis=0, num_args=nd) if lstm else None
    return y_all, [last_h, last_c]
