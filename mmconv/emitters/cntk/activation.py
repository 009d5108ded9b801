"""Activations: CNTK's own ops (``C.relu``, ``C.elu``, ``C.param_relu`` ...) and the
softmax family along one axis (``C.softmax(x, axis=...)``)."""

from __future__ import annotations

import math

from mmconv.emitters.cntk.context import HANDLERS, EmitContext
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Node
from mmconv.ir.ops._common import broadcast

_PLAIN = {"Relu": "C.relu", "Sigmoid": "C.sigmoid", "Tanh": "C.tanh", "Softplus": "C.softplus"}


@HANDLERS.register(*_PLAIN)
def emit_plain(ctx: EmitContext, node: Node) -> None:
    ctx.assign(node, f"{_PLAIN[node.op]}({ctx.ref(node.inputs[0])}, {ctx.name_kw(node)})")


@HANDLERS.register("Elu", "LeakyRelu", "Selu", "HardSigmoid")
def emit_parametric(ctx: EmitContext, node: Node) -> None:
    """The IR's attributes are CNTK's arguments (``selu(x, scale=gamma, alpha)``)."""
    x = ctx.ref(node.inputs[0])

    def f(attr: str) -> str:
        return literal(float(node.attr(attr)))

    if node.op == "Elu":
        call = f"C.elu({x}, alpha={f('alpha')}"
    elif node.op == "LeakyRelu":
        call = f"C.leaky_relu({x}, alpha={f('alpha')}"
    elif node.op == "Selu":
        call = f"C.selu({x}, scale={f('gamma')}, alpha={f('alpha')}"
    else:
        call = f"C.hard_sigmoid({x}, alpha={f('alpha')}, beta={f('beta')}"
    ctx.assign(node, f"{call}, {ctx.name_kw(node)})")


@HANDLERS.register("PRelu")
def emit_prelu(ctx: EmitContext, node: Node) -> None:
    """``C.param_relu`` with the slope as a trainable Parameter; when the IR's numpy
    broadcasting makes the output larger than X: relu(x) + slope * min(x, 0)."""
    x, slope = node.inputs[:2]
    same = broadcast(node, [ctx.shape(x), ctx.shape(slope)]) == ctx.shape(x)
    if same and ctx.is_weight(slope):
        alpha = ctx.operand(slope, x, trainable=True)
        ctx.assign(node, f"C.param_relu({alpha}, {ctx.ref(x)}, {ctx.name_kw(node)})")
        return
    xr, s = ctx.ref(x), ctx.operand(slope, x)
    ctx.assign(node, f"C.plus(C.relu({xr}), C.element_times({s}, C.element_min({xr}, 0)), "
                     f"{ctx.name_kw(node)})")


@HANDLERS.register("Softmax", "LogSoftmax")
def emit_softmax(ctx: EmitContext, node: Node) -> None:
    """Along one axis of the sample (``C.softmax(x, axis=a)``)."""
    x = node.inputs[0]
    fn = "C.softmax" if node.op == "Softmax" else "C.log_softmax"
    axis = ctx.axis(x, int(node.attr("axis")))
    if len(ctx.sample_shape(x)) == 1:
        # the whole sample: CNTK's primitive softmax (with an axis it is a block of
        # max/exp/sum primitives, slower)
        ctx.assign(node, f"{fn}({ctx.ref(x)}, {ctx.name_kw(node)})")
        return
    ctx.assign(node, f"{fn}({ctx.ref(x)}, axis={axis}, {ctx.name_kw(node)})")


@HANDLERS.register("Hardmax")
def emit_hardmax(ctx: EmitContext, node: Node) -> None:
    """``C.hardmax`` works on the whole sample: used when the axis is the sample's only
    non-unit axis; otherwise one_hot(argmax) along the axis (first maximum wins)."""
    x = node.inputs[0]
    axis = ctx.axis(x, int(node.attr("axis")))
    sample = ctx.sample_shape(x)
    if all(d == 1 for i, d in enumerate(sample) if i != axis):
        ctx.assign(node, f"C.hardmax({ctx.ref(x)}, {ctx.name_kw(node)})")
        return
    index = ctx.let(f"C.argmax({ctx.ref(x)}, axis={axis})", "index")
    hot = ctx.let(f"C.one_hot({index}, {sample[axis]}, axis={axis})", "one_hot")
    ctx.assign(node, f"C.reshape({hot}, {literal(tuple(sample))}, {ctx.name_kw(node)})")



@HANDLERS.register("Softsign")
def emit_softsign(ctx: EmitContext, node: Node) -> None:
    ctx.assign(node, f"C.softsign({ctx.ref(node.inputs[0])}, {ctx.name_kw(node)})")


@HANDLERS.register("HardSwish", "Mish")
def emit_gated(ctx: EmitContext, node: Node) -> None:
    """X times a gate: hard_sigmoid(X, 1/6, 1/2) (HardSwish), tanh(softplus(X)) (Mish)."""
    x = ctx.ref(node.inputs[0])
    if node.op == "HardSwish":
        gate = f"C.hard_sigmoid({x}, alpha={literal(1.0 / 6.0)}, beta=0.5)"
    else:
        gate = f"C.tanh(C.softplus({x}))"
    ctx.assign(node, f"C.element_times({x}, {gate}, {ctx.name_kw(node)})")


@HANDLERS.register("Gelu")
def emit_gelu(ctx: EmitContext, node: Node) -> None:
    """X / 2 * (1 + erf(X / sqrt 2)) with the generated ``_erf`` (CNTK has no erf), or
    the tanh form."""
    x = ctx.ref(node.inputs[0])
    if node.attr("approximate") == "tanh":
        inner = (f"C.element_times({literal(math.sqrt(2.0 / math.pi))}, C.plus({x}, "
                 f"C.element_times(0.044715, C.element_times({x}, C.square({x})))))")
        gate = ctx.let(f"C.tanh({inner})", "tanh")
    else:
        ctx.helpers.add("_erf")
        gate = ctx.let(f"_erf(C.element_times({x}, {literal(math.sqrt(0.5))}), '')", "erf")
    ctx.assign(node, f"C.element_times(C.element_times(0.5, {x}), C.plus(1.0, {gate}), "
                     f"{ctx.name_kw(node)})")
