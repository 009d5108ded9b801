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
