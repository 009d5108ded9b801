"""LSTM, GRU, RNN -> MIL ``lstm`` / ``gru`` / ``rnn`` (time-major, a fixed number of steps).

MIL's recurrent ops read ``x [T, N, D]`` (time-major), take constant weights
with their own gate orders and one summed bias, and need a static shape here
(the Core ML target fixes every shape).  So an IR node (ONNX semantics,
batch-major) becomes: one ``transpose`` of X to time-major, the MIL op with the
weights reordered at emit time, and a ``reshape`` + ``transpose`` back to
``Y [N, T, num_directions, H]`` (a ``reshape`` for each final state).

What the mapping rests on (coremltools 9's op definitions, its NeuralNetwork
conversion of the same ops and Apple's iOS15 runtime tests of them, which
run on macOS):

- ``lstm``: gates i, f, o, g (the IR's are i, o, f, c), peepholes i, f, o (the
  IR's i, o, f), bias ``Wb + Rb``; one op runs both directions.  Its ``clip``
  bounds the cell state, ONNX's the gate inputs: an IR clip is refused, and the
  op gets float32's largest value (no clip; left out, coremltools' NeuralNetwork
  backend writes 500).
- ``gru``: gates r, o, z (the IR's z, r, h), one bias per gate; Apple's tests
  and NeuralNetwork.proto compute the candidate from ``R_o (r * h)`` (the
  reset-before form, the IR's ``linear_before_reset=0``; the op's docstring
  writes ``r * W_o h``, which its own tests do not compute); ``Wb + Rb`` is then
  exact.  ``linear_before_reset=1`` has no MIL form and is refused.
- ``rnn``: one gate, bias ``Wb + Rb``.
- gru/rnn run one direction: a bidirectional node is one op per direction
  (each reads its own transpose of X: coremltools' NeuralNetwork backend names
  a helper layer after the op's input, so two ops on one input collide).
- A ``reverse`` op returns its sequence in the order it ran (Apple's tests
  compare it with the flipped run unflipped); a ``reverse`` MIL op puts it back
  at the input positions (the IR's).  A bidirectional lstm's backward half is
  already at the input positions.
- Activations: sigmoid, tanh and relu (the ones with no parameter); the others
  MIL names (hard_sigmoid, scaled_tanh, linear) are written without their
  parameters and are refused.
"""

from __future__ import annotations

import numpy as np

from mmconv.emitters.coreml.context import HANDLERS, EmitContext, Ref
from mmconv.ir.core import Node
from mmconv.ir.ops.recurrent import DEFAULT_ACTIVATIONS, GATES, activations, num_directions

#: IR activation -> the MIL recurrent activation that computes it exactly
MIL_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}

#: lstm's cell-state clip that clips nothing (float32's largest value)
NO_CLIP = float(np.finfo(np.float32).max)

#: IR gate blocks in MIL's order (W/R/B rows): LSTM i,o,f,c -> i,f,o,g; GRU z,r,h -> r,o,z
GATE_ORDER = {"LSTM": (0, 2, 1, 3), "GRU": (1, 2, 0), "RNN": (0,)}
#: LSTM peepholes: IR i, o, f -> MIL i, f, o
PEEPHOLE_ORDER = (0, 2, 1)


def _blocks(array: np.ndarray, order: tuple[int, ...], hidden: int) -> np.ndarray:
    """Rows of ``array`` (gate blocks of ``hidden`` rows along axis 0) in ``order``."""
    return np.concatenate([array[g * hidden:(g + 1) * hidden] for g in order], axis=0)


def _refuse(ctx: EmitContext, node: Node) -> list[str]:
    """What MIL cannot compute exactly; else the MIL activation names per direction."""
    if ctx.dtype(node.inputs[0]) != "float32":
        raise ctx.unsupported(node, f"X is {ctx.dtype(node.inputs[0])}; MIL's recurrent ops "
                              "compute float32 only at iOS15")
    if len(node.inputs) > 4 and node.inputs[4]:
        raise ctx.unsupported(node, "sequence_lens has no MIL form (lstm/gru/rnn run every "
                              "sequence over all T steps)")
    if node.attr("clip") > 0:
        raise ctx.unsupported(node, "clip: ONNX clips the gate inputs, MIL's lstm clips the "
                              "cell state (gru/rnn have none)")
    if node.op == "LSTM" and node.attr("input_forget"):
        raise ctx.unsupported(node, "input_forget=1 (coupled gates) has no MIL lstm form")
    if node.op == "GRU" and node.attr("linear_before_reset"):
        raise ctx.unsupported(node, "linear_before_reset=1 (PyTorch's and Keras' reset_after "
                              "GRU): MIL's gru has only the reset-before form")
    ports = ["W", "R", "B", "", "", "", "P"]
    for i, port in enumerate(ports, start=1):
        if port and i < len(node.inputs) and node.inputs[i] and ctx.weight(node.inputs[i]) is None:
            raise ctx.unsupported(node, f"{port} is computed at run time; MIL's {node.op.lower()} "
                                  "takes constant weights")
    names = []
    for name, _, _ in activations(node):
        if name not in MIL_ACTIVATIONS:
            raise ctx.unsupported(node, f"activation {name} has no exact MIL recurrent "
                                  "activation (sigmoid, tanh and relu map exactly)")
        names.append(MIL_ACTIVATIONS[name])
    per = len(DEFAULT_ACTIVATIONS[node.op])
    if node.op == "LSTM" and num_directions(node) == 2 and names[:per] != names[per:]:
        raise ctx.unsupported(node, "a bidirectional LSTM with different activations per "
                              "direction: MIL's lstm shares them")
    return names


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    names = _refuse(ctx, node)
    x_name = node.inputs[0]
    n, t, _ = ctx.static_shape(x_name)
    if node.op == "GRU" and n > 1:
        raise ctx.unsupported(node, f"the batch is {n}: Apple tests MIL's gru with batch 1 only "
                              "(its test suite notes wrong rows after the first, "
                              "rdar://59644603); use batch 1")
    hidden, nd = int(node.attr("hidden_size")), num_directions(node)
    gates, order = GATES[node.op], GATE_ORDER[node.op]
    w, r = ctx.weight(node.inputs[1]), ctx.weight(node.inputs[2])
    b = ctx.weight(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
    p = ctx.weight(node.inputs[7]) if len(node.inputs) > 7 and node.inputs[7] else None
    assert w is not None and r is not None  # _refuse: constant weights
    per = len(DEFAULT_ACTIVATIONS[node.op])

    def weights(d: int) -> dict[str, Ref]:
        """Direction ``d``'s weights as MIL consts in MIL's gate order."""
        out = {"weight_ih": ctx.const(_blocks(w[d], order, hidden).astype(np.float32),
                                      f"W_{d}"),
               "weight_hh": ctx.const(_blocks(r[d], order, hidden).astype(np.float32),
                                      f"R_{d}")}
        if b is not None:
            summed = b[d, :gates * hidden].astype(np.float64) + b[d, gates * hidden:]
            out["bias"] = ctx.const(_blocks(summed, order, hidden).astype(np.float32), f"B_{d}")
        if p is not None:
            out["peephole"] = ctx.const(_blocks(p[d], PEEPHOLE_ORDER, hidden)
                                        .astype(np.float32), f"P_{d}")
        return out

    def state(index: int) -> Ref:
        """Initial state input ``index`` ([N, nd, H]) as MIL's [N, nd*H], zeros if absent."""
        name = node.inputs[index] if len(node.inputs) > index else ""
        if not name:
            return ctx.const(np.zeros((n, nd * hidden), np.float32), f"zeros_{index}")
        return ctx.call("reshape", hint=f"state_{index}", x=ctx.var(name),
                        shape=[n, nd * hidden])

    def acts(d: int) -> dict[str, str]:
        mine = names[d * per:(d + 1) * per]
        if node.op == "LSTM":
            return {"recurrent_activation": mine[0], "cell_activation": mine[1],
                    "activation": mine[2]}
        if node.op == "GRU":
            return {"recurrent_activation": mine[0], "activation": mine[1]}
        return {"activation": mine[0]}

    x = ctx.var(x_name)
    direction = node.attr("direction")
    if node.op == "LSTM":
        xt = ctx.call("transpose", hint="x_time_major", x=x, perm=[1, 0, 2])
        args: dict[str, object] = {"x": xt, "initial_h": state(5), "initial_c": state(6),
                                   **weights(0)}
        if nd == 2:
            args.update({f"{k}_back": v for k, v in weights(1).items()})
        # no clip written would be one: coremltools' NeuralNetwork backend writes a cell
        # clip of 500 then ("high enough to be ineffective"); the largest float32 is none
        seq, last_h, last_c = ctx.call_multi(
            "lstm", ("y", "h", "c"), **args, direction=direction, output_sequence=True,
            **acts(0), clip=NO_CLIP)
        finals = [last_h, last_c]
    else:
        h0 = node.inputs[5] if len(node.inputs) > 5 else ""
        seqs, lasts = [], []
        for d in range(nd):
            run = "reverse" if direction == "reverse" or d == 1 else "forward"
            xt = ctx.call("transpose", hint=f"x_time_major_{d}", x=x, perm=[1, 0, 2])
            init = (ctx.call("slice_by_index", hint=f"h0_{d}", x=ctx.var(h0), begin=[0, d, 0],
                             end=[n, d + 1, hidden], squeeze_mask=[False, True, False])
                    if h0 else ctx.const(np.zeros((n, hidden), np.float32), f"zeros_{d}"))
            y_d, h_d = ctx.call_multi(node.op.lower(), ("y", "h"), x=xt, initial_h=init,
                                      **weights(d), direction=run, output_sequence=True,
                                      **acts(d))
            if nd == 2 and run == "reverse":  # back to the input positions
                y_d = ctx.call("reverse", hint=f"y_{d}_unflipped", x=y_d, axes=[0])
            seqs.append(y_d)
            lasts.append(h_d)
        if nd == 2:
            seq = ctx.call("concat", hint="y_time_major", values=seqs, axis=2)
            finals = [ctx.call("concat", hint="y_h", values=lasts, axis=1)]
        else:
            seq, finals = seqs[0], lasts
    if nd == 1 and direction == "reverse":  # MIL gives the steps in the order they ran
        seq = ctx.call("reverse", hint="y_unflipped", x=seq, axes=[0])
    if node.outputs[0]:
        split = ctx.call("reshape", hint="y_split", x=seq, shape=[t, n, nd, hidden])
        ctx.call("transpose", node.outputs[0], x=split, perm=[1, 0, 2, 3])
    for out, final in zip(node.outputs[1:], finals, strict=False):
        if out:
            ctx.call("reshape", out, x=final, shape=[n, nd, hidden])
