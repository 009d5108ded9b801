"""LSTM, GRU and RNN as ``cntk.layers.Recurrence`` over ``LSTM`` / ``GRU`` / ``RNNStep``.

The layers CNTK users write, retrainable: each direction is one block whose
parameters (``W`` [input, G*H], ``H``, ``b``, LSTM peepholes ``Ci``/``Cf``/``Co``,
GRU ``H1``) get the IR weights by name after the graph is built (``_set_params``).
CNTK's orders: LSTM stacks i, c, f, o (ONNX i, o, f, c), GRU z, r, h with the
reset applied before the recurrent product (ONNX linear_before_reset=0) and one
bias per gate (ONNX's two biases summed: exact, since ONNX adds Rb_h outside the
reset).  Time is CNTK's sequence axis: X must be a sequence (a graph input [N, T,
...] with dynamic T is one) or a value with a static time axis (made one with
``to_sequence``, and Y unpacked back).  A reverse run is ``go_backwards`` (its
last state is ``sequence.first``); initial states go through ``RecurrenceFrom``.
A GRU with linear_before_reset=1 (PyTorch's and Keras's GRU), which cntk.layers.GRU
cannot compute, is the generated ``_gru_reset_after`` block: the same parameters
plus the recurrent bias ``bh``, in a BlockFunction ``Recurrence`` runs like CNTK's
own.  Refused per node: clip, input_forget, gate activations other than sigmoid, LSTM g != h.
``sequence_lens`` (ONNX: each batch entry runs over its first ``len`` steps, Y is
zero after them, Y_h/Y_c are the last valid states; reverse starts at ``len - 1``)
keeps the cells as they are: the generated ``_valid_steps`` marks the steps before
each length, ``sequence.gather`` packs them into sequences of their own lengths
(which CNTK runs natively, ``go_backwards`` and ``sequence.last``/``first``
included), and ``sequence.scatter`` puts Y back onto every step with zeros after.
Lengths must be >= 1: CNTK has no empty sequence.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Node

_CNTK_ACT = {"Tanh": "C.tanh", "Relu": "C.relu", "Sigmoid": "C.sigmoid",
             "Softplus": "C.softplus"}
_DEFAULTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}
_BLOCK = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNNStep"}


def _activation(ctx: EmitContext, node: Node, nd: int) -> str:
    per = len(_DEFAULTS[node.op])
    acts = tuple(node.attr("activations")) or _DEFAULTS[node.op] * nd
    if nd == 2 and acts[:per] != acts[per:]:
        raise ctx.unsupported(node, f"directions with different activations {list(acts)}")
    acts = acts[:per]
    if node.op != "RNN" and acts[0] != "Sigmoid":
        raise ctx.unsupported(node, f"CNTK's {node.op} gates are sigmoid, got {acts[0]}")
    if node.op == "LSTM" and acts[1] != acts[2]:
        raise ctx.unsupported(node, "CNTK's LSTM uses one activation for the cell input and "
                              f"output (g = h), got {list(acts)}")
    if acts[-1] not in _CNTK_ACT:
        raise ctx.unsupported(node, f"activation {acts[-1]} has no CNTK equivalent here")
    return _CNTK_ACT[acts[-1]]


def _refuse(ctx: EmitContext, node: Node) -> None:
    if ctx.in_loop:
        raise ctx.unsupported(node, "a recurrent layer inside a Scan body is not written")
    lens = node.input(4)
    if lens and (lens in ctx.sequence or not ctx.batched(lens) or ctx.rank(lens) != 1):
        raise ctx.unsupported(node, f"sequence_lens {lens!r} {list(ctx.shape(lens))} must be a "
                              "run-time [N] value (one length per batch entry)")
    if node.attr("clip"):
        raise ctx.unsupported(node, "clip has no cntk.layers equivalent")
    if node.op == "LSTM" and node.attr("input_forget"):
        raise ctx.unsupported(node, "input_forget=1 has no cntk.layers equivalent")
    for port in node.inputs[1:4]:
        if port and not ctx.is_weight(port):
            raise ctx.unsupported(node, f"{port!r} is computed at run time; a recurrent "
                                  "layer's weights must be constant")
    for port in node.inputs[5:7]:
        if port and port in ctx.sequence:
            raise ctx.unsupported(node, f"initial state {port!r} is a sequence")


def _params(node: Node, d: int, w: np.ndarray, r: np.ndarray, b: np.ndarray | None,
            p: np.ndarray | None, hidden: int) -> dict[str, np.ndarray]:
    """The CNTK block's parameters for direction ``d``, by CNTK's names."""
    op, h = node.op, hidden
    wd, rd = w[d], r[d]
    g = wd.shape[0] // h
    bias = np.zeros(g * h, wd.dtype) if b is None else b[d, :g * h] + b[d, g * h:]
    if op == "LSTM":
        order = (0, 3, 2, 1)  # ONNX i, o, f, c -> CNTK i, c, f, o
        blocks = [np.split(a, 4, axis=0) for a in (wd, rd, bias)]
        wd, rd, bias = (np.concatenate([bl[i] for i in order], axis=0) for bl in blocks)
        out = {"W": wd.T, "H": rd.T, "b": bias}
        if p is not None:
            out.update({"Ci": p[d, :h], "Co": p[d, h:2 * h], "Cf": p[d, 2 * h:]})
        return out
    if op == "GRU" and node.attr("linear_before_reset"):
        wb = np.zeros(g * h, wd.dtype) if b is None else b[d, :g * h]
        rb = np.zeros(g * h, wd.dtype) if b is None else b[d, g * h:]
        return {"W": wd.T, "H": rd.T, "b": wb, "bh": rb}
    if op == "GRU":
        return {"W": wd.T, "H": rd[:2 * h].T, "H1": rd[2 * h:].T, "b": bias}
    return {"W": wd.T, "H": rd.T, "b": bias}


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    _refuse(ctx, node)
    op, direction = node.op, node.attr("direction")
    nd = 2 if direction == "bidirectional" else 1
    hidden = int(node.attr("hidden_size"))
    act = _activation(ctx, node, nd)
    graph = ctx.graph
    w, r = graph.weights[node.inputs[1]], graph.weights[node.inputs[2]]
    b = graph.weights[node.input(3)] if node.input(3) else None
    p = graph.weights[node.inputs[7]] if len(node.inputs) > 7 and node.inputs[7] else None
    if p is not None and not ctx.is_weight(node.inputs[7]):
        raise ctx.unsupported(node, "peepholes computed at run time")
    x_name = node.inputs[0]
    x = ctx.ref(x_name)
    static_time = x_name not in ctx.sequence
    if static_time:
        if not ctx.batched(x_name) or len(ctx.sample_shape(x_name)) != 2:
            raise ctx.unsupported(node, f"X {list(ctx.shape(x_name))} must be [N, T, input]")
        x = ctx.let(f"C.to_sequence({x})", "sequence")
    valid = ""
    if node.input(4):  # sequence_lens: run each sequence over its own steps only
        ctx.helpers.add("_valid_steps")
        valid = ctx.let(f"_valid_steps({x}, {ctx.ref(node.input(4))})", "valid")
        x = ctx.let(f"C.sequence.gather({x}, {valid})", "packed")
    states = [node.input(i) if len(node.inputs) > i else "" for i in (5, 6)]
    states = states[:2 if op == "LSTM" else 1]
    ctx.helpers.add("_set_params")

    seqs, lasts_h, lasts_c = [], [], []
    for d in range(nd):
        backwards = direction == "reverse" or d == 1
        extra = ", use_peepholes=True" if p is not None else ""
        cell_name = literal(f"{node.name}/cell{d}")
        if op == "GRU" and node.attr("linear_before_reset"):
            ctx.helpers.add("_gru_reset_after")
            block = ctx.let(f"_gru_reset_after({hidden}, {act}, {cell_name})", f"cell{d}")
        else:
            block = ctx.let(f"C.layers.{_BLOCK[op]}({hidden}, activation={act}{extra}, "
                            f"name={cell_name})", f"cell{d}")
        go_back = ", go_backwards=True" if backwards else ""
        if any(states):
            given = [f"C.reshape(C.slice({ctx.ref(port)}, 0, {d}, {d + 1}), "
                     f"{ints((hidden,))})" if port else "" for port in states]
            like = next(g for g in given if g)
            inits = [g or f"C.zeros_like({like})" for g in given]
            rec = (f"C.layers.RecurrenceFrom({block}{go_back}, return_full_state=True)"
                   f"({', '.join(inits)}, {x})") if op == "LSTM" else \
                  f"C.layers.RecurrenceFrom({block}{go_back})({inits[0]}, {x})"
        elif op == "LSTM":
            rec = f"C.layers.Recurrence({block}{go_back}, return_full_state=True)({x})"
        else:
            rec = f"C.layers.Recurrence({block}{go_back})({x})"
        out = ctx.let(rec, f"run{d}")
        h_seq = f"{out}.outputs[0]" if op == "LSTM" else out
        pick = "C.sequence.first" if backwards else "C.sequence.last"
        seqs.append(h_seq)
        lasts_h.append(f"{pick}({h_seq})")
        if op == "LSTM":
            lasts_c.append(f"{pick}({out}.outputs[1])")
        where = ("forward", "backward")[int(backwards)]
        keys = [(name, ctx._store(f"{node.name}/{where}/{name}", arr, "cntk"))
                for name, arr in _params(node, d, w, r, b, p, hidden).items()]
        ctx.lines.append(f"_set_params(_w, {block}, {literal(keys)})")

    seq = seqs[0] if nd == 1 else f"C.splice({seqs[0]}, {seqs[1]}, axis=0)"
    y = f"C.reshape({seq}, {ints((nd, hidden))})"
    if valid:  # back onto every step, zeros past each sequence's length (ONNX's Y)
        y = f"C.sequence.scatter({y}, {valid})"
    if static_time:  # named, as every output: graph outputs are found by name
        y = f"C.sequence.unpack({y}, 0, no_mask_output=True, {ctx.name_kw(node)})"
    outs = node.outputs
    ctx.assign(node, y if static_time else f"C.alias({y}, {ctx.name_kw(node)})",
               batched=True, sequence=not static_time)
    for i, lasts in ((1, lasts_h), (2, lasts_c)):
        if i >= len(outs):
            continue
        parts = [f"C.reshape({v}, {ints((1, hidden))})" for v in lasts]
        expr = parts[0] if nd == 1 else f"C.splice({', '.join(parts)}, axis=0)"
        ctx.assign(node, f"C.alias({expr}, {ctx.name_kw(node, outs[i])})", out=outs[i],
                   batched=True, sequence=False)
