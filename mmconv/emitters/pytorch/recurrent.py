"""LSTM, GRU and RNN as ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``batch_first=True``.

One IR node is one module (bidirectional when the IR node is), so the model stays
retrainable and cuDNN-fast.  Weights are re-ordered once, here, from ONNX's gate order
to PyTorch's: LSTM i,o,f,c -> i,f,g,o (peepholes i,o,f -> i,f,o); GRU z,r,h -> r,z,n.
Reverse-only runs flip the time axis around a forward module; sequence_lens go through
``pack_padded_sequence``, which gives ONNX's semantics (zeros past a sequence's end, its
last valid state in Y_h).

What those modules cannot compute exactly becomes the generated subclass ``OnnxLSTM``,
``OnnxGRU`` or ``OnnxRNN`` (helpers.py): an nn.LSTM/GRU/RNN with the same constructor
arguments, parameters and names, whose forward is a TorchScript-compatible time loop
(trainable, slower than cuDNN): peepholes (its only extra parameters), a GRU with
linear_before_reset=0 (CNTK's; nn.GRU applies the reset gate after the recurrent
product), any other activation list (CNTK RNNStep's sigmoid, a relu LSTM, HardSigmoid
gates, alpha/beta), clip, input_forget, a reverse-only run with sequence_lens.  A node
whose W/R/B/P is computed at run time calls the loop's function ``_recurrent`` on
those values, re-ordered in forward.  Nothing recurrent is refused.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node
from mmconv.ir.ops.recurrent import DEFAULT_ACTIVATIONS, GATES, activations, num_directions

#: ONNX gate blocks in PyTorch's order: LSTM iofc -> ifco (PyTorch's i, f, g, o), GRU zrh
#: -> rzh; "P" the LSTM peepholes iof -> ifo.
_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,), "P": (0, 2, 1)}


def _reorder(array: np.ndarray, op: str) -> np.ndarray:
    blocks = np.split(np.asarray(array), len(_ORDER[op]), axis=0)
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in _ORDER[op]], axis=0))


def _reorder_expr(value: str, op: str, hidden: int, start: int = 0) -> str:
    """Code re-ordering axis 1 of a run-time [D, blocks*H, ...] value (from ``start``) as
    :func:`_reorder` does a constant."""
    order = _ORDER[op]
    if order == (0,):
        return f"{value}[:, {start}:{start + hidden}]"
    parts = [f"{value}[:, {start + i * hidden}:{start + (i + 1) * hidden}]" for i in order]
    return f"torch.cat([{', '.join(parts)}], 1)"


def _looped(ctx: EmitContext, node: Node) -> bool:
    """Whether ``node`` needs the time loop (an Onnx* subclass or, for weights computed
    at run time, ``_recurrent``): anything nn.LSTM/GRU/RNN cannot compute exactly (they
    stay the form for everything they can)."""
    op = node.op
    acts = tuple(node.attr("activations"))
    nd = num_directions(node)
    if op == "RNN":
        odd_acts = bool(acts) and (acts[0] not in ("Tanh", "Relu") or len(set(acts)) != 1)
    else:
        odd_acts = bool(acts) and acts != DEFAULT_ACTIVATIONS[op] * nd
    lens = len(node.inputs) > 4 and bool(node.inputs[4])
    return (odd_acts or bool(node.attr("clip"))
            or bool(node.attr("activation_alpha")) or bool(node.attr("activation_beta"))
            or (op == "LSTM" and bool(node.attr("input_forget")))
            or (op == "LSTM" and len(node.inputs) > 7 and bool(node.inputs[7]))
            or (op == "GRU" and not node.attr("linear_before_reset"))
            or (lens and node.attr("direction") == "reverse")
            or any(port and ctx.weight(port) is None for port in node.inputs[1:4]))


def _loop_config(node: Node) -> dict[str, object]:
    """The ONNX attributes nn.* has no argument for, as the loop takes them."""
    acts = activations(node)
    return {"reverse": node.attr("direction") == "reverse",
            "activations": [a[0] for a in acts],
            "alphas": [0.0 if a[1] is None else float(a[1]) for a in acts],
            "betas": [0.0 if a[2] is None else float(a[2]) for a in acts],
            "clip": float(node.attr("clip")),
            "input_forget": node.op == "LSTM" and bool(node.attr("input_forget")),
            "linear_before_reset": node.op != "GRU" or bool(node.attr("linear_before_reset"))}


def _subclass_kwargs(node: Node, peepholes: bool, relu: bool) -> list[str]:
    """The Onnx* subclass' keyword arguments that differ from the nn.* computation its
    defaults give (activations default to nn.*'s, nonlinearity included)."""
    config = _loop_config(node)
    nd = num_directions(node)
    default = ["Relu"] * nd if relu else list(DEFAULT_ACTIVATIONS[node.op]) * nd
    kw = ["peepholes=True"] if peepholes else []
    if config["activations"] != default:
        kw.append(f"activations={literal(config['activations'])}")
    for key in ("alphas", "betas"):
        if any(config[key]):  # type: ignore[attr-defined]
            kw.append(f"{key}={literal(config[key])}")
    if config["clip"]:
        kw.append(f"clip={literal(config['clip'])}")
    for key in ("reverse", "input_forget"):
        if config[key]:
            kw.append(f"{key}=True")
    if not config["linear_before_reset"]:
        kw.append("linear_before_reset=False")
    return kw


def _emit_function(ctx: EmitContext, node: Node) -> None:
    """A W/R/B/P computed at run time: the loop function ``_recurrent`` on those values,
    re-ordered to PyTorch's layout in forward."""
    op, hidden = node.op, int(node.attr("hidden_size"))
    nd, g = num_directions(node), GATES[op]
    x = ctx.value(node.inputs[0])
    ctx.helper("_recurrent")

    def local(what: str, expr: str) -> str:
        var = ctx.locals(ctx.fresh(f"{node.name}_{what}"))
        ctx.line(f"{var} = {expr}")
        return var

    w = local("weight_ih", _reorder_expr(ctx.value(node.input(1)), op, hidden))
    r = local("weight_hh", _reorder_expr(ctx.value(node.input(2)), op, hidden))
    if node.input(3):
        bias = ctx.value(node.input(3))
        b_ih = local("bias_ih", _reorder_expr(bias, op, hidden))
        b_hh = local("bias_hh", _reorder_expr(bias, op, hidden, g * hidden))
    else:
        b_ih = b_hh = local("bias", f"{x}.new_zeros([{nd}, {g * hidden}])")
    peephole = node.input(7) if op == "LSTM" and len(node.inputs) > 7 else ""
    p = (local("peephole", _reorder_expr(ctx.value(peephole), "P", hidden)) if peephole
         else local("peephole", f"{x}.new_zeros([{nd}, {3 * hidden}])"))
    weights = ", ".join(f"{v}[{d}]" for d in range(nd) for v in (w, r, b_ih, b_hh, p))
    zeros = f"{x}.new_zeros([{nd}, {x}.shape[0], {hidden}])"
    states = []
    for i in (5, 6):
        port = node.input(i) if len(node.inputs) > i else ""
        states.append(f"{ctx.value(port)}.transpose(0, 1)" if port and (i == 5 or op == "LSTM")
                      else zeros)
    lens = ctx.value(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else "None"
    seq, h, c = (ctx.locals(ctx.fresh(f"{node.name}_{k}")) for k in ("seq", "h", "c"))
    config = ", ".join(literal(v) for v in _loop_config(node).values())
    ctx.line(f"{seq}, {h}, {c} = _recurrent({x}, {states[0]}, {states[1]}, {lens}, "
             f"[{weights}], {literal(op)}, {config})")
    _outputs(ctx, node, seq, h, c)


def _outputs(ctx: EmitContext, node: Node, seq: str, h: str, c: str) -> None:
    """Y [N, T, D, H], Y_h and Y_c [N, D, H] from nn.*'s output and states."""
    outs = [ctx.out(node, i) for i in range(len(node.outputs))]
    ctx.line(f"{outs[0]} = {seq}.reshape({seq}.shape[0], {seq}.shape[1], "
             f"{literal(num_directions(node))}, {literal(int(node.attr('hidden_size')))})")
    if len(outs) > 1:
        ctx.line(f"{outs[1]} = {h}.transpose(0, 1)")
    if len(outs) > 2:
        ctx.line(f"{outs[2]} = {c}.transpose(0, 1)")


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    looped = _looped(ctx, node)
    if looped and any(port and ctx.weight(port) is None for port in node.inputs[1:4]
                      + node.inputs[7:8]):
        _emit_function(ctx, node)
        return
    op, direction = node.op, node.attr("direction")
    hidden = int(node.attr("hidden_size"))
    w, r = ctx.weight(node.inputs[1]), ctx.weight(node.inputs[2])
    assert w is not None and r is not None
    b = ctx.weight(node.input(3)) if node.input(3) else None
    p = ctx.weight(node.input(7)) if op == "LSTM" and len(node.inputs) > 7 and \
        node.inputs[7] else None
    nd, size = w.shape[0], w.shape[2]
    params: dict[str, np.ndarray] = {}
    for d in range(nd):
        sfx = "_l0_reverse" if d == 1 else "_l0"
        params[f"weight_ih{sfx}"] = _reorder(w[d], op)
        params[f"weight_hh{sfx}"] = _reorder(r[d], op)
        if b is not None:
            params[f"bias_ih{sfx}"] = _reorder(b[d, :b.shape[1] // 2], op)
            params[f"bias_hh{sfx}"] = _reorder(b[d, b.shape[1] // 2:], op)
    if p is not None:
        for d in range(nd):
            params["weight_peephole_l0" + ("_reverse" if d else "")] = _reorder(p[d], "P")
    kw = [f"{size}", f"{hidden}", "batch_first=True"]
    if b is None:
        kw.append("bias=False")
    if nd == 2:
        kw.append("bidirectional=True")
    acts = tuple(node.attr("activations"))
    relu = op == "RNN" and acts[:1] == ("Relu",) and len(set(acts)) == 1
    if relu:
        kw.append("nonlinearity='relu'")
    if looped:
        kw += _subclass_kwargs(node, p is not None, relu)
    x_name = node.inputs[0]
    cls = f"nn.{op}"
    if looped:
        ctx.helper("_recurrent")  # the module defining the Onnx* subclasses
        cls = f"Onnx{op}"
    layer = ctx.layer(node, f"{cls}({', '.join(kw)}{ctx.dtype_kw(x_name)})", params)

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

    seq = ctx.locals(ctx.fresh(f"{node.name}_seq"))
    last = ctx.locals(ctx.fresh(f"{node.name}_state"))
    if looped:  # the subclass reads lengths and runs a reverse-only node itself
        lens_arg = f"{state_arg or ', None'}, {lens}" if lens else state_arg
        ctx.line(f"{seq}, {last} = {layer}({x}{lens_arg})")
    else:
        inp = f"torch.flip({x}, [1])" if direction == "reverse" else x
        if lens:
            packed = ("nn.utils.rnn.pack_padded_sequence("
                      f"{inp}, {lens}.to(torch.int64).cpu(), batch_first=True, "
                      "enforce_sorted=False)")
            ctx.line(f"{seq}, {last} = {layer}({packed}{state_arg})")
            ctx.line(f"{seq} = nn.utils.rnn.pad_packed_sequence({seq}, batch_first=True, "
                     f"total_length={x}.shape[1])[0]")
        else:
            ctx.line(f"{seq}, {last} = {layer}({inp}{state_arg})")
        if direction == "reverse":
            ctx.line(f"{seq} = torch.flip({seq}, [1])")
    _outputs(ctx, node, seq, f"{last}[0]" if op == "LSTM" else last, f"{last}[1]")
