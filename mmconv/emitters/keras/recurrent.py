"""LSTM, GRU and RNN as Keras ``LSTM`` / ``GRU`` / ``SimpleRNN`` layers.

One IR node is one layer (wrapped in ``Bidirectional`` when the node is), with
``return_sequences`` and ``return_state`` so Y, Y_h and Y_c all exist; the IR's
batch-major layout is Keras's own, so no transpose is written.  Weights: Keras
kernels are [input, G*H] and recurrent kernels [H, G*H]; gate order LSTM i,f,c,o
(ONNX's i,o,f,c re-ordered), GRU z,r,h (ONNX's, unchanged).  Keras has one bias per
gate where ONNX has two: LSTM/SimpleRNN get their sum; GRU with ``reset_after=True``
(ONNX linear_before_reset=1) keeps both rows, with ``reset_after=False``
(linear_before_reset=0) the sum is exact because ONNX adds Rb_h outside the reset.
sequence_lens become a mask (step t live while t < length) with
``zero_output_for_mask``: ONNX's zeros past the end and last valid state.  Refused
per node: peepholes, input_forget, clip, activations Keras has no name for, LSTM
g != h.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, identity
from mmconv.ir.core import Node

#: ONNX activation -> Keras activation name (the parameter-free ones).
_KERAS_ACT = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softsign": "softsign",
              "Softplus": "softplus"}
_DEFAULTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}
_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (0, 1, 2), "RNN": (0,)}
_LAYER = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}


def _reorder(array: np.ndarray, op: str) -> np.ndarray:
    blocks = np.split(np.asarray(array), len(_ORDER[op]), axis=0)
    return np.concatenate([blocks[i] for i in _ORDER[op]], axis=0)


def _activations(ctx: EmitContext, node: Node, nd: int) -> list[str]:
    """Keras (recurrent_activation, activation) or (activation,) for SimpleRNN."""
    per = len(_DEFAULTS[node.op])
    acts = tuple(node.attr("activations")) or _DEFAULTS[node.op] * nd
    if acts[:per] != acts[per:] and nd == 2:
        raise ctx.unsupported(node, f"directions with different activations {list(acts)}")
    acts = acts[:per]
    if node.op == "LSTM" and acts[1] != acts[2]:
        raise ctx.unsupported(node, "Keras LSTM uses one activation for the cell input "
                              f"and output (g = h), got {list(acts)}")
    missing = [a for a in acts if a not in _KERAS_ACT]
    if missing:
        raise ctx.unsupported(node, f"activation(s) {missing} have no Keras equivalent")
    return [_KERAS_ACT[a] for a in acts]


def _params(node: Node, w: np.ndarray, r: np.ndarray, b: np.ndarray | None,
            d: int) -> list[np.ndarray]:
    op = node.op
    kernel = _reorder(w[d], op).T
    recurrent = _reorder(r[d], op).T
    if b is None:
        return [kernel, recurrent]
    half = b.shape[1] // 2
    wb, rb = _reorder(b[d, :half], op), _reorder(b[d, half:], op)
    if op == "GRU" and node.attr("linear_before_reset"):
        return [kernel, recurrent, np.stack([wb, rb])]
    return [kernel, recurrent, wb + rb]


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    op = node.op
    if op == "LSTM" and len(node.inputs) > 7 and node.inputs[7]:
        raise ctx.unsupported(node, "peepholes (input P) have no Keras LSTM equivalent")
    if op == "LSTM" and node.attr("input_forget"):
        raise ctx.unsupported(node, "input_forget=1 has no Keras LSTM equivalent")
    if node.attr("clip"):
        raise ctx.unsupported(node, "clip has no Keras recurrent-layer equivalent")
    direction = node.attr("direction")
    nd = 2 if direction == "bidirectional" else 1
    w = ctx.need_weight(node, node.inputs[1], "W")
    r = ctx.need_weight(node, node.inputs[2], "R")
    b = ctx.need_weight(node, node.input(3), "B") if node.input(3) else None
    acts = _activations(ctx, node, nd)
    hidden = int(node.attr("hidden_size"))
    x = node.inputs[0]
    kw = [str(hidden)]
    if op == "RNN":
        kw.append(f"activation={literal(acts[0])}")
    else:
        kw += [f"activation={literal(acts[1])}", f"recurrent_activation={literal(acts[0])}"]
    if op == "GRU":
        kw.append(f"reset_after={bool(node.attr('linear_before_reset'))}")
    kw += [f"use_bias={b is not None}", "return_sequences=True", "return_state=True"]
    lens = node.inputs[4] if len(node.inputs) > 4 else ""
    if lens:  # masked steps: state kept, output zero (ONNX's sequence_lens)
        kw.append("zero_output_for_mask=True")
    if direction == "reverse":
        kw.append("go_backwards=True")
    # the layer's own name; the node's output name goes to the Reshape giving Y its shape
    name = ctx.ident(f"{node.name}_{_LAYER[op].lower()}")
    if nd == 2:
        inner = f"layers.{_LAYER[op]}({', '.join(kw)}{ctx.dtype_kw(x)})"
        layer = f"layers.Bidirectional({inner}, name={literal(name)})"
    else:
        layer = f"layers.{_LAYER[op]}({', '.join(kw)}, name={literal(name)}{ctx.dtype_kw(x)})"

    n_states = 2 if op == "LSTM" else 1
    state_ports = [node.input(i) if len(node.inputs) > i else "" for i in (5, 6)][:n_states]
    init = ""
    if any(state_ports):
        parts = []
        for d in range(nd):
            for i, port in enumerate(state_ports):
                if port:
                    parts.append(f"{ctx.plain(port)}[:, {d}]")
                else:  # Keras needs every state when one is given: zeros like the other
                    other = ctx.plain(state_ports[1 - i])
                    parts.append(f"ops.zeros_like({other}[:, {d}])")
        init = f", initial_state=[{', '.join(parts)}]"
    mask = ""
    if lens:
        # step t is live while t < length: a cumulative count of ones, not arange, keeps
        # a dynamic time axis symbolic
        mask_id = ctx.ident(f"{node.name}_mask")
        steps = f"ops.cumsum(ops.ones_like({ctx.plain(x)}[:, :, 0]), axis=1)"
        length = f"ops.expand_dims(ops.cast({ctx.plain(lens)}, {literal(ctx.dtype(x))}), 1)"
        ctx.line(f"{mask_id} = ops.less_equal({steps}, {length})")
        mask = f", mask={mask_id}"
    res = ctx.ident(f"{node.name}_results")
    ctx.line(f"{res} = {layer}({ctx.plain(x)}{mask}{init})")
    params = _params(node, w, r, b, 0)
    if nd == 2:
        params += _params(node, w, r, b, 1)
    ctx.set_weights(name, [(f"w{i}", p) for i, p in enumerate(params)])

    seq = f"{res}[0]"
    if direction == "reverse":  # Keras returns a backwards run in processing order
        seq = f"ops.flip({seq}, axis=1)"
    outs = node.outputs
    ctx.define(node, f"layers.Reshape((-1, {nd}, {hidden}), name={literal(ctx.out(node))})"
                     f"({seq})", identity(4))
    for i in range(1, len(outs)):  # Y_h (i=1), Y_c (i=2): per direction, stacked on axis 1
        per_dir = [f"{res}[{1 + d * n_states + (i - 1)}]" for d in range(nd)]
        expr = (f"ops.expand_dims({per_dir[0]}, 1)" if nd == 1
                else f"ops.stack([{', '.join(per_dir)}], axis=1)")
        ctx.define(node, expr, identity(3), index=i)
