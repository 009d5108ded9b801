"""Activations: the built-in activation functions (``activation=`` of any layer, the
``Activation`` layer) and the activation layers (ReLU, LeakyReLU, ELU, PReLU, Softmax).

All are elementwise, so they keep their input's layout; softmax maps its axis.
Keras 3 semantics are used (``hard_sigmoid`` = relu6(x + 3) / 6); a file saved by
Keras 2 gets Keras 2's ``hard_sigmoid`` (0.2 x + 0.5, clipped).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmconv.frontends.keras.context import KerasContext, Tensor
from mmconv.frontends.keras.converters import CONVERTERS, cfg
from mmconv.frontends.keras.model import Layer

SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
          "softsign": "Softsign", "exponential": "Exp", "selu": "Selu", "mish": "Mish"}
KNOWN = {"linear", "relu6", "leaky_relu", "elu", "hard_sigmoid", "hard_swish", "hard_silu",
         "swish", "silu", "gelu", "softmax", "log_softmax", *SIMPLE}


def activation_name(spec: Any) -> str | None:
    """The activation's name from a config value (a string, or Keras 3's dict form)."""
    if spec is None:
        return "linear"
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        inner = spec.get("config")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]
    return None


def activation_problem(spec: Any) -> str | None:
    name = activation_name(spec)
    if name is None:
        return "a custom function"
    return None if name in KNOWN else name


def apply_activation(ctx: KerasContext, t: Tensor, spec: Any, name: str) -> Tensor:
    """``t`` through the named Keras activation (``linear`` adds nothing)."""
    act = activation_name(spec) or "linear"
    x = t.value
    if act == "linear":
        return t
    if act in SIMPLE:
        return ctx.like(t, ctx.add(SIMPLE[act], [x], name))
    if act == "relu6":
        return ctx.like(t, ctx.add("Clip", [x], name, min=0.0, max=6.0))
    if act == "leaky_relu":
        return ctx.like(t, ctx.add("LeakyRelu", [x], name, alpha=0.2))
    if act == "elu":
        return ctx.like(t, ctx.add("Elu", [x], name, alpha=1.0))
    if act == "hard_sigmoid":
        legacy = ctx.keras_version.startswith(("1.", "2."))
        alpha = 0.2 if legacy else 1.0 / 6.0
        return ctx.like(t, ctx.add("HardSigmoid", [x], name, alpha=alpha, beta=0.5))
    if act in ("hard_swish", "hard_silu"):
        return ctx.like(t, ctx.add("HardSwish", [x], name))
    if act in ("swish", "silu"):
        sig = ctx.add("Sigmoid", [x], f"{name}/sigmoid")
        return ctx.like(t, ctx.add("Mul", [x, sig], name))
    if act == "gelu":
        return ctx.like(t, ctx.add("Gelu", [x], name, approximate="none"))
    if act in ("softmax", "log_softmax"):
        return softmax(ctx, t, -1, name, "Softmax" if act == "softmax" else "LogSoftmax")
    raise AssertionError(act)  # activation_problem() refused it earlier


def softmax(ctx: KerasContext, t: Tensor, axis: int, name: str, op: str = "Softmax") -> Tensor:
    t = ctx.unflat(t, name)
    return ctx.like(t, ctx.add(op, [t.value], name, axis=ctx.ir_axis(t, axis)))


@CONVERTERS.register("Activation")
def activation_layer(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    return [apply_activation(ctx, xs[0], cfg(layer, "activation"), layer.name)]


@CONVERTERS.register("ReLU")
def relu(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    """Keras ReLU: x >= threshold: min(x, max_value); below: negative_slope * (x - threshold)."""
    t = xs[0]
    max_value = cfg(layer, "max_value")
    slope = float(cfg(layer, "negative_slope", 0.0) or 0.0)
    threshold = float(cfg(layer, "threshold", 0.0) or 0.0)
    x, name = t.value, layer.name
    top = math.inf if max_value is None else float(max_value)
    if threshold == 0.0:
        if slope == 0.0:
            if top == math.inf:
                return [ctx.like(t, ctx.add("Relu", [x], name))]
            return [ctx.like(t, ctx.add("Clip", [x], name, min=0.0, max=top))]
        y = ctx.add("LeakyRelu", [x], name if top == math.inf else f"{name}/leaky", alpha=slope)
        if top != math.inf:
            y = ctx.add("Min", [y, ctx.constant(f"{name}/max_value", _scalar(ctx, x, top))], name)
        return [ctx.like(t, y)]
    # general form: where(x >= threshold, min(x, max_value), slope * (x - threshold))
    thr = ctx.constant(f"{name}/threshold", _scalar(ctx, x, threshold))
    above = ctx.add("GreaterOrEqual", [x, thr], f"{name}/above")
    upper = x if top == math.inf else ctx.add(
        "Min", [x, ctx.constant(f"{name}/max_value", _scalar(ctx, x, top))], f"{name}/clip")
    below = ctx.add("Mul", [ctx.add("Sub", [x, thr], f"{name}/shift"),
                            ctx.constant(f"{name}/slope", _scalar(ctx, x, slope))],
                    f"{name}/below")
    return [ctx.like(t, ctx.add("Where", [above, upper, below], name))]


def _scalar(ctx: KerasContext, like: str, value: float) -> np.ndarray:
    return np.array(value, dtype=ctx.dtype(like))


@CONVERTERS.register("LeakyReLU")
def leaky_relu(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    slope = cfg(layer, "negative_slope", cfg(layer, "alpha", 0.3))
    return [ctx.like(xs[0], ctx.add("LeakyRelu", [xs[0].value], layer.name, alpha=float(slope)))]


@CONVERTERS.register("ELU")
def elu(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    alpha = float(cfg(layer, "alpha", 1.0))
    return [ctx.like(xs[0], ctx.add("Elu", [xs[0].value], layer.name, alpha=alpha))]


@CONVERTERS.register("Softmax")
def softmax_layer(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    axis = cfg(layer, "axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            from mmconv.errors import UnsupportedError

            raise UnsupportedError(f"{ctx.path}: Softmax layer {layer.name!r} over several "
                                   f"axes {axis}")
        axis = axis[0]
    return [softmax(ctx, xs[0], int(axis), layer.name)]


@CONVERTERS.register("PReLU")
def prelu(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    t = ctx.unflat(xs[0], layer.name)
    kshape = ctx.keras_shape(t)
    shared = cfg(layer, "shared_axes") or []
    alpha_shape = [1 if (a + 1) in shared else kshape[a + 1] for a in range(len(kshape) - 1)]
    ds = ctx.variables(layer, [("alpha", tuple(alpha_shape))])["alpha"]
    alpha = ctx.read(layer, "alpha", ds)
    # alpha is shaped like a Keras sample: bring it to the IR layout of t
    perm = [p - 1 for p in t.perm[1:]]
    slope = ctx.weight(layer, "alpha", alpha.transpose(perm), ctx.dtype(t.value))
    return [ctx.like(t, ctx.add("PRelu", [t.value, slope], layer.name))]
