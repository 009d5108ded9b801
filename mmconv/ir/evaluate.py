"""A small numpy evaluator of IR ops, for constant folding (framework-free).

Why: a node whose inputs are all weights (``sigmoid(gate)`` of a CNTK parameter,
``plus(param, const)``) computes the same tensor on every run.  Folding it into a
new weight keeps emitters from needing a runtime input to hang it on (a Keras
functional model has none for it; a convolution kernel must be static in Keras and
CNTK).  :func:`evaluate` covers only ops numpy computes exactly under the IR's
semantics (docs/ir-ops.md): elementwise arithmetic, comparisons, activations, the
softmax family, reductions and the pure shape ops (gather, expand, tile, the
depth/space rearrangements).  Convolution, pooling,
normalization and matrix products are deliberately left out (their accumulation
order is the runtime's business); for those it returns ``None`` and the node stays.

Floating-point inputs are computed in float64 and rounded once to the output dtype
shape inference gives, so a folded value is at least as accurate as the runtime's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from mmconv.ir.core import Node, Value
from mmconv.ir.ops.shape import expand_shape, slice_bounds
from mmconv.ir.registry import get_schema

Arrays = list[np.ndarray]


def _f64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def _float_only(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray | None]:
    """Integer semantics of these ops (ONNX Div truncates, Pow of ints...) are not numpy's."""
    def wrapped(node: Node, xs: Arrays) -> np.ndarray | None:
        if any(x.dtype.kind != "f" for x in xs):
            return None
        return fn(node, *[_f64(x) for x in xs])
    return wrapped


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _gelu(node: Node, x: np.ndarray) -> np.ndarray:
    if node.attr("approximate") == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a large negative input overflows harmlessly; keep numpy quiet about it
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


_UNARY_FLOAT: dict[str, Callable[..., np.ndarray]] = {
    "Neg": lambda n, x: -x,
    "Abs": lambda n, x: np.abs(x),
    "Exp": lambda n, x: np.exp(x),
    "Log": lambda n, x: np.log(x),
    "Sqrt": lambda n, x: np.sqrt(x),
    "Reciprocal": lambda n, x: 1.0 / x,
    "Floor": lambda n, x: np.floor(x),
    "Ceil": lambda n, x: np.ceil(x),
    "Round": lambda n, x: np.round(x),  # half to even, as the IR says
    "Sign": lambda n, x: np.sign(x),
    "Relu": lambda n, x: np.maximum(x, 0.0),
    "Sigmoid": lambda n, x: _sigmoid(x),
    "Tanh": lambda n, x: np.tanh(x),
    "Softplus": lambda n, x: _softplus(x),
    "Erf": lambda n, x: _erf(x),
    "Sin": lambda n, x: np.sin(x),
    "Cos": lambda n, x: np.cos(x),
    "Gelu": _gelu,
    "HardSwish": lambda n, x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "Softsign": lambda n, x: x / (1.0 + np.abs(x)),
    "Mish": lambda n, x: x * np.tanh(_softplus(x)),
    "Elu": lambda n, x: np.where(x > 0, x, n.attr("alpha") * np.expm1(np.minimum(x, 0))),
    "Selu": lambda n, x: n.attr("gamma") * np.where(
        x > 0, x, n.attr("alpha") * np.expm1(np.minimum(x, 0))),
    "LeakyRelu": lambda n, x: np.where(x >= 0, x, n.attr("alpha") * x),
    "HardSigmoid": lambda n, x: np.clip(n.attr("alpha") * x + n.attr("beta"), 0.0, 1.0),
    "PRelu": lambda n, x, s: np.where(x >= 0, x, s * x),
    "Add": lambda n, a, b: a + b,
    "Sub": lambda n, a, b: a - b,
    "Mul": lambda n, a, b: a * b,
    "Div": lambda n, a, b: a / b,
    "Pow": lambda n, a, b: np.power(a, b),
}

_ANY_DTYPE: dict[str, Callable[..., np.ndarray]] = {
    "Identity": lambda n, x: x,
    "Max": lambda n, a, b: np.maximum(a, b),
    "Min": lambda n, a, b: np.minimum(a, b),
    "Equal": lambda n, a, b: np.equal(a, b),
    "Greater": lambda n, a, b: np.greater(a, b),
    "Less": lambda n, a, b: np.less(a, b),
    "GreaterOrEqual": lambda n, a, b: np.greater_equal(a, b),
    "LessOrEqual": lambda n, a, b: np.less_equal(a, b),
    "Not": lambda n, x: np.logical_not(x),
    "Where": lambda n, c, x, y: np.where(c, x, y),
    "Cast": lambda n, x: x.astype(n.attr("to")),
    "Clip": lambda n, x: np.clip(x, n.attr("min"), n.attr("max")),
    "And": lambda n, a, b: np.logical_and(a, b),
    "Or": lambda n, a, b: np.logical_or(a, b),
    "Xor": lambda n, a, b: np.logical_xor(a, b),
}


def _axis_op(fn: Callable[[np.ndarray, int], np.ndarray]) -> Callable[..., np.ndarray | None]:
    def run(node: Node, x: np.ndarray) -> np.ndarray | None:
        if x.dtype.kind != "f":
            return None
        return fn(_f64(x), int(node.attr("axis")))
    return run


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _hardmax(x: np.ndarray, axis: int) -> np.ndarray:
    first = np.expand_dims(np.argmax(x, axis=axis), axis)
    out = np.zeros_like(x)
    np.put_along_axis(out, first, 1.0, axis=axis)
    return out


def _reduce(fn: Callable[..., np.ndarray], floats_only: bool = False,
            ) -> Callable[..., np.ndarray | None]:
    def run(node: Node, x: np.ndarray) -> np.ndarray | None:
        if floats_only and x.dtype.kind != "f":
            return None  # the integer mean/log rounding is the runtime's choice
        axes = tuple(int(a) % x.ndim for a in node.attr("axes")) or tuple(range(x.ndim))
        return fn(_f64(x), axis=axes, keepdims=bool(node.attr("keepdims")))
    return run


def _logsumexp(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _arg(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def run(node: Node, x: np.ndarray) -> np.ndarray:
        axis = int(node.attr("axis")) % x.ndim
        if node.attr("select_last_index"):
            flipped = np.flip(x, axis)
            idx = x.shape[axis] - 1 - fn(flipped, axis=axis)
        else:
            idx = fn(x, axis=axis)
        idx = idx.astype(np.int64)
        return np.expand_dims(idx, axis) if node.attr("keepdims") else idx
    return run


def _cumsum(node: Node, x: np.ndarray) -> np.ndarray:
    axis = int(node.attr("axis")) % x.ndim
    y = _f64(x)
    if node.attr("reverse"):
        y = np.flip(y, axis)
    out = np.cumsum(y, axis=axis)
    if node.attr("exclusive"):
        out = out - y
    return np.flip(out, axis) if node.attr("reverse") else out


def _mod(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu" and not np.all(b):
        return None  # integer division by zero: the runtime's business
    return np.fmod(_f64(a), _f64(b)) if node.attr("fmod") else np.mod(_f64(a), _f64(b))


def _gather(node: Node, x: np.ndarray, indices: np.ndarray) -> np.ndarray | None:
    axis = int(node.attr("axis")) % x.ndim
    size = x.shape[axis]
    if indices.dtype.kind not in "iu" or np.any(indices < -size) or np.any(indices >= size):
        return None  # out of range: left for the runtime to report
    return np.take(x, np.where(indices < 0, indices + size, indices), axis=axis)


def _expand(node: Node, x: np.ndarray, *like: np.ndarray) -> np.ndarray:
    batch = like[0].shape[0] if like else ""
    shape = expand_shape(node, x.shape, tuple(node.attr("shape")), batch)
    return np.broadcast_to(x, tuple(int(d) for d in shape))  # type: ignore[arg-type]


def _depth_to_space(node: Node, x: np.ndarray) -> np.ndarray:
    b = int(node.attr("blocksize"))
    n, c, h, w = x.shape
    if node.attr("mode") == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _space_to_depth(node: Node, x: np.ndarray) -> np.ndarray:
    b = int(node.attr("blocksize"))
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def _reshape(node: Node, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    return x.reshape(shape)


def _slice(node: Node, x: np.ndarray) -> np.ndarray:
    starts, ends = node.attr("starts"), node.attr("ends")
    axes = node.attr("axes") or tuple(range(len(starts)))
    steps = node.attr("steps") or (1,) * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        a = int(axis) % x.ndim
        s, e, _ = slice_bounds(int(start), int(end), int(step), x.shape[a])
        index[a] = slice(s, e if e >= 0 else None, int(step))
    return x[tuple(index)]


def _pad(node: Node, x: np.ndarray) -> np.ndarray:
    pads, rank = node.attr("pads"), x.ndim
    width = [(int(pads[i]), int(pads[rank + i])) for i in range(rank)]
    mode = node.attr("mode")
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=node.attr("value"))
    return np.pad(x, width, mode=mode)


_OTHER: dict[str, Callable[..., np.ndarray | None]] = {
    "Softmax": _axis_op(_softmax),
    "LogSoftmax": _axis_op(_log_softmax),
    "Hardmax": _axis_op(_hardmax),
    "ReduceSum": _reduce(np.sum),
    "ReduceMean": _reduce(np.mean, floats_only=True),
    "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min),
    "ReduceProd": _reduce(np.prod),
    "ReduceLogSumExp": _reduce(_logsumexp, floats_only=True),
    "ReduceL2": _reduce(lambda x, axis, keepdims: np.sqrt(np.sum(np.square(x), axis=axis,
                                                                 keepdims=keepdims)),
                        floats_only=True),
    "ArgMax": _arg(np.argmax),
    "ArgMin": _arg(np.argmin),
    "CumSum": _cumsum,
    "Transpose": lambda n, x: np.transpose(x, n.attr("perm")),
    "Concat": lambda n, *xs: np.concatenate(xs, axis=int(n.attr("axis")) % xs[0].ndim),
    "Slice": _slice,
    "Pad": _pad,
    "Mod": _mod,
    "Gather": _gather,
    "Expand": _expand,
    "Tile": lambda n, x: np.tile(x, tuple(int(r) for r in n.attr("repeats"))),
    "DepthToSpace": _depth_to_space,
    "SpaceToDepth": _space_to_depth,
}

#: The shape ops whose result is the input reshaped to the inferred output shape.
_RESHAPES = ("Reshape", "Flatten")

#: Every op :func:`evaluate` computes (for tests and docs).
FOLDABLE = frozenset([*_UNARY_FLOAT, *_ANY_DTYPE, *_OTHER, *_RESHAPES])


def evaluate(node: Node, arrays: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    """The outputs of ``node`` on ``arrays`` (its inputs, all present), or ``None``.

    ``None`` when the op is not one this evaluator computes exactly (see the module
    docstring), an input is absent, or the result does not have the dtype and shape
    shape inference says it must (never a wrong fold).
    """
    if node.op not in FOLDABLE or any(not i for i in node.inputs) \
            or len(arrays) != len(node.inputs):
        return None
    xs = [np.asarray(a) for a in arrays]
    schema = get_schema(node.op)
    assert schema.infer is not None
    values = [Value(name, x.dtype.name, tuple(x.shape)) for name, x in zip(node.inputs, xs,
                                                                            strict=True)]
    results = schema.infer(node, list(values))
    if len(results) != 1 or len(node.outputs) != 1:
        return None
    dtype, shape = results[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if node.op in _RESHAPES:
            if any(d is None for d in shape):
                return None
            out = _reshape(node, xs[0], [int(d) for d in shape])
        elif node.op in _UNARY_FLOAT:
            out = _float_only(_UNARY_FLOAT[node.op])(node, xs)
        elif node.op in _ANY_DTYPE:
            out = _ANY_DTYPE[node.op](node, *xs)
        else:
            out = _OTHER[node.op](node, *xs)
    if out is None:
        return None
    out = np.array(out, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
    if out.shape != tuple(shape):
        return None
    return [out]
