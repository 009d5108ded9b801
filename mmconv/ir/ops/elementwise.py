"""Elementwise arithmetic with numpy (ONNX multidirectional) broadcasting."""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import DTYPES, Node, Value
from mmconv.ir.ops._common import broadcast, need, same
from mmconv.ir.registry import Attr, op


def _infer_binary(node: Node, inputs: list[Value | None]) -> list[tuple]:
    a, b = need(node, inputs, 0), need(node, inputs, 1)
    return [(a.dtype, broadcast(node, [a.shape, b.shape]))]


def _infer_compare(node: Node, inputs: list[Value | None]) -> list[tuple]:
    ((_, shape),) = _infer_binary(node, inputs)
    return [("bool", shape)]


_BINARY = {
    "Add": "A + B", "Sub": "A - B", "Mul": "A * B", "Div": "A / B", "Pow": "A ^ B",
    "Max": "max(A, B)", "Min": "min(A, B)",
}
for _name, _formula in _BINARY.items():
    op(_name, onnx=_name, inputs=["A", "B"],
       doc=f"Y = {_formula}, elementwise with numpy broadcasting.")(_infer_binary)

for _name, _formula in {"Equal": "A == B", "Greater": "A > B", "Less": "A < B",
                        "GreaterOrEqual": "A >= B", "LessOrEqual": "A <= B"}.items():
    op(_name, onnx=_name, inputs=["A", "B"],
       doc=f"Y = {_formula} as bool, elementwise with numpy broadcasting.")(_infer_compare)

_UNARY = {
    "Identity": "X", "Neg": "-X", "Abs": "|X|", "Exp": "exp(X)", "Log": "log(X)",
    "Sqrt": "sqrt(X)", "Reciprocal": "1 / X", "Floor": "floor(X)", "Ceil": "ceil(X)",
    "Round": "X rounded half to even", "Sign": "sign(X)",
    "Erf": "erf(X), the Gauss error function", "Sin": "sin(X) (radians)",
    "Cos": "cos(X) (radians)",
}
for _name, _formula in _UNARY.items():
    op(_name, onnx=_name, inputs=["X"], doc=f"Elementwise: Y = {_formula}.")(same)


@op(
    "Clip",
    onnx="Clip",
    inputs=["X"],
    attrs={"min": Attr("float", float("-inf")), "max": Attr("float", float("inf"))},
    doc="Y = min(max(X, min), max); bounds are attributes (static).",
)
def infer_clip(node: Node, inputs: list[Value | None]) -> list[tuple]:
    return same(node, inputs)


@op(
    "Where",
    onnx="Where",
    inputs=["condition", "X", "Y"],
    doc="Elementwise choice: X where condition is true, else Y; numpy broadcasting.",
)
def infer_where(node: Node, inputs: list[Value | None]) -> list[tuple]:
    c, x, y = (need(node, inputs, i) for i in range(3))
    return [(x.dtype, broadcast(node, [c.shape, x.shape, y.shape]))]


def _infer_logical(node: Node, inputs: list[Value | None]) -> list[tuple]:
    a, b = need(node, inputs, 0), need(node, inputs, 1)
    if a.dtype != "bool" or b.dtype != "bool":
        raise IRError(f"node {node.name!r} ({node.op}): inputs must be bool, got {a.dtype} "
                      f"and {b.dtype} (Cast them first)")
    return [("bool", broadcast(node, [a.shape, b.shape]))]


for _name, _formula in {"And": "A and B", "Or": "A or B", "Xor": "A xor B"}.items():
    op(_name, onnx=_name, inputs=["A", "B"],
       doc=f"Logical Y = {_formula} of bool tensors, elementwise with numpy broadcasting."
       )(_infer_logical)


@op(
    "Mod",
    onnx="Mod",
    inputs=["A", "B"],
    attrs={"fmod": Attr("int", 0, "0: the remainder takes the sign of the divisor (Python "
                        "%, numpy.mod, floor division); 1: of the dividend (C fmod, "
                        "truncating division)", choices=(0, 1))},
    doc="""Elementwise remainder of A / B with numpy broadcasting, as ONNX Mod, except
    that fmod=0 is also defined for floats (A - floor(A / B) * B, as TensorFlow's
    floormod; ONNX allows only fmod=1 for floats, so the ONNX target decomposes it).
    Integer B = 0 is undefined.""",
)
def infer_mod(node: Node, inputs: list[Value | None]) -> list[tuple]:
    return _infer_binary(node, inputs)


@op(
    "Not",
    onnx="Not",
    inputs=["X"],
    doc="Logical negation of a bool tensor.",
)
def infer_not(node: Node, inputs: list[Value | None]) -> list[tuple]:
    return same(node, inputs)


@op(
    "Cast",
    onnx="Cast",
    inputs=["X"],
    attrs={"to": Attr("str", doc="the target dtype (an IR dtype name)", choices=DTYPES)},
    doc="""Convert the element type, as ONNX Cast: to bool, nonzero is true; from bool, true
    is 1. Frontends need it where a source framework's comparisons yield numbers (CNTK:
    float 0/1) or its argmax a float index.""",
)
def infer_cast(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    return [(node.attr("to"), x.shape)]
