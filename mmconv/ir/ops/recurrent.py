"""Recurrent layers: LSTM, GRU and the simple RNN, with ONNX semantics, batch-major.

Why ONNX's definitions: they are precise (gate orders, where the biases go,
``linear_before_reset``, peepholes, reverse and bidirectional runs, sequence
lengths) and checkable with onnxruntime.  Why batch-major (ONNX's ``layout=1``):
PyTorch ``batch_first``, Keras and CNTK's minibatches all hand a recurrent layer
``[batch, time, features]``, so a converted model needs no transposes around its
cells.  The numpy implementation (the semantics in code) is
:mod:`mmconv.ir.recurrent`.
"""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import Dim, Node, Value
from mmconv.ir.ops._common import need
from mmconv.ir.registry import Attr, op

#: Activation functions ONNX allows in its recurrent ops, and the ones that read
#: ``activation_alpha`` / ``activation_beta`` (with ONNX's defaults).
ACTIVATIONS = ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
               "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus")
ACTIVATION_PARAMS: dict[str, tuple[float | None, float | None]] = {
    "Affine": (1.0, 0.0), "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None),
    "ScaledTanh": (1.0, 1.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, None),
}

#: Per op: number of gates G (W is [num_dir, G*hidden, input]) and default activations.
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTIVATIONS = {
    "LSTM": ("Sigmoid", "Tanh", "Tanh"),
    "GRU": ("Sigmoid", "Tanh"),
    "RNN": ("Tanh",),
}

_COMMON = {
    "hidden_size": Attr("int", doc="number of hidden units H"),
    "direction": Attr("str", "forward", "forward, reverse (the sequence read back to front, "
                      "outputs kept at their input positions) or bidirectional (both; "
                      "num_directions = 2, forward first)",
                      choices=("forward", "reverse", "bidirectional")),
    "activations": Attr("strs", (), "per direction, the op's activation list (forward's, "
                        "then reverse's); empty: the ONNX defaults"),
    "activation_alpha": Attr("floats", (), "alpha of each activation in `activations` that "
                             "takes one (ONNX order and defaults)"),
    "activation_beta": Attr("floats", (), "beta of each such activation"),
    "clip": Attr("float", 0.0, "if > 0, gate pre-activations are clipped to [-clip, clip] "
                 "(ONNX clip); 0: no clipping"),
}


def num_directions(node: Node) -> int:
    return 2 if node.attr("direction") == "bidirectional" else 1


def activations(node: Node) -> list[tuple[str, float | None, float | None]]:
    """The activation list of ``node`` with defaults filled in: (name, alpha, beta) for
    each slot, ``num_directions * len(DEFAULT_ACTIVATIONS[op])`` long.

    ``activation_alpha``/``beta`` are consumed in order by the activations that take
    them (onnxruntime's reading of the ONNX spec)."""
    defaults = DEFAULT_ACTIVATIONS[node.op]
    nd = num_directions(node)
    names = list(node.attr("activations")) or list(defaults) * nd
    if len(names) != len(defaults) * nd:
        raise IRError(
            f"node {node.name!r} ({node.op}): activations needs {len(defaults) * nd} names "
            f"({len(defaults)} per direction), got {names}"
        )
    alphas, betas = list(node.attr("activation_alpha")), list(node.attr("activation_beta"))
    out = []
    for name in names:
        if name not in ACTIVATIONS:
            raise IRError(f"node {node.name!r} ({node.op}): unknown activation {name!r} "
                          f"(known: {', '.join(ACTIVATIONS)})")
        da, db = ACTIVATION_PARAMS.get(name, (None, None))
        a = (alphas.pop(0) if alphas else da) if da is not None else None
        b = (betas.pop(0) if betas else db) if db is not None else None
        out.append((name, a, b))
    return out


def _check_shape(node: Node, port: str, value: Value, want: tuple[Dim, ...]) -> None:
    ok = value.rank == len(want) and all(
        w is None or d is None or d == w for d, w in zip(value.shape, want, strict=True))
    if not ok:
        raise IRError(
            f"node {node.name!r} ({node.op}): {port} has shape {list(value.shape)}, "
            f"expected {[('?' if w is None else w) for w in want]}"
        )


def _infer(node: Node, inputs: list[Value | None]) -> list[tuple]:
    x, w, r = need(node, inputs, 0), need(node, inputs, 1), need(node, inputs, 2)
    h = node.attr("hidden_size")
    if h <= 0:
        raise IRError(f"node {node.name!r} ({node.op}): hidden_size must be > 0, got {h}")
    if node.attr("clip") < 0:
        raise IRError(f"node {node.name!r} ({node.op}): clip must be >= 0")
    g, nd = GATES[node.op], num_directions(node)
    activations(node)
    if x.rank != 3:
        raise IRError(f"node {node.name!r} ({node.op}): X must be [batch, time, input], got "
                      f"{list(x.shape)}")
    batch, time, size = x.shape
    _check_shape(node, "W", w, (nd, g * h, size))
    _check_shape(node, "R", r, (nd, g * h, h))
    optional = {"B": (nd, 2 * g * h), "sequence_lens": (batch,),
                "initial_h": (batch, nd, h)}
    ports = ["B", "sequence_lens", "initial_h"]
    if node.op == "LSTM":
        optional.update({"initial_c": (batch, nd, h), "P": (nd, 3 * h)})
        ports += ["initial_c", "P"]
    for i, port in enumerate(ports, start=3):
        value = inputs[i] if i < len(inputs) else None
        if value is not None:
            _check_shape(node, port, value, optional[port])
    if len(inputs) > 4 and inputs[4] is not None and inputs[4].dtype != "int32":
        raise IRError(f"node {node.name!r} ({node.op}): sequence_lens must be int32")
    states = [(x.dtype, (batch, nd, h))] * (2 if node.op == "LSTM" else 1)
    return [(x.dtype, (batch, time, nd, h)), *states]


_SHAPES = """X is [batch, time, input] (time may be dynamic); W is [num_directions,
    {g}*H, input], R [num_directions, {g}*H, H], B [num_directions, 2*{g}*H] (W's biases
    then R's); sequence_lens [batch] int32 (steps past a sequence's length give zeros in
    Y and leave its state); initial states [batch, num_directions, H] (zeros when
    absent). Outputs: Y [batch, time, num_directions, H], the last state Y_h{c} [batch,
    num_directions, H]. This is ONNX's layout=1."""

op(
    "LSTM", onnx="LSTM",
    inputs=["X", "W", "R", "B?", "sequence_lens?", "initial_h?", "initial_c?", "P?"],
    outputs=["Y", "Y_h", "Y_c"],
    attrs={**_COMMON, "input_forget": Attr("int", 0, "1: couple the input and forget "
                                           "gates (f = 1 - i)", choices=(0, 1))},
    doc=f"""Long short-term memory, as ONNX LSTM: gates in the order i, o, f, c in W, R
    and B; i = f(X W_i^T + H R_i^T + P_i * C + Wb_i + Rb_i), f likewise with P_f, c' =
    g(...), C = f * C + i * c', o = f(... + P_o * C_new), H = o * h(C). Activations f, g,
    h default to Sigmoid, Tanh, Tanh. Peepholes P are [num_directions, 3*H] in the order
    i, o, f. {_SHAPES.format(g=4, c=' and Y_c')}""",
)(_infer)

op(
    "GRU", onnx="GRU",
    inputs=["X", "W", "R", "B?", "sequence_lens?", "initial_h?"],
    outputs=["Y", "Y_h"],
    attrs={**_COMMON, "linear_before_reset": Attr(
        "int", 0, "0: h' = g(X W_h^T + (r * H) R_h^T + Rb_h + Wb_h); 1: h' = g(X W_h^T + r * "
        "(H R_h^T + Rb_h) + Wb_h) (PyTorch's and Keras reset_after's form)", choices=(0, 1))},
    doc=f"""Gated recurrent unit, as ONNX GRU: gates in the order z, r, h in W, R and B;
    z = f(X W_z^T + H R_z^T + Wb_z + Rb_z), r likewise, h' as `linear_before_reset`
    says, H = (1 - z) * h' + z * H. Activations f, g default to Sigmoid, Tanh.
    {_SHAPES.format(g=3, c='')}""",
)(_infer)

op(
    "RNN", onnx="RNN",
    inputs=["X", "W", "R", "B?", "sequence_lens?", "initial_h?"],
    outputs=["Y", "Y_h"],
    attrs=_COMMON,
    doc=f"""Simple (Elman) recurrent layer, as ONNX RNN: H = f(X W^T + H R^T + Wb + Rb),
    f defaulting to Tanh. {_SHAPES.format(g=1, c='')}""",
)(_infer)
