"""Activations: one ``torch``/``F`` call each; PRelu is ``nn.PReLU`` when its slope
is a per-channel (or single) weight, the layer PyTorch users know."""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.base import norm_axis
from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

_SIMPLE = {"Relu": "F.relu({})", "Sigmoid": "torch.sigmoid({})", "Tanh": "torch.tanh({})",
           "Softplus": "F.softplus({})"}

#: F.selu's fixed constants (PyTorch's own spelling of them).
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


@HANDLERS.register(*_SIMPLE)
def emit_simple(ctx: EmitContext, node: Node) -> None:
    """Parameterless activations.  F.softplus switches to the identity above 20,
    where log(1 + exp(x)) equals x to float precision."""
    ctx.assign(node, _SIMPLE[node.op].format(ctx.value(node.inputs[0])))


@HANDLERS.register("Elu")
def emit_elu(ctx: EmitContext, node: Node) -> None:
    ctx.assign(node, f"F.elu({ctx.value(node.inputs[0])}, alpha={literal(node.attr('alpha'))})")


@HANDLERS.register("Selu")
def emit_selu(ctx: EmitContext, node: Node) -> None:
    """F.selu when alpha/gamma are the standard constants; otherwise gamma * ELU(alpha)."""
    x = ctx.value(node.inputs[0])
    alpha, gamma = float(node.attr("alpha")), float(node.attr("gamma"))
    if math.isclose(alpha, _SELU_ALPHA, rel_tol=1e-7) and math.isclose(gamma, _SELU_SCALE,
                                                                        rel_tol=1e-7):
        ctx.assign(node, f"F.selu({x})")
    else:
        ctx.assign(node, f"{literal(gamma)} * F.elu({x}, alpha={literal(alpha)})")


@HANDLERS.register("LeakyRelu")
def emit_leaky_relu(ctx: EmitContext, node: Node) -> None:
    ctx.assign(node, f"F.leaky_relu({ctx.value(node.inputs[0])}, "
                     f"negative_slope={literal(float(node.attr('alpha')))})")


@HANDLERS.register("HardSigmoid")
def emit_hard_sigmoid(ctx: EmitContext, node: Node) -> None:
    """ONNX's alpha/beta are free; F.hardsigmoid fixes them to 1/6 and 1/2."""
    x = ctx.value(node.inputs[0])
    alpha, beta = literal(float(node.attr("alpha"))), literal(float(node.attr("beta")))
    ctx.assign(node, f"torch.clamp({alpha} * {x} + {beta}, 0.0, 1.0)")


def _channel_slope(ctx: EmitContext, node: Node) -> np.ndarray | None:
    """The slope as nn.PReLU's weight ([C] along axis 1, or [1]), if it is one."""
    slope = ctx.weight(node.inputs[1])
    x_shape = ctx.shape(node.inputs[0])
    if slope is None or slope.dtype != np.dtype(ctx.dtype(node.inputs[0])):
        return None
    if slope.size == 1:
        return slope.reshape(1)
    dims = list(slope.shape)
    while dims and dims[0] == 1 and len(dims) > len(x_shape) - 1:
        dims.pop(0)
    if (len(x_shape) >= 2 and len(dims) == len(x_shape) - 1 and dims[0] == x_shape[1]
            and all(d == 1 for d in dims[1:])):
        return slope.reshape(-1)
    return None


@HANDLERS.register("PRelu")
def emit_prelu(ctx: EmitContext, node: Node) -> None:
    """nn.PReLU for a per-channel or single slope weight; otherwise the broadcast
    formula (the slope may even broadcast X up, which nn.PReLU cannot)."""
    slope = _channel_slope(ctx, node)
    x = ctx.value(node.inputs[0])
    if slope is not None:
        layer = ctx.layer(node, f"nn.PReLU({slope.size}{ctx.dtype_kw(node.inputs[0])})",
                          {"weight": slope})
        ctx.assign(node, f"{layer}({x})")
        return
    s = ctx.value(node.inputs[1])
    ctx.assign(node, f"torch.where({x} >= 0, {x}, {s} * {x})")


@HANDLERS.register("Softmax", "LogSoftmax")
def emit_softmax(ctx: EmitContext, node: Node) -> None:
    """Opset-13 semantics: along one axis, which is what F.softmax's dim means."""
    fn = "F.softmax" if node.op == "Softmax" else "F.log_softmax"
    axis = norm_axis(int(node.attr("axis")), ctx.rank(node.inputs[0]))
    ctx.assign(node, f"{fn}({ctx.value(node.inputs[0])}, dim={axis})")


@HANDLERS.register("Hardmax")
def emit_hardmax(ctx: EmitContext, node: Node) -> None:
    """A one at the first maximum (torch.argmax returns the first one on ties)."""
    x = ctx.value(node.inputs[0])
    axis = norm_axis(int(node.attr("axis")), ctx.rank(node.inputs[0]))
    ctx.assign(node, f"torch.zeros_like({x}).scatter({axis}, torch.argmax({x}, dim={axis}, "
                     "keepdim=True), 1.0)")


_FUNCTIONAL = {"HardSwish": "F.hardswish", "Softsign": "F.softsign", "Mish": "F.mish"}


@HANDLERS.register(*_FUNCTIONAL)
def emit_functional(ctx: EmitContext, node: Node) -> None:
    """torch's own functions of the same formula (F.hardswish is x * relu6(x + 3) / 6)."""
    ctx.assign(node, f"{_FUNCTIONAL[node.op]}({ctx.value(node.inputs[0])})")


@HANDLERS.register("Gelu")
def emit_gelu(ctx: EmitContext, node: Node) -> None:
    """F.gelu; its approximate='tanh' is the IR's tanh form."""
    x = ctx.value(node.inputs[0])
    if node.attr("approximate") == "tanh":
        ctx.assign(node, f"F.gelu({x}, approximate='tanh')")
    else:
        ctx.assign(node, f"F.gelu({x})")
