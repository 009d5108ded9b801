"""Activations: elementwise nonlinearities and the softmax family."""

from __future__ import annotations

from mmconv.ir.core import Node, Value
from mmconv.ir.ops._common import broadcast, need, norm_axis, same
from mmconv.ir.registry import Attr, op

_UNARY = {
    "Relu": ("Relu", "max(X, 0)", {}),
    "Sigmoid": ("Sigmoid", "1 / (1 + exp(-X))", {}),
    "Tanh": ("Tanh", "tanh(X)", {}),
    "Softplus": ("Softplus", "log(1 + exp(X))", {}),
    "Elu": ("Elu", "X if X > 0 else alpha * (exp(X) - 1)", {"alpha": Attr("float", 1.0)}),
    "Selu": (
        "Selu",
        "gamma * (X if X > 0 else alpha * (exp(X) - 1))",
        {"alpha": Attr("float", 1.6732632423543772), "gamma": Attr("float", 1.0507009873554805)},
    ),
    "LeakyRelu": ("LeakyRelu", "X if X >= 0 else alpha * X", {"alpha": Attr("float", 0.01)}),
    "HardSigmoid": (
        "HardSigmoid", "max(0, min(1, alpha * X + beta))",
        {"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)},
    ),
    "HardSwish": ("HardSwish", "X * max(0, min(1, X / 6 + 1 / 2))", {}),
    "Softsign": ("Softsign", "X / (1 + |X|)", {}),
    "Mish": ("Mish", "X * tanh(log(1 + exp(X)))", {}),
}

for _name, (_onnx, _formula, _attrs) in _UNARY.items():
    op(_name, onnx=_onnx, inputs=["X"], attrs=_attrs, doc=f"Elementwise: Y = {_formula}.")(same)


@op(
    "PRelu",
    onnx="PRelu",
    inputs=["X", "slope"],
    doc="""Y = X if X >= 0 else slope * X, slope broadcast against X (numpy rules).""",
)
def infer_prelu(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x, s = need(node, inputs, 0), need(node, inputs, 1)
    return [(x.dtype, broadcast(node, [x.shape, s.shape]))]


@op(
    "Gelu",
    onnx="Gelu",
    inputs=["X"],
    attrs={"approximate": Attr("str", "none", "none: the exact form with erf; tanh: the "
                               "tanh approximation", choices=("none", "tanh"))},
    doc="""Gaussian error linear unit, as ONNX Gelu (opset 20): Y = X / 2 * (1 + erf(X /
    sqrt(2))), or with approximate=tanh Y = X / 2 * (1 + tanh(sqrt(2 / pi) * (X + 0.044715
    * X^3))). Kept as one op (not Erf arithmetic) so targets with a native GELU use it.""",
)
def infer_gelu(node: Node, inputs: list[Value | None]) -> list[tuple]:
    return same(node, inputs)


def _infer_axis(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x = need(node, inputs, 0)
    norm_axis(node, node.attr("axis"), x.rank)
    return same(node, inputs)


_AXIS = {"axis": Attr("int", -1, "the axis the normalization runs along")}
op(
    "Softmax", onnx="Softmax", inputs=["X"], attrs=_AXIS,
    doc="Y = exp(X) / sum(exp(X)) along one axis (ONNX opset-13 semantics).",
)(_infer_axis)
op(
    "LogSoftmax", onnx="LogSoftmax", inputs=["X"], attrs=_AXIS,
    doc="Y = X - log(sum(exp(X))) along one axis (ONNX opset-13 semantics).",
)(_infer_axis)
op(
    "Hardmax", onnx="Hardmax", inputs=["X"], attrs=_AXIS,
    doc="1 at the first maximum along the axis, 0 elsewhere (ONNX opset-13 semantics).",
)(_infer_axis)
