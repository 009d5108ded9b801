"""Elementwise ops: Python operators and ``torch`` functions, numpy broadcasting as in
the IR.  Weights read here become buffers of KitModel (``self.<name>``)."""

from __future__ import annotations

import math

from mmconv.emitters.codegen import literal
from mmconv.emitters.pytorch.context import HANDLERS, TORCH_DTYPES, EmitContext
from mmconv.ir.core import Node

_OPERATORS = {"Add": "+", "Sub": "-", "Mul": "*", "Equal": "==", "Greater": ">",
              "Less": "<", "GreaterOrEqual": ">=", "LessOrEqual": "<="}
_BINARY_FNS = {"Pow": "torch.pow", "Max": "torch.maximum", "Min": "torch.minimum",
               "And": "torch.logical_and", "Or": "torch.logical_or",
               "Xor": "torch.logical_xor"}
_UNARY = {"Neg": "torch.neg", "Abs": "torch.abs", "Exp": "torch.exp", "Log": "torch.log",
          "Sqrt": "torch.sqrt", "Reciprocal": "torch.reciprocal", "Floor": "torch.floor",
          "Ceil": "torch.ceil", "Round": "torch.round", "Sign": "torch.sign",
          "Not": "torch.logical_not", "Erf": "torch.erf", "Sin": "torch.sin",
          "Cos": "torch.cos"}


@HANDLERS.register(*_OPERATORS)
def emit_operator(ctx: EmitContext, node: Node) -> None:
    a, b = (ctx.value(i) for i in node.inputs[:2])
    ctx.assign(node, f"{a} {_OPERATORS[node.op]} {b}")


@HANDLERS.register("Div")
def emit_div(ctx: EmitContext, node: Node) -> None:
    """True division for floats; integer Div truncates toward zero, as in ONNX."""
    a, b = (ctx.value(i) for i in node.inputs[:2])
    if ctx.dtype(node.inputs[0]).startswith("float"):
        ctx.assign(node, f"{a} / {b}")
    else:
        ctx.assign(node, f"torch.div({a}, {b}, rounding_mode='trunc')")


@HANDLERS.register(*_BINARY_FNS)
def emit_binary_fn(ctx: EmitContext, node: Node) -> None:
    a, b = (ctx.value(i) for i in node.inputs[:2])
    ctx.assign(node, f"{_BINARY_FNS[node.op]}({a}, {b})")


@HANDLERS.register(*_UNARY)
def emit_unary(ctx: EmitContext, node: Node) -> None:
    """torch.round rounds half to even, as ONNX Round."""
    ctx.assign(node, f"{_UNARY[node.op]}({ctx.value(node.inputs[0])})")


@HANDLERS.register("Identity")
def emit_identity(ctx: EmitContext, node: Node) -> None:
    ctx.assign(node, ctx.value(node.inputs[0]))


@HANDLERS.register("Cast")
def emit_cast(ctx: EmitContext, node: Node) -> None:
    """Tensor.to: nonzero is True, True is 1, floats to ints truncate (as ONNX Cast)."""
    ctx.assign(node, f"{ctx.value(node.inputs[0])}.to({TORCH_DTYPES[node.attr('to')]})")


@HANDLERS.register("Clip")
def emit_clip(ctx: EmitContext, node: Node) -> None:
    """torch.clamp with only the finite bounds; integer tensors get integer bounds so the
    result keeps their dtype."""
    x = ctx.value(node.inputs[0])
    is_int = not ctx.dtype(node.inputs[0]).startswith("float")
    bounds = []
    for key in ("min", "max"):
        bound = float(node.attr(key))
        if math.isinf(bound):
            continue
        if is_int:
            bound_text = literal(math.ceil(bound) if key == "min" else math.floor(bound))
        else:
            bound_text = literal(bound)
        bounds.append(f"{key}={bound_text}")
    ctx.assign(node, f"torch.clamp({x}, {', '.join(bounds)})" if bounds else x)


@HANDLERS.register("Where")
def emit_where(ctx: EmitContext, node: Node) -> None:
    c, x, y = (ctx.value(i) for i in node.inputs[:3])
    ctx.assign(node, f"torch.where({c}, {x}, {y})")


@HANDLERS.register("Mod")
def emit_mod(ctx: EmitContext, node: Node) -> None:
    """torch.remainder takes the divisor's sign (fmod=0), torch.fmod the dividend's."""
    a, b = (ctx.value(i) for i in node.inputs[:2])
    fn = "torch.fmod" if node.attr("fmod") else "torch.remainder"
    ctx.assign(node, f"{fn}({a}, {b})")
