"""Elementwise arithmetic, comparisons, unary math, Clip and Where.

From opset 7 ONNX broadcasts like numpy, as the IR does; the handlers only
track where an op or a dtype appeared later (Max/Min broadcasting 8, Sign and
Where 9, float Equal and Round 11, GreaterOrEqual/LessOrEqual 12).
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.ir.core import Node

#: IR unary op -> first opset with the ONNX op (the rest date from 6 or earlier).
UNARY_FROM = {"Round": 11, "Sign": 9}
UNARY = ("Identity", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil",
         "Round", "Sign")


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float")


@HANDLERS.register("Add", "Sub", "Mul", "Div", "Pow")
def emit_arithmetic(ctx: EmitContext, node: Node) -> None:
    """Same name, numpy broadcasting in every supported opset (7+)."""
    ctx.add(node.op, node.inputs[:2], node.outputs, name=node.name)


@HANDLERS.register("Max", "Min")
def emit_max_min(ctx: EmitContext, node: Node) -> None:
    """Max/Min broadcast from opset 8; at 7 they need equal shapes."""
    if ctx.shape(node.inputs[0]) != ctx.shape(node.inputs[1]):
        ctx.require(node, 8, f"{node.op} with broadcasting")
    ctx.add(node.op, node.inputs[:2], node.outputs, name=node.name)


@HANDLERS.register("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual")
def emit_compare(ctx: EmitContext, node: Node) -> None:
    """Comparisons; before opset 12, ``a >= b`` is written ``not (a < b)``.

    That rewrite differs only for NaN operands (it yields true), a case the
    source frameworks do not define consistently either.
    """
    dtype = ctx.dtype(node.inputs[0])
    if node.op == "Equal" and _is_float(dtype):
        ctx.require(node, 11, f"Equal on {dtype}")
    if node.op != "Equal" and not _is_float(dtype):
        ctx.require(node, 9, f"{node.op} on {dtype}")
    if node.op in ("GreaterOrEqual", "LessOrEqual") and ctx.opset < 12:
        opposite = "Less" if node.op == "GreaterOrEqual" else "Greater"
        flipped = ctx.add(opposite, node.inputs[:2])[0]
        ctx.add("Not", [flipped], node.outputs, name=node.name)
        return
    ctx.add(node.op, node.inputs[:2], node.outputs, name=node.name)


@HANDLERS.register(*UNARY)
def emit_unary(ctx: EmitContext, node: Node) -> None:
    """Same name in ONNX; Round and Sign only exist from opsets 11 and 9."""
    ctx.require(node, UNARY_FROM.get(node.op, 1))
    ctx.add(node.op, [node.inputs[0]], node.outputs, name=node.name)


@HANDLERS.register("Clip")
def emit_clip(ctx: EmitContext, node: Node) -> None:
    """Bounds are attributes before opset 11 and optional inputs from 11.

    Infinite bounds are left out (both forms default to "unbounded"); the
    inputs get X's dtype, as ONNX requires.  Integer X needs opset 12.
    """
    x = node.inputs[0]
    low, high = float(node.attr("min")), float(node.attr("max"))
    if not _is_float(ctx.dtype(x)):
        ctx.require(node, 12, f"Clip on {ctx.dtype(x)}")
    if ctx.opset < 11:
        ctx.add("Clip", [x], node.outputs, name=node.name,
                min=low if math.isfinite(low) else None,
                max=high if math.isfinite(high) else None)
        return
    inputs = [x]
    if math.isfinite(low) or math.isfinite(high):
        inputs.append(ctx.scalar(low, x, "min") if math.isfinite(low) else "")
    if math.isfinite(high):
        inputs.append(ctx.scalar(high, x, "max"))
    ctx.add("Clip", inputs, node.outputs, name=node.name)


@HANDLERS.register("Where")
def emit_where(ctx: EmitContext, node: Node) -> None:
    """Where appeared in opset 9; there is no exact older spelling for every dtype."""
    ctx.require(node, 9)
    ctx.add("Where", node.inputs[:3], node.outputs, name=node.name)


@HANDLERS.register("Not")
def emit_not(ctx: EmitContext, node: Node) -> None:
    ctx.add("Not", [node.inputs[0]], node.outputs, name=node.name)


@HANDLERS.register("Cast")
def emit_cast(ctx: EmitContext, node: Node) -> None:
    """``to`` is an IR (numpy) dtype name; ONNX wants its TensorProto code."""
    to = helper.np_dtype_to_tensor_dtype(np.dtype(node.attr("to")))
    ctx.add("Cast", [node.inputs[0]], node.outputs, name=node.name, to=int(to))


@HANDLERS.register("Erf", "Sin", "Cos")
def emit_trig(ctx: EmitContext, node: Node) -> None:
    """Erf exists from opset 9, Sin and Cos from 7."""
    if node.op == "Erf":
        ctx.require(node, 9)
    ctx.add(node.op, [node.inputs[0]], node.outputs, name=node.name)


@HANDLERS.register("And", "Or", "Xor")
def emit_logical(ctx: EmitContext, node: Node) -> None:
    """Same name; numpy broadcasting from opset 7."""
    ctx.add(node.op, node.inputs[:2], node.outputs, name=node.name)


@HANDLERS.register("Mod")
def emit_mod(ctx: EmitContext, node: Node) -> None:
    """ONNX Mod (opset 10) with fmod=1, or fmod=0 on integers; the IR's float fmod=0
    (which ONNX forbids) is A - Floor(A / B) * B."""
    ctx.require(node, 10)
    a, b = node.inputs[:2]
    fmod = int(node.attr("fmod"))
    if fmod or not _is_float(ctx.dtype(a)):
        ctx.add("Mod", [a, b], node.outputs, name=node.name, fmod=fmod)
        return
    quotient = ctx.add("Floor", [ctx.add("Div", [a, b])[0]])[0]
    ctx.add("Sub", [a, ctx.add("Mul", [quotient, b])[0]], node.outputs, name=node.name)
