"""LSTM, GRU and RNN: one ONNX LSTM/GRU/RNN node each (never a Loop).

The IR is batch-major (ONNX's ``layout=1``), but onnxruntime refuses ``layout=1``
("Batchwise recurrent operations (layout == 1) are not supported", 1.32), so the
node is always written time-major (``layout=0``, valid from opset 7) with a
Transpose on X and the initial states going in and on Y, Y_h, Y_c coming out.

ONNX allows double recurrent nodes but onnxruntime implements LSTM/GRU/RNN for float
only ("LSTM operator does not support double", 1.32), so a float64 node (a CNTK model
built in float64) runs in float32 between Casts: its inputs cast down, its outputs
back up (a relative error of ~1e-7, the node stays one LSTM/GRU/RNN).
"""

from __future__ import annotations

from onnx import TensorProto

from mmconv.emitters.onnx.context import HANDLERS, EmitContext, present
from mmconv.ir.core import Node


def _attrs(node: Node) -> dict[str, object]:
    attrs: dict[str, object] = {
        "hidden_size": node.attr("hidden_size"), "direction": node.attr("direction"),
        "activations": list(node.attr("activations")) or None,
        "activation_alpha": list(node.attr("activation_alpha")) or None,
        "activation_beta": list(node.attr("activation_beta")) or None,
        "clip": node.attr("clip") or None,
    }
    if node.op == "LSTM" and node.attr("input_forget"):
        attrs["input_forget"] = 1
    if node.op == "GRU" and node.attr("linear_before_reset"):
        attrs["linear_before_reset"] = 1
    return attrs


@HANDLERS.register("LSTM", "GRU", "RNN")
def emit_recurrent(ctx: EmitContext, node: Node) -> None:
    """Time-major in, batch-major out: X [N,T,I] -> [T,N,I]; states [N,nd,H] <-> [nd,N,H];
    Y [T,nd,N,H] -> [N,T,nd,H]."""
    inputs = list(node.inputs) + [""] * (8 - len(node.inputs))
    double = ctx.graph.values[node.inputs[0]].dtype == "float64"
    if double:
        for i, name in enumerate(inputs):
            if name and i != 4:  # sequence_lens is int32
                inputs[i] = ctx.add("Cast", [name], to=TensorProto.FLOAT)[0]
    inputs[0] = ctx.add("Transpose", [inputs[0]], perm=[1, 0, 2])[0]
    for i in (5, 6):  # initial_h, initial_c
        if inputs[i]:
            inputs[i] = ctx.add("Transpose", [inputs[i]], perm=[1, 0, 2])[0]
    n_out = 3 if node.op == "LSTM" else 2
    outs = [ctx.fresh(f"{node.name}/{port}_time_major")
            for port in ("Y", "Y_h", "Y_c")[:n_out]]
    ctx.add(node.op, present(inputs[:8 if node.op == "LSTM" else 6]), outs, name=node.name,
            **_attrs(node))
    for i, out in enumerate(node.outputs):
        if not out:
            continue
        perm = [2, 0, 1, 3] if i == 0 else [1, 0, 2]
        if double:
            batch_major = ctx.add("Transpose", [outs[i]], perm=perm)[0]
            ctx.add("Cast", [batch_major], [out], to=TensorProto.DOUBLE)
        else:
            ctx.add("Transpose", [outs[i]], [out], perm=perm)
