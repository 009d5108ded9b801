"""LSTM, GRU, RNN: one IR node each, the IR being ONNX's ``layout=1`` (batch-major).

What torch.onnx writes for ``nn.LSTM(batch_first=True)`` is time-major (layout=0)
with Transposes around every layer: ``Transpose(x) -> LSTM -> Transpose(0,2,1,3) ->
Reshape([T, N, nd*H]) -> next LSTM ... -> Transpose(1,0,2)``.  Each node here is
converted as ``Transpose(X, 1,0,2) -> IR LSTM -> Transpose(Y, 1,2,0,3)`` (and the
states likewise), and the layout pass (:mod:`mmconv.ir.passes.layout`) composes
those with the model's own Transposes and sinks them through the merging Reshape, so
a batch-first model ends up with none.  Initial states that are zeros computed from
the input's shape (torch's ``ConstantOfShape(Shape(x))``) are dropped: zeros are the
IR's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx.converters import CONVERTERS

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode

#: ONNX's activation names as the IR spells them (ONNX matches them case-insensitively).
_ACTIVATIONS = {a.lower(): a for a in (
    "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
    "HardSigmoid", "Elu", "Softsign", "Softplus")}


def _check(attrs: dict, opset: int) -> str | None:
    for a in attrs.get("activations", []) or []:
        if str(a).lower() not in _ACTIVATIONS:
            return f"activation {a}"
    return None


def _state(ctx: OnnxContext, node: OnnxNode, index: int, port: str, time_major: bool) -> str:
    """Initial state input ``index`` as an IR [N, nd, H] value, "" when absent or zeros."""
    name = node.input(index)
    if not name:
        return ""
    k = ctx.known.get(name)
    if k is not None and name not in ctx.values and not np.any(k.a) and not np.any(k.b):
        return ""  # zeros, however computed: the IR's default
    value = ctx.x(node, index, port)
    if time_major:
        value = ctx.add("Transpose", [value], f"{node.name}/{port}_batch_major", perm=(1, 0, 2))
    return value


def _lengths(ctx: OnnxContext, node: OnnxNode, time: int | None) -> str:
    """sequence_lens as an IR value, "" when absent or every entry is the (static) time
    length: tf2onnx writes them from the input's shape, which is only the default."""
    name = node.input(4)
    k = ctx.known.get(name) if name else None
    if k is not None and name not in ctx.values and time is not None \
            and np.all(k.a == time) and np.all(k.b == time):
        return ""
    return ctx.x(node, 4, "sequence_lens")


def _convert(ctx: OnnxContext, node: OnnxNode) -> None:
    op = node.op
    layout = int(node.attr("layout", 0)) if ctx.opset >= 14 else 0
    time_major = layout == 0
    x = ctx.x(node, 0)
    if len(ctx.shape(x)) != 3:
        raise UnsupportedError(f"{ctx.where(node)}: X must be rank 3, got {ctx.shape(x)}")
    if time_major:
        x = ctx.add("Transpose", [x], f"{node.name}/X_batch_major", perm=(1, 0, 2))
    ins = [x, ctx.x(node, 1, "W"), ctx.x(node, 2, "R"), ctx.x(node, 3, "B"),
           _lengths(ctx, node, ctx.shape(x)[1]), _state(ctx, node, 5, "initial_h", time_major)]
    if op == "LSTM":
        ins += [_state(ctx, node, 6, "initial_c", time_major), ctx.x(node, 7, "P")]
    if ins[4] and ctx.dtype(ins[4]) != "int32":
        ins[4] = ctx.add("Cast", [ins[4]], f"{node.name}/sequence_lens_int32", to="int32")
    while len(ins) > 3 and not ins[-1]:
        ins.pop()
    attrs: dict[str, object] = {
        "hidden_size": int(node.attr("hidden_size")),
        "direction": str(node.attr("direction", "forward")),
        "clip": float(node.attr("clip", 0.0)),
    }
    acts = node.attr("activations")
    if acts:
        attrs["activations"] = tuple(_ACTIVATIONS[str(a).lower()] for a in acts)
    for key in ("activation_alpha", "activation_beta"):
        if node.attr(key):
            attrs[key] = tuple(float(v) for v in node.attr(key))
    if op == "LSTM":
        attrs["input_forget"] = int(node.attr("input_forget", 0))
    if op == "GRU":
        attrs["linear_before_reset"] = int(node.attr("linear_before_reset", 0))
    ports = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    name = ctx.graph.unique_name(node.name)
    outs = [ctx.graph.unique_name(name if p == "Y" else f"{name}/{p}") for p in ports]
    ctx.add_node(op, ins, name, outputs=outs, **attrs)
    for i, out in enumerate(outs):
        if time_major:
            perm = (1, 2, 0, 3) if i == 0 else (1, 0, 2)
            out = ctx.add("Transpose", [out], f"{out}/time_major", perm=perm)
        ctx.set(node, out, i)


for _op in ("LSTM", "GRU", "RNN"):
    CONVERTERS.register(_op, since=7, check=_check)(_convert)
