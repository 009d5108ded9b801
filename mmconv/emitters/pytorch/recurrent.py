"""LSTM, GRU and RNN as ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``batch_first=True``.

One IR node is one module (bidirectional when the IR node is), so the model stays
retrainable and cuDNN-fast.  Weights are re-ordered from ONNX's gate order to
PyTorch's: LSTM i,o,f,c -> i,f,g,o; GRU z,r,h -> r,z,n.  What PyTorch's cells cannot
compute is refused, naming the node: input_forget, clip, activations other than
the defaults (RNN: tanh or relu).  An LSTM with peepholes and a GRU with
linear_before_reset=0 (CNTK's; nn.GRU applies the reset gate after the recurrent
product) become the generated ``_Recurrent`` module, a time loop over the ONNX-layout
parameters (TorchScript-compatible, trainable, slower than cuDNN's).  Reverse-only
runs flip the time axis around a forward module; sequence_lens go through
``pack_padded_sequence``, which gives ONNX's semantics (zeros past a sequence's end,
its last valid state in Y_h).
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

#: ONNX gate blocks in PyTorch's order: LSTM iofc -> ifco (PyTorch's i, f, g, o), GRU zrh -> rzh.
_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}
_DEFAULTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh")}


def _reorder(array: np.ndarray, op: str) -> np.ndarray:
    blocks = np.split(np.asarray(array), len(_ORDER[op]), axis=0)
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in _ORDER[op]], axis=0))


def _refusal(ctx: EmitContext, node: Node) -> str | None:
    """Why nn.LSTM/GRU/RNN cannot compute ``node`` exactly, or None."""
    op = node.op
    if op == "LSTM" and node.attr("input_forget"):
        return "input_forget=1 has no nn.LSTM equivalent"
    if node.attr("clip"):
        return "clip has no PyTorch RNN-module equivalent"
    acts = tuple(node.attr("activations"))
    nd = 2 if node.attr("direction") == "bidirectional" else 1
    if op == "RNN":
        if acts and (acts[0] not in ("Tanh", "Relu") or len(set(acts)) != 1):
            return f"nn.RNN's nonlinearity is tanh or relu (both directions), got {list(acts)}"
    elif acts and acts != _DEFAULTS[op] * nd:
        return f"{op} activations {list(acts)} are not PyTorch's fixed ones"
    for port in node.inputs[1:4]:
        if port and ctx.weight(port) is None:
            return f"weight {port!r} is computed at run time; nn.{op} needs it constant"
    if len(node.inputs) > 4 and node.inputs[4] and node.attr("direction") == "reverse":
        return "a reverse-only run with sequence_lens (flip each sequence's prefix) is not " \
               "written yet"
    if _looped(node) and len(node.inputs) > 4 and node.inputs[4]:
        return "sequence_lens with peepholes or a reset-before GRU is not written yet"
    return None


def _looped(node: Node) -> bool:
    """Whether ``node`` needs the ``_Recurrent`` loop instead of an nn module."""
    peepholes = node.op == "LSTM" and len(node.inputs) > 7 and bool(node.inputs[7])
    return peepholes or (node.op == "GRU" and not node.attr("linear_before_reset"))


def _emit_looped(ctx: EmitContext, node: Node) -> None:
    """The generated ``_Recurrent`` module on ONNX-layout parameters (no re-ordering)."""
    op, hidden = node.op, int(node.attr("hidden_size"))
    w, r = ctx.weight(node.inputs[1]), ctx.weight(node.inputs[2])
    assert w is not None and r is not None
    nd, size, g = w.shape[0], w.shape[2], w.shape[1] // hidden
    b = ctx.weight(node.input(3)) if node.input(3) else None
    p = ctx.weight(node.inputs[7]) if op == "LSTM" and len(node.inputs) > 7 \
        and node.inputs[7] else None
    if op == "LSTM" and len(node.inputs) > 7 and node.inputs[7] and p is None:
        raise ctx.unsupported(node, "peepholes computed at run time")
    params = {"weight_ih": np.asarray(w), "weight_hh": np.asarray(r),
              "bias": np.zeros((nd, 2 * g * hidden), w.dtype) if b is None else np.asarray(b),
              "peephole": np.zeros((nd, 3 * hidden), w.dtype) if p is None else np.asarray(p)}
    reverse = node.attr("direction") == "reverse"
    ctor = (f"{ctx.helper('_Recurrent')}({literal(op)}, {size}, {hidden}, {nd}, "
            f"{literal(reverse)})")
    layer = ctx.layer(node, ctor, params)
    x = ctx.value(node.inputs[0])
    zeros = f"torch.zeros({x}.shape[0], {nd}, {hidden}, dtype={x}.dtype)"
    states = []
    for i in (5, 6):
        port = node.input(i) if len(node.inputs) > i else ""
        states.append(ctx.value(port) if port and (i == 5 or op == "LSTM") else zeros)
    outs = [ctx.out(node, i) for i in range(len(node.outputs))]
    names = [*outs] + [ctx.locals(ctx.fresh(f"{node.name}_unused"))
                       for _ in range(3 - len(outs))]
    ctx.line(f"{', '.join(names)} = {layer}({x}, {states[0]}, {states[1]})")


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    why = _refusal(ctx, node)
    if why:
        raise ctx.unsupported(node, why)
    if _looped(node):
        _emit_looped(ctx, node)
        return
    op, direction = node.op, node.attr("direction")
    hidden = int(node.attr("hidden_size"))
    w, r = ctx.weight(node.inputs[1]), ctx.weight(node.inputs[2])
    assert w is not None and r is not None
    b = ctx.weight(node.input(3)) if node.input(3) else None
    nd, size = w.shape[0], w.shape[2]
    params: dict[str, np.ndarray] = {}
    for d in range(nd):
        sfx = "_l0_reverse" if d == 1 else "_l0"
        params[f"weight_ih{sfx}"] = _reorder(w[d], op)
        params[f"weight_hh{sfx}"] = _reorder(r[d], op)
        if b is not None:
            params[f"bias_ih{sfx}"] = _reorder(b[d, :b.shape[1] // 2], op)
            params[f"bias_hh{sfx}"] = _reorder(b[d, b.shape[1] // 2:], op)
    kw = [f"{size}", f"{hidden}", "batch_first=True"]
    if b is None:
        kw.append("bias=False")
    if nd == 2:
        kw.append("bidirectional=True")
    if op == "RNN" and tuple(node.attr("activations"))[:1] == ("Relu",):
        kw.append("nonlinearity='relu'")
    x_name = node.inputs[0]
    ctor = f"nn.{op}({', '.join(kw)}{ctx.dtype_kw(x_name)})"
    layer = ctx.layer(node, ctor, params)

    x = ctx.value(x_name)
    lens = ctx.value(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else ""
    states = []
    for i in (5, 6)[: 2 if op == "LSTM" else 1]:
        port = node.input(i) if len(node.inputs) > i else ""
        states.append(f"{ctx.value(port)}.transpose(0, 1).contiguous()" if port else "")
    if op == "LSTM" and any(states):  # nn.LSTM wants both or neither
        tmpl = next(s for s in states if s)
        states = [s or f"torch.zeros_like({tmpl})" for s in states]
    state_arg = ""
    if op == "LSTM" and states[0]:
        state_arg = f", ({states[0]}, {states[1]})"
    elif op != "LSTM" and states[0]:
        state_arg = f", {states[0]}"

    seq = ctx.fresh(f"{node.name}_seq")
    seq_v = ctx.locals(seq)
    last = ctx.locals(ctx.fresh(f"{node.name}_state"))
    inp = f"torch.flip({x}, [1])" if direction == "reverse" else x
    if lens:
        packed = ("nn.utils.rnn.pack_padded_sequence("
                  f"{inp}, {lens}.to(torch.int64).cpu(), batch_first=True, "
                  "enforce_sorted=False)")
        ctx.line(f"{seq_v}, {last} = {layer}({packed}{state_arg})")
        ctx.line(f"{seq_v} = nn.utils.rnn.pad_packed_sequence({seq_v}, batch_first=True, "
                 f"total_length={x}.shape[1])[0]")
    else:
        ctx.line(f"{seq_v}, {last} = {layer}({inp}{state_arg})")
    if direction == "reverse":
        ctx.line(f"{seq_v} = torch.flip({seq_v}, [1])")
    outs = [ctx.out(node, i) for i in range(len(node.outputs))]
    ctx.line(f"{outs[0]} = {seq_v}.reshape({seq_v}.shape[0], {seq_v}.shape[1], "
             f"{literal(nd)}, {literal(hidden)})")
    if len(outs) > 1:
        h_last = f"{last}[0]" if op == "LSTM" else last
        ctx.line(f"{outs[1]} = {h_last}.transpose(0, 1)")
    if len(outs) > 2:
        ctx.line(f"{outs[2]} = {last}[1].transpose(0, 1)")
