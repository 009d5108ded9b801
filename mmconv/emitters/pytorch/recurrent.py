"""LSTM, GRU and RNN as ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``batch_first=True``.

One IR node is one module (bidirectional when the IR node is), so the model stays
retrainable and cuDNN-fast.  Weights are re-ordered from ONNX's gate order to
PyTorch's: LSTM i,o,f,c -> i,f,g,o; GRU z,r,h -> r,z,n.  Reverse-only runs flip the
time axis around a forward module; sequence_lens go through ``pack_padded_sequence``,
which gives ONNX's semantics (zeros past a sequence's end, its last valid state in Y_h).

Everything those modules cannot compute exactly becomes the generated ``_Recurrent``
module, a time loop over the ONNX-layout parameters (TorchScript-compatible,
trainable, slower than cuDNN's): peepholes, a GRU with linear_before_reset=0 (CNTK's;
nn.GRU applies the reset gate after the recurrent product), any other activation list
(CNTK RNNStep's sigmoid, a relu LSTM, HardSigmoid gates, alpha/beta), clip,
input_forget, a reverse-only run with sequence_lens.  A node whose W/R/B/P is computed
at run time calls the loop's function ``_recurrent`` on those values.  Nothing
recurrent is refused.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node
from mmconv.ir.ops.recurrent import DEFAULT_ACTIVATIONS, GATES, activations, num_directions

#: ONNX gate blocks in PyTorch's order: LSTM iofc -> ifco (PyTorch's i, f, g, o), GRU zrh -> rzh.
_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}


def _reorder(array: np.ndarray, op: str) -> np.ndarray:
    blocks = np.split(np.asarray(array), len(_ORDER[op]), axis=0)
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in _ORDER[op]], axis=0))


def _looped(ctx: EmitContext, node: Node) -> bool:
    """Whether ``node`` needs the generated ``_Recurrent`` loop: anything nn.LSTM/GRU/RNN
    cannot compute exactly (they stay the form for everything they can)."""
    op = node.op
    acts = tuple(node.attr("activations"))
    nd = num_directions(node)
    if op == "RNN":
        odd_acts = bool(acts) and (acts[0] not in ("Tanh", "Relu") or len(set(acts)) != 1)
    else:
        odd_acts = bool(acts) and acts != DEFAULT_ACTIVATIONS[op] * nd
    lens = len(node.inputs) > 4 and bool(node.inputs[4])
    return (odd_acts or bool(node.attr("clip"))
            or (op == "LSTM" and bool(node.attr("input_forget")))
            or (op == "LSTM" and len(node.inputs) > 7 and bool(node.inputs[7]))
            or (op == "GRU" and not node.attr("linear_before_reset"))
            or (lens and node.attr("direction") == "reverse")
            or any(port and ctx.weight(port) is None for port in node.inputs[1:4]))


def _emit_looped(ctx: EmitContext, node: Node) -> None:
    """The generated ``_Recurrent`` module on ONNX-layout parameters (no re-ordering);
    weights computed at run time go to its loop function ``_recurrent`` directly."""
    op, hidden = node.op, int(node.attr("hidden_size"))
    nd, g = num_directions(node), GATES[op]
    size = ctx.shape(node.inputs[0])[2]
    ports = {"weight_ih": node.input(1), "weight_hh": node.input(2), "bias": node.input(3),
             "peephole": node.input(7) if op == "LSTM" and len(node.inputs) > 7 else ""}
    consts = {k: ctx.weight(v) if v else None for k, v in ports.items()}
    acts = activations(node)
    config = [literal(op), literal(node.attr("direction") == "reverse"),
              literal([a[0] for a in acts]),
              literal([0.0 if a[1] is None else float(a[1]) for a in acts]),
              literal([0.0 if a[2] is None else float(a[2]) for a in acts]),
              literal(float(node.attr("clip"))),
              literal(op == "LSTM" and bool(node.attr("input_forget"))),
              literal(op == "GRU" and bool(node.attr("linear_before_reset")))]
    x = ctx.value(node.inputs[0])
    zeros = f"torch.zeros({x}.shape[0], {nd}, {hidden}, dtype={x}.dtype)"
    states = []
    for i in (5, 6):
        port = node.input(i) if len(node.inputs) > i else ""
        states.append(ctx.value(port) if port and (i == 5 or op == "LSTM") else zeros)
    lens = ctx.value(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else "None"
    outs = [ctx.out(node, i) for i in range(len(node.outputs))]
    names = [*outs] + [ctx.locals(ctx.fresh(f"{node.name}_unused"))
                       for _ in range(3 - len(outs))]
    ctx.helper("_Recurrent")
    shapes = {"weight_ih": (nd, g * hidden, size), "weight_hh": (nd, g * hidden, hidden),
              "bias": (nd, 2 * g * hidden), "peephole": (nd, 3 * hidden)}
    if all(consts[k] is not None or not ports[k] for k in ("bias", "peephole")) and \
            consts["weight_ih"] is not None and consts["weight_hh"] is not None:
        dtype = consts["weight_ih"].dtype
        params = {k: np.zeros(shapes[k], dtype) if consts[k] is None else np.asarray(consts[k])
                  for k in shapes}
        keys = ("reverse", "activations", "alphas", "betas", "clip", "input_forget",
                "linear_before_reset")
        ctor = (f"_Recurrent({config[0]}, {size}, {hidden}, {nd}, "
                f"{', '.join(f'{k}={v}' for k, v in zip(keys, config[1:], strict=True))}"
                f"{ctx.dtype_kw(node.inputs[0])})")
        layer = ctx.layer(node, ctor, params)
        ctx.line(f"{', '.join(names)} = {layer}({x}, {states[0]}, {states[1]}, {lens})")
        return
    # a weight computed at run time: the loop function on the values themselves
    args = []
    for k, port in ports.items():
        if port:
            args.append(ctx.value(port))
        else:
            args.append(f"torch.zeros({literal(shapes[k])}, dtype={x}.dtype)")
    ctx.line(f"{', '.join(names)} = _recurrent({x}, {states[0]}, {states[1]}, {lens}, "
             f"{', '.join(args)}, {', '.join(config)})")


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    if _looped(ctx, node):
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
