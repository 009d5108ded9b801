"""Elementwise math, comparisons, logic, Where and Cast (numpy broadcasting from opset 7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.reader import IR_DTYPES

if TYPE_CHECKING:
    from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode

#: ONNX op -> IR op, same inputs, numpy broadcasting.
_BINARY = {
    "Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Pow": "Pow", "Equal": "Equal",
    "Greater": "Greater", "Less": "Less", "GreaterOrEqual": "GreaterOrEqual",
    "LessOrEqual": "LessOrEqual", "And": "And", "Or": "Or", "Xor": "Xor",
}
_BINARY_SINCE = {"GreaterOrEqual": 12, "LessOrEqual": 12}
_UNARY = ("Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
          "Sin", "Cos", "Erf", "Not")
_UNARY_SINCE = {"Round": 11, "Sign": 9, "Erf": 9}


def _binary(op: str):
    def convert(ctx: OnnxContext, node: OnnxNode) -> None:
        ctx.simple(node, op, 2, params=("A", "B"), broadcast=True)

    convert.__name__ = f"convert_{op.lower()}"
    return convert


def _unary(op: str):
    def convert(ctx: OnnxContext, node: OnnxNode) -> None:
        ctx.simple(node, op, 1)

    convert.__name__ = f"convert_{op.lower()}"
    return convert


for _op, _ir in _BINARY.items():
    CONVERTERS.register(_op, since=_BINARY_SINCE.get(_op, 7))(_binary(_ir))
for _op in _UNARY:
    CONVERTERS.register(_op, since=_UNARY_SINCE.get(_op, 1))(_unary(_op))


def _mod_check(attrs: dict, opset: int) -> str | None:
    return None if attrs.get("fmod", 0) in (0, 1) else f"fmod={attrs.get('fmod')}"


@CONVERTERS.register("Mod", since=10, check=_mod_check)
def mod(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "Mod", 2, params=("A", "B"), broadcast=True,
               fmod=int(node.attr("fmod", 0)))


@CONVERTERS.register("Where", since=9)
def where(ctx: OnnxContext, node: OnnxNode) -> None:
    ctx.simple(node, "Where", 3, params=("condition", "X", "Y"), broadcast=True)


def _variadic(ir_op: str):
    def convert(ctx: OnnxContext, node: OnnxNode) -> None:
        """Max/Min/Sum/Mean of any number of inputs: a chain of binary IR ops."""
        ins = [ctx.x(node, i, f"in{i}", broadcast=True) for i in range(len(node.inputs))
               if node.input(i)]
        if not ins:
            raise UnsupportedError(f"{ctx.where(node)}: no inputs")
        acc = ins[0]
        for k, other in enumerate(ins[1:], 1):
            last = k == len(ins) - 1 and node.op != "Mean"
            acc = ctx.add(ir_op, [acc, other], node.name if last else f"{node.name}/{k}")
        if node.op == "Mean" and len(ins) > 1:
            n = ctx.constant(f"{node.name}/count", np.array(len(ins), ctx.dtype(acc)))
            acc = ctx.add("Div", [acc, n], node.name)
        elif len(ins) == 1:
            acc = ctx.add("Identity", [acc], node.name)
        ctx.set(node, acc)

    convert.__name__ = f"convert_{ir_op.lower()}"
    return convert


CONVERTERS.register("Max", since=8)(_variadic("Max"))
CONVERTERS.register("Min", since=8)(_variadic("Min"))
CONVERTERS.register("Sum", since=8)(_variadic("Add"))
CONVERTERS.register("Mean", since=8)(_variadic("Add"))

#: ONNX TensorProto element type -> IR dtype, for Cast's ``to``.
_CAST_TO = dict(IR_DTYPES)


def _cast_check(attrs: dict, opset: int) -> str | None:
    to = attrs.get("to")
    return None if to in _CAST_TO else f"to={to}"


@CONVERTERS.register("Cast", since=6, check=_cast_check)
def cast(ctx: OnnxContext, node: OnnxNode) -> None:
    x = ctx.x(node, 0)
    to = _CAST_TO[int(node.attr("to"))]
    if ctx.dtype(x) == to:
        ctx.set(node, x)
        return
    ctx.set(node, ctx.add("Cast", [x], node.name, to=to))


@CONVERTERS.register("CastLike", since=15)
def cast_like(ctx: OnnxContext, node: OnnxNode) -> None:
    x = ctx.x(node, 0)
    like = ctx.x(node, 1)
    to = ctx.dtype(like)
    ctx.set(node, x if ctx.dtype(x) == to else ctx.add("Cast", [x], node.name, to=to))
