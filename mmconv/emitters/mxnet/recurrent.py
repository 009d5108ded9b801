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

What the fused op cannot compute is refused, naming the node: peepholes,
``input_forget``, ``clip`` (MXNet's ``lstm_state_clip`` clips the cell state, not the
gate inputs), activations other than the defaults (RNN: tanh or relu, the same in both
directions), a GRU with ``linear_before_reset=0`` (CNTK's: MXNet resets after the
recurrent product), ``sequence_lens`` (``use_sequence_length`` is cuDNN-only: on
CPU mxnet 1.9.1 ignores the lengths), and weights computed at run time.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.mxnet.context import HANDLERS, EmitContext, Entry
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


def _refusal(ctx: EmitContext, node: Node) -> str | None:
    """Why MXNet's fused RNN cannot compute ``node`` exactly, or None."""
    op, nd = node.op, num_directions(node)
    acts = tuple(node.attr("activations"))
    if op == "RNN":
        if acts and (acts[0] not in ("Tanh", "Relu") or len(set(acts)) != 1):
            return f"MXNet's RNN activation is tanh or relu (both directions), got {list(acts)}"
    elif acts and acts != DEFAULT_ACTIVATIONS[op] * nd:
        return f"{op} activations {list(acts)} are not MXNet's fixed ones"
    if node.attr("clip"):
        return "clip has no MXNet RNN equivalent (lstm_state_clip clips the cell state)"
    if op == "LSTM" and node.attr("input_forget"):
        return "input_forget=1 has no MXNet RNN equivalent"
    if op == "LSTM" and _port(node, 7):
        return "peepholes have no MXNet RNN equivalent"
    if op == "GRU" and not node.attr("linear_before_reset"):
        return ("a GRU with linear_before_reset=0 (reset before the recurrent product, "
                "CNTK's) has no MXNet RNN equivalent (MXNet resets after it)")
    if _port(node, 4):
        return "sequence_lens: MXNet's use_sequence_length is cuDNN-only (ignored on CPU)"
    for i in (1, 2, 3):
        if _port(node, i) and ctx.weight(node.inputs[i]) is None:
            return f"weight {node.inputs[i]!r} is computed at run time; MXNet's RNN needs it " \
                   "constant (packed into one parameter vector)"
    return None


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
    params = ctx.new_param(pack_parameters(op, np.asarray(w), np.asarray(r),
                                           None if b is None else np.asarray(b), run_dtype),
                           "parameters")

    x = _swap(ctx, cast(ctx.input(x_name), "x_float32"), "time_major")
    reverse = node.attr("direction") == "reverse"
    if reverse:
        x = ctx.op("reverse", [x], "reversed", axis=0)
    states = []
    for i, port in enumerate(("initial_h", "initial_c")[:2 if op == "LSTM" else 1]):
        name = _port(node, 5 + i)
        if name:
            states.append(_swap(ctx, cast(ctx.input(name), f"{port}_float32"),
                                f"{port}_nnc"))
        else:
            states.append(ctx.op("_zeros", [], f"{port}_zeros", shape=(nd, 0, hidden),
                                 dtype=run_dtype))
    n_out = 3 if op == "LSTM" else 2
    rnn = ctx.op("RNN", [x, params, *states], "rnn", num_outputs=n_out, mode=_mode(node),
                 state_size=hidden, num_layers=1, bidirectional=nd == 2 or None,
                 state_outputs=True)
    y = ctx.op("reverse", [rnn], "unreversed", axis=0) if reverse else rnn
    for i, out in enumerate(node.outputs[:n_out]):
        if not out:
            continue
        port = ("Y", "Y_h", "Y_c")[i]
        steps: list[tuple[str, dict[str, AttrValue]]] = [("SwapAxis", {"dim1": 0, "dim2": 1})]
        if i == 0:  # [N, T, nd*H] -> [N, T, nd, H]
            steps.append(("Reshape", {"shape": (0, 0, nd, hidden)}))
        if dtype != run_dtype:
            steps.append(("Cast", {"dtype": dtype}))
        entry = y if i == 0 else (rnn[0], i)
        for k, (step, attrs) in enumerate(steps):
            last = k == len(steps) - 1
            entry = ctx.op(step, [entry], f"{port}_{step}", out=out if last else None, **attrs)
