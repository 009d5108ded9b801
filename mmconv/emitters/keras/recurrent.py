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
``zero_output_for_mask``: ONNX's zeros past the end and last valid state.

What no stock layer computes -- peepholes, input_forget, clip, activations Keras has
no name for (or with ONNX's alpha/beta), LSTM g != h, directions with different
activations -- is ``layers.RNN`` over the custom :class:`~.cells.OnnxRecurrentCell`
(one per direction, ONNX-layout variables), pasted into the generated code.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.keras.context import HANDLERS, EmitContext, identity
from mmconv.ir.core import Node
from mmconv.ir.ops.recurrent import activations as onnx_activations

#: ONNX activation -> Keras activation name (the parameter-free ones).
_KERAS_ACT = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softsign": "softsign",
              "Softplus": "softplus"}
_DEFAULTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}
_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (0, 1, 2), "RNN": (0,)}
_LAYER = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}


def _reorder(array: np.ndarray, op: str) -> np.ndarray:
    blocks = np.split(np.asarray(array), len(_ORDER[op]), axis=0)
    return np.concatenate([blocks[i] for i in _ORDER[op]], axis=0)


def _stock_activations(node: Node, nd: int) -> tuple[list[str], str]:
    """Keras (recurrent_activation, activation) or (activation,) for SimpleRNN, and ""; or
    [] and why a stock layer cannot compute the node (then the custom cell does)."""
    if op_peepholes(node):
        return [], "peepholes"
    if node.op == "LSTM" and node.attr("input_forget"):
        return [], "input_forget"
    if node.attr("clip"):
        return [], "clip"
    per = len(_DEFAULTS[node.op])
    acts = tuple(node.attr("activations")) or _DEFAULTS[node.op] * nd
    if acts[:per] != acts[per:] and nd == 2:
        return [], "directions with different activations"
    acts = acts[:per]
    if node.op == "LSTM" and acts[1] != acts[2]:
        return [], "LSTM g != h"
    if any(a not in _KERAS_ACT for a in acts):
        return [], f"activations {list(acts)}"
    return [_KERAS_ACT[a] for a in acts], ""


def op_peepholes(node: Node) -> bool:
    return node.op == "LSTM" and len(node.inputs) > 7 and bool(node.inputs[7])


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


def _cell_params(node: Node, w: np.ndarray, r: np.ndarray, b: np.ndarray | None,
                 p: np.ndarray | None, d: int) -> list[np.ndarray]:
    """OnnxRecurrentCell's variables for direction ``d``: ONNX layout, transposed for
    ``x @ kernel`` (no gate re-ordering, both biases)."""
    params = [w[d].T, r[d].T]
    if b is not None:
        params.append(b[d])
    if p is not None:
        params.append(p[d])
    return params


def _cell(ctx: EmitContext, node: Node, d: int, nd: int, use_bias: bool, peepholes: bool,
          x: str) -> str:
    """The constructor call of the custom cell computing direction ``d`` of ``node``."""
    acts = onnx_activations(node)
    per = len(acts) // nd
    mine = [[name, alpha, beta] for name, alpha, beta in acts[d * per:(d + 1) * per]]
    kw = [literal(node.op), str(int(node.attr("hidden_size"))), f"activations={literal(mine)}"]
    if node.attr("clip"):
        kw.append(f"clip={literal(float(node.attr('clip')))}")
    if node.op == "LSTM" and node.attr("input_forget"):
        kw.append("input_forget=True")
    if node.op == "GRU" and node.attr("linear_before_reset"):
        kw.append("linear_before_reset=True")
    if not use_bias:
        kw.append("use_bias=False")
    if peepholes:
        kw.append("peepholes=True")
    return f"OnnxRecurrentCell({', '.join(kw)}{ctx.dtype_kw(x)})"


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    op = node.op
    direction = node.attr("direction")
    nd = 2 if direction == "bidirectional" else 1
    w = ctx.need_weight(node, node.inputs[1], "W")
    r = ctx.need_weight(node, node.inputs[2], "R")
    b = ctx.need_weight(node, node.input(3), "B") if node.input(3) else None
    p = ctx.need_weight(node, node.inputs[7], "P") if op_peepholes(node) else None
    acts, why = _stock_activations(node, nd)
    hidden = int(node.attr("hidden_size"))
    x = node.inputs[0]
    lens = node.inputs[4] if len(node.inputs) > 4 else ""
    common = ["return_sequences=True", "return_state=True"]
    if lens:  # masked steps: state kept, output zero (ONNX's sequence_lens)
        common.append("zero_output_for_mask=True")
    # the layer's own name; the node's output name goes to the Reshape giving Y its shape
    name = ctx.ident(f"{node.name}_{_LAYER[op].lower()}")
    if why:  # no stock layer computes this node: layers.RNN over the custom cell
        ctx.uses_cells = True
        cells = [_cell(ctx, node, d, nd, b is not None, p is not None, x) for d in range(nd)]
        if nd == 2:
            fwd = f"layers.RNN({cells[0]}, {', '.join(common)}{ctx.dtype_kw(x)})"
            bwd = (f"layers.RNN({cells[1]}, {', '.join(common)}, go_backwards=True"
                   f"{ctx.dtype_kw(x)})")
            layer = f"layers.Bidirectional({fwd}, backward_layer={bwd}, name={literal(name)})"
        else:
            back = ", go_backwards=True" if direction == "reverse" else ""
            layer = (f"layers.RNN({cells[0]}, {', '.join(common)}{back}, name={literal(name)}"
                     f"{ctx.dtype_kw(x)})")
        params = [q for d in range(nd) for q in _cell_params(node, w, r, b, p, d)]
        ctx.line(f"# {why}: no stock Keras layer computes this {op}")
    else:
        kw = [str(hidden)]
        if op == "RNN":
            kw.append(f"activation={literal(acts[0])}")
        else:
            kw += [f"activation={literal(acts[1])}", f"recurrent_activation={literal(acts[0])}"]
        if op == "GRU":
            kw.append(f"reset_after={bool(node.attr('linear_before_reset'))}")
        kw += [f"use_bias={b is not None}", *common]
        if direction == "reverse":
            kw.append("go_backwards=True")
        if nd == 2:
            inner = f"layers.{_LAYER[op]}({', '.join(kw)}{ctx.dtype_kw(x)})"
            layer = f"layers.Bidirectional({inner}, name={literal(name)})"
        else:
            layer = (f"layers.{_LAYER[op]}({', '.join(kw)}, name={literal(name)}"
                     f"{ctx.dtype_kw(x)})")
        params = [q for d in range(nd) for q in _params(node, w, r, b, d)]

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
    ctx.set_weights(name, [(f"w{i}", a) for i, a in enumerate(params)])

    seq = f"{res}[0]"
    if direction == "reverse":  # Keras returns a backwards run in processing order
        seq = f"ops.flip({seq}, axis=1)"
    outs = node.outputs
    ctx.define(node, f"layers.Reshape((-1, {nd}, {hidden}), name={literal(ctx.out(node))}"
                     f"{ctx.dtype_kw(x)})({seq})", identity(4))
    for i in range(1, len(outs)):  # Y_h (i=1), Y_c (i=2): per direction, stacked on axis 1
        per_dir = [f"{res}[{1 + d * n_states + (i - 1)}]" for d in range(nd)]
        expr = (f"ops.expand_dims({per_dir[0]}, 1)" if nd == 1
                else f"ops.stack([{', '.join(per_dir)}], axis=1)")
        ctx.define(node, expr, identity(3), index=i)
