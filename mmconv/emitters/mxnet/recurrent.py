"""LSTM, GRU and RNN as MXNet's fused ``RNN`` operator (the op Gluon's rnn layers run).

One IR node is one ``RNN`` node (``mode`` lstm / gru / rnn_tanh / rnn_relu,
``bidirectional`` for both directions, ``state_outputs=True``), so the checkpoint
holds the layer MXNet itself would write for ``gluon.rnn.LSTM`` and friends:

- ``RNN`` is time-major (TNC): X goes in through one ``SwapAxis(0, 1)``, Y comes out
  through one (and a ``Reshape`` of ``[N, T, nd*H]`` to the IR's ``[N, T, nd, H]``);
  the states (MXNet ``[nd, N, H]``, the IR ``[N, nd, H]``) are swapped likewise.
- Its weights are one flat ``parameters`` vector in Gluon's order
  (``rnn_layer.py``: ``for t in (weight, bias) for direction for (i2h, h2h)``):
  every direction's W then R, then every direction's input then recurrent bias;
  MXNet's gate orders are LSTM i, f, g(c), o and GRU r, z, n (the IR's i, o, f, c and
  z, r, h re-ordered at emit time, as for PyTorch); it is stored as the parameter
  ``<node>/parameters``.
- An absent initial state is ``zeros(shape=(nd, 0, H))``, the batch axis left to
  MXNet's shape inference (what Gluon writes for a symbolic ``begin_state``).
- A reverse-only run is a forward ``RNN`` between two ``reverse(axis=0)`` (MXNet has
  no reverse-only mode); its last state is the one after step 0, as the IR's.
- MXNet's CPU ``RNN`` has no float16 kernel: a float16 layer runs in float32 between
  ``Cast`` nodes (its parameters stored in float32).
- ``sequence_lens``: the op's ``use_sequence_length`` is cuDNN-only (mxnet 1.9.1 on CPU
  ignores the lengths: measured), so a node with lengths is one forward ``RNN`` per
  direction (``<node>/parameters_<d>``) over the whole time axis, a reverse direction
  over ``SequenceReverse``d prefixes, then ``SequenceMask`` (zeros past each end, ONNX's
  Y) and ``SequenceLast`` (the last valid h, ONNX's Y_h; a row of length 0 keeps its
  initial state, through ``where``).  The last valid cell state is no output of the
  op: a used Y_c with lengths goes through the loop.

What the fused op cannot compute -- peepholes, ``input_forget``, ``clip`` (MXNet's
``lstm_state_clip`` clips the cell state, not the gate inputs), activations other than
the defaults (RNN: tanh or relu, the same in both directions), a GRU with
``linear_before_reset=0`` (CNTK's: MXNet resets after the recurrent product), a used
Y_c with ``sequence_lens`` -- is a ``_foreach`` loop over ONNX's step arithmetic
(:mod:`.recurrent_loop`), lengths included.  Refused, naming the node: weights
computed at run time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext, Entry
from mmconv.emitters.mxnet.recurrent_loop import emit_loop
from mmconv.emitters.mxnet.symbol import AttrValue
from mmconv.ir.core import Node
from mmconv.ir.ops.recurrent import DEFAULT_ACTIVATIONS, num_directions

#: IR gate blocks in MXNet's order: LSTM iofc -> ifco (i, f, g, o); GRU zrh -> rzh (r, z, n).
_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}


def _port(node: Node, i: int) -> str:
    return node.inputs[i] if len(node.inputs) > i else ""


def _mode(node: Node) -> str:
    if node.op == "LSTM":
        return "lstm"
    if node.op == "GRU":
        return "gru"
    acts = tuple(node.attr("activations"))
    return "rnn_relu" if acts[:1] == ("Relu",) else "rnn_tanh"


def _needs_loop(node: Node) -> str:
    """Why the fused RNN operator cannot compute ``node`` (it then becomes a
    ``_foreach`` loop, :mod:`.recurrent_loop`), or ''."""
    op, nd = node.op, num_directions(node)
    acts = tuple(node.attr("activations"))
    if op == "RNN":
        if acts and (acts[0] not in ("Tanh", "Relu") or len(set(acts)) != 1):
            return f"activations {list(acts)}"
    elif acts and acts != DEFAULT_ACTIVATIONS[op] * nd:
        return f"activations {list(acts)}"
    if node.attr("clip"):
        return "clip"
    if op == "LSTM" and node.attr("input_forget"):
        return "input_forget"
    if op == "LSTM" and _port(node, 7):
        return "peepholes"
    if op == "GRU" and not node.attr("linear_before_reset"):
        return "linear_before_reset=0"
    return ""


def _refusal(ctx: EmitContext, node: Node) -> str | None:
    """Why MXNet cannot compute ``node`` exactly, or None."""
    for i in (1, 2, 3, 7):
        if _port(node, i) and ctx.weight(node.inputs[i]) is None:
            return f"weight {node.inputs[i]!r} is computed at run time; MXNet's RNN needs it " \
                   "constant (laid out at emit time)"
    return None


def _loop_reason(ctx: EmitContext, node: Node) -> str:
    """Why ``node`` goes through the ``_foreach`` loop, or '' (the fused RNN)."""
    if _needs_loop(node):
        return _needs_loop(node)
    if _port(node, 4) and node.op == "LSTM" and len(node.outputs) > 2 and node.outputs[2] \
            and ctx.uses(node.outputs[2]):
        return "Y_c with sequence_lens"  # the fused op has no per-step cell state
    return ""


def _reorder(array: np.ndarray, op: str) -> np.ndarray:
    blocks = np.split(np.asarray(array), len(_ORDER[op]), axis=0)
    return np.concatenate([blocks[i] for i in _ORDER[op]], axis=0)


def pack_parameters(op: str, w: np.ndarray, r: np.ndarray, b: np.ndarray | None,
                    dtype: str) -> np.ndarray:
    """IR W [nd, G*H, in], R [nd, G*H, H], B [nd, 2*G*H] (or None: zeros) as MXNet's flat
    ``parameters`` vector: each direction's W then R, then each direction's two biases,
    gates in MXNet's order."""
    nd, gh = w.shape[0], w.shape[1]
    if b is None:
        b = np.zeros((nd, 2 * gh), w.dtype)
    weights = [_reorder(m[d], op).reshape(-1) for d in range(nd) for m in (w, r)]
    biases = [_reorder(half, op) for d in range(nd) for half in (b[d, :gh], b[d, gh:])]
    return np.concatenate(weights + biases).astype(dtype)


def _swap(ctx: EmitContext, entry: Entry, hint: str) -> Entry:
    return ctx.op("SwapAxis", [entry], hint, dim1=0, dim2=1)


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    why = _refusal(ctx, node)
    if why:
        raise ctx.unsupported(node, why)
    op, nd, hidden = node.op, num_directions(node), int(node.attr("hidden_size"))
    x_name = node.inputs[0]
    dtype = ctx.dtype(x_name)
    run_dtype = "float32" if dtype == "float16" else dtype  # no float16 RNN on CPU

    def cast(entry: Entry, hint: str) -> Entry:
        return entry if dtype == run_dtype else ctx.op("Cast", [entry], hint, dtype=run_dtype)

    w, r = ctx.weight(node.inputs[1]), ctx.weight(node.inputs[2])
    assert w is not None and r is not None
    b = ctx.weight(node.inputs[3]) if _port(node, 3) else None
    w, r = np.asarray(w), np.asarray(r)
    b = None if b is None else np.asarray(b)
    x_rows = cast(ctx.input(x_name), "x_float32")
    x = _swap(ctx, x_rows, "time_major")
    n_states = 2 if op == "LSTM" else 1
    given = [cast(ctx.input(_port(node, 5 + i)), f"{('initial_h', 'initial_c')[i]}_float32")
             if _port(node, 5 + i) else None for i in range(n_states)]
    attrs: dict[str, AttrValue] = {"mode": _mode(node), "state_size": hidden, "num_layers": 1}

    def states(d: int | None) -> list[Entry]:
        """The RNN's initial states [nd', N, H]: of direction ``d`` only, or all (None)."""
        out = []
        for i, entry in enumerate(given):
            port = ("initial_h", "initial_c")[i]
            if entry is None:
                out.append(ctx.op("_zeros", [], f"{port}_zeros",
                                  shape=(nd if d is None else 1, 0, hidden), dtype=run_dtype))
                continue
            if d is not None and nd > 1:
                entry = ctx.op("slice_axis", [entry], f"{port}_{d}", axis=1, begin=d, end=d + 1)
            out.append(_swap(ctx, entry, f"{port}_nnc" if d is None else f"{port}_{d}_nnc"))
        return out

    if _loop_reason(ctx, node):
        lens = ctx.input(node.inputs[4]) if _port(node, 4) else None
        y, last = emit_loop(ctx, node, x_rows, x, given, run_dtype, lens)
    elif _port(node, 4):
        y, last = _with_lengths(ctx, node, x, ctx.input(node.inputs[4]), states, attrs,
                                (w, r, b), run_dtype)
    else:
        params = ctx.new_param(pack_parameters(op, w, r, b, run_dtype), "parameters")
        reverse = node.attr("direction") == "reverse"
        if reverse:
            x = ctx.op("reverse", [x], "reversed", axis=0)
        rnn = ctx.op("RNN", [x, params, *states(None)], "rnn", num_outputs=1 + n_states,
                     bidirectional=nd == 2 or None, state_outputs=True, **attrs)
        y = ctx.op("reverse", [rnn], "unreversed", axis=0) if reverse else rnn
        last = [(rnn[0], 1 + i) for i in range(n_states)]
    for i, out in enumerate(node.outputs[:1 + n_states]):
        if not out or (i > 0 and last[i - 1] is None):
            continue
        port = ("Y", "Y_h", "Y_c")[i]
        steps: list[tuple[str, dict[str, AttrValue]]] = [("SwapAxis", {"dim1": 0, "dim2": 1})]
        if i == 0:  # [N, T, nd*H] -> [N, T, nd, H]
            steps.append(("Reshape", {"shape": (0, 0, nd, hidden)}))
        if dtype != run_dtype:
            steps.append(("Cast", {"dtype": dtype}))
        entry = y if i == 0 else last[i - 1]
        for k, (step, step_attrs) in enumerate(steps):
            final = k == len(steps) - 1
            entry = ctx.op(step, [entry], f"{port}_{step}", out=out if final else None,
                           **step_attrs)


def _with_lengths(ctx: EmitContext, node: Node, x: Entry, lens: Entry,
                  states: Callable[[int | None], list[Entry]], attrs: dict[str, AttrValue],
                  weights: tuple[np.ndarray, np.ndarray, np.ndarray | None], run_dtype: str
                  ) -> tuple[Entry, list[Entry | None]]:
    """ONNX's sequence_lens without MXNet's (CPU-ignored) ``use_sequence_length``: one
    forward RNN per direction over the full time axis (a step's output depends on the
    steps before it only), a reverse direction over ``SequenceReverse``d prefixes; then
    ``SequenceMask`` (zeros past each end) and ``SequenceLast`` (the last valid h).
    Time-major Y [T, N, nd*H] and the Y_h [nd, N, H] (Y_c: None; a used one goes
    through the loop instead)."""
    w, r, b = weights
    nd = w.shape[0]
    seq = {"use_sequence_length": True}
    ys, lasts = [], []
    # SequenceLast reads step len-1 (out of bounds for 0); a row without steps keeps its
    # initial state (ONNX), chosen by where(len > 0)
    at_least_1 = ctx.op("_maximum_scalar", [lens], "lens_at_least_1", scalar=1)
    live = ctx.op("_greater_scalar", [lens], "has_steps", scalar=0)
    for d in range(nd):
        reverse = d == 1 or node.attr("direction") == "reverse"
        xd = ctx.op("SequenceReverse", [x, lens], f"reversed_{d}", **seq) if reverse else x
        params = ctx.new_param(pack_parameters(
            node.op, w[d:d + 1], r[d:d + 1], None if b is None else b[d:d + 1], run_dtype),
            f"parameters_{d}")
        init = states(d)
        yd = ctx.op("RNN", [xd, params, *init], f"rnn_{d}", **attrs)
        last = ctx.op("SequenceLast", [yd, at_least_1], f"last_{d}", **seq)  # [N, H]
        h0_rows = ctx.op("Reshape", [init[0]], f"initial_h_{d}_rows", shape=(-3, -2))  # [N, H]
        lasts.append(ctx.op("where", [live, last, h0_rows], f"Y_h_{d}"))
        if reverse:
            yd = ctx.op("SequenceReverse", [yd, lens], f"unreversed_{d}", **seq)
        ys.append(ctx.op("SequenceMask", [yd, lens], f"masked_{d}", value=0.0, **seq))
    y = ys[0] if nd == 1 else ctx.op("Concat", ys, "directions", dim=2, num_args=nd)
    last = ctx.op("stack", lasts, "Y_h_stack", axis=0, num_args=nd)  # [nd, N, H]
    return y, [last, None]
