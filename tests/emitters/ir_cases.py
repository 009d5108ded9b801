"""The IR op case catalogue every emitter runs: tiny IR graphs with numpy-computed outputs.

Each case is a hand-built IR graph with inputs and the output an independent
numpy oracle (``reference.py``) computes under the IR's semantics
(docs/ir-ops.md). ``min_opset`` is ONNX-specific (the lowest ONNX opset that
can express the case); other targets ignore it.  Each emitter's op test
parametrizes over :data:`CASES`, and a coverage test there makes a new IR op
without a case fail CI.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mmconv.ir import Graph

from . import reference as ref

RNG = np.random.default_rng(1234)


def rand(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return RNG.uniform(low, high, size=shape).astype(np.float32)


@dataclass
class Case:
    graph: Graph
    feeds: dict[str, np.ndarray]
    expected: list[np.ndarray]
    min_opset: int = 7
    node: str = ""
    #: ONNX op types that must not appear (e.g. no Transpose in conv nets)
    ops: set[str] = field(default_factory=set)


CASES: dict[str, Callable[[], Case]] = {}


def case(name: str) -> Callable[[Callable[[], Case]], Callable[[], Case]]:
    def add(fn: Callable[[], Case]) -> Callable[[], Case]:
        assert name not in CASES
        CASES[name] = fn
        return fn
    return add


def one(op: str, inputs: list[str], feeds: dict[str, np.ndarray], expected: object,
        weights: dict[str, np.ndarray] | None = None, min_opset: int = 7,
        dynamic: bool = True, **attrs: object) -> Case:
    """A graph with one node of ``op``; graph inputs get a dynamic batch axis by default."""
    g = Graph(f"{op}_graph")
    for name, array in feeds.items():
        shape = list(array.shape)
        if dynamic and shape:
            shape[0] = None
        g.add_input(name, array.dtype.name, shape)
    for name, array in (weights or {}).items():
        g.add_weight(name, array)
    node = f"{op.lower()}_node"
    g.add_node(op, inputs, node, **attrs)  # type: ignore[arg-type]
    g.outputs = [node]
    exp = expected if isinstance(expected, list) else [expected]
    return Case(g, feeds, exp, min_opset, node)


# -- conv ---------------------------------------------------------------------
@case("conv_bias_pads_strides")
def _() -> Case:
    x, w, b = rand(2, 3, 7, 6), rand(4, 3, 3, 2), rand(4)
    attrs = {"strides": (2, 1), "pads": (1, 0, 2, 1)}  # asymmetric
    return one("Conv", ["x", "W", "B"], {"x": x}, ref.conv(x, w, b, **attrs),
               {"W": w, "B": b}, **attrs)


@case("conv_group_dilated")
def _() -> Case:
    x, w = rand(2, 4, 9, 9), rand(6, 2, 3, 3)
    attrs = {"dilations": (2, 3), "group": 2, "pads": (2, 1, 0, 3)}
    return one("Conv", ["x", "W"], {"x": x}, ref.conv(x, w, **attrs), {"W": w}, **attrs)


@case("conv_depthwise_1d")
def _() -> Case:
    x, w = rand(2, 3, 10), rand(3, 1, 4)
    attrs = {"group": 3, "strides": (3,), "pads": (1, 2)}
    return one("Conv", ["x", "W"], {"x": x}, ref.conv(x, w, **attrs), {"W": w}, **attrs)


# kernels wider than their input ("same" convs deep in small-input nets; CNTK refuses
# them unless the input is padded first)
@case("conv_kernel_over_input")
def _() -> Case:
    x, w, b = rand(2, 3, 2, 2), rand(4, 3, 3, 3), rand(4)
    attrs = {"pads": (1, 1, 1, 1)}
    return one("Conv", ["x", "W", "B"], {"x": x}, ref.conv(x, w, b, **attrs),
               {"W": w, "B": b}, **attrs)


@case("conv_kernel_over_input_same_stride2")
def _() -> Case:  # TensorFlow SAME: 5x5 stride 2 on 4x4, pads (1, 2) per axis
    x, w = rand(2, 3, 4, 4), rand(4, 3, 5, 5)
    attrs = {"strides": (2, 2), "pads": (1, 1, 2, 2)}
    return one("Conv", ["x", "W"], {"x": x}, ref.conv(x, w, **attrs), {"W": w}, **attrs)


@case("conv_kernel_over_input_depthwise")
def _() -> Case:
    x, w = rand(2, 4, 4, 4), rand(4, 1, 5, 5)
    attrs = {"group": 4, "pads": (2, 2, 2, 2)}
    return one("Conv", ["x", "W"], {"x": x}, ref.conv(x, w, **attrs), {"W": w}, **attrs)


@case("maxpool_kernel_over_input")
def _() -> Case:
    x = rand(2, 3, 2, 2)
    attrs = {"kernel_shape": (3, 3), "pads": (1, 1, 1, 1)}
    return one("MaxPool", ["x"], {"x": x}, ref.pool(x, "max", **attrs), **attrs)


@case("avgpool_kernel_over_input")
def _() -> Case:
    x = rand(2, 3, 2, 2)
    attrs = {"kernel_shape": (3, 3), "pads": (1, 1, 1, 1)}
    return one("AveragePool", ["x"], {"x": x}, ref.pool(x, "avg", **attrs), **attrs)


@case("conv_transpose")
def _() -> Case:
    x, w, b = rand(2, 4, 4, 3), rand(4, 3, 3, 3), rand(6)
    attrs = {"strides": (2, 3), "pads": (1, 0, 0, 2), "output_padding": (1, 0), "group": 2}
    return one("ConvTranspose", ["x", "W", "B"], {"x": x}, ref.conv_transpose(x, w, b, **attrs),
               {"W": w, "B": b}, **attrs)


@case("conv_transpose_dilated")
def _() -> Case:
    x, w = rand(1, 2, 5), rand(2, 3, 3)
    attrs = {"dilations": (2,), "pads": (1, 1)}
    return one("ConvTranspose", ["x", "W"], {"x": x}, ref.conv_transpose(x, w, **attrs),
               {"W": w}, **attrs)


# -- pool ---------------------------------------------------------------------
@case("maxpool_ceil")
def _() -> Case:  # before opset 10: extra end pads
    x = rand(2, 3, 8, 7)
    attrs = {"kernel_shape": (3, 3), "strides": (2, 2), "ceil_mode": True}
    return one("MaxPool", ["x"], {"x": x}, ref.pool(x, "max", **attrs), **attrs)


@case("maxpool_asymmetric_pads")
def _() -> Case:
    x = rand(2, 2, 6, 6, low=-3, high=-1)  # all negative: padding must never win
    attrs = {"kernel_shape": (3, 2), "strides": (1, 2), "pads": (2, 0, 0, 1)}
    return one("MaxPool", ["x"], {"x": x}, ref.pool(x, "max", **attrs), **attrs)


@case("maxpool_dilated")
def _() -> Case:
    x = rand(1, 2, 9, 9)
    attrs = {"kernel_shape": (2, 3), "dilations": (2, 2), "strides": (1, 2), "pads": (1, 1, 0, 1)}
    return one("MaxPool", ["x"], {"x": x}, ref.pool(x, "max", **attrs), min_opset=10, **attrs)


@case("maxpool_1d_ceil_pads")
def _() -> Case:
    x = rand(2, 3, 10)
    attrs = {"kernel_shape": (3,), "strides": (2,), "pads": (1, 0), "ceil_mode": True}
    return one("MaxPool", ["x"], {"x": x}, ref.pool(x, "max", **attrs), **attrs)


@case("avgpool_pads_exclude")
def _() -> Case:
    x = rand(2, 3, 6, 5)
    attrs = {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 0)}
    return one("AveragePool", ["x"], {"x": x}, ref.pool(x, "avg", **attrs), **attrs)


@case("avgpool_count_include_pad")
def _() -> Case:
    x = rand(2, 3, 6, 5)
    attrs = {"kernel_shape": (3, 2), "strides": (2, 1), "pads": (1, 0, 2, 1),
             "count_include_pad": True}
    return one("AveragePool", ["x"], {"x": x}, ref.pool(x, "avg", **attrs), **attrs)


@case("avgpool_ceil_exclude")
def _() -> Case:  # before opset 10: extra end pads, left out of the divisor
    x = rand(2, 2, 7, 8)
    attrs = {"kernel_shape": (2, 3), "strides": (2, 2), "ceil_mode": True}
    return one("AveragePool", ["x"], {"x": x}, ref.pool(x, "avg", **attrs), **attrs)


@case("avgpool_ceil_include_pad")
def _() -> Case:  # the overhang is not padding: needs real ceil_mode (opset 10)
    x = rand(2, 2, 7, 8)
    attrs = {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1),
             "ceil_mode": True, "count_include_pad": True}
    return one("AveragePool", ["x"], {"x": x}, ref.pool(x, "avg", **attrs), min_opset=10,
               **attrs)


@case("avgpool_ceil_include_pad_exact")
def _() -> Case:  # ceil and floor agree here, so ceil_mode can simply be dropped
    x = rand(2, 2, 7, 7)
    attrs = {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1),
             "ceil_mode": True, "count_include_pad": True}
    return one("AveragePool", ["x"], {"x": x}, ref.pool(x, "avg", **attrs), **attrs)


@case("avgpool_dilated")
def _() -> Case:
    x = rand(1, 2, 8, 8)
    attrs = {"kernel_shape": (2, 2), "dilations": (2, 3), "pads": (1, 0, 0, 1)}
    return one("AveragePool", ["x"], {"x": x}, ref.pool(x, "avg", **attrs), min_opset=19,
               **attrs)


@case("global_pools")
def _() -> Case:
    x = rand(2, 3, 4, 5)
    g = Graph("global")
    g.add_input("x", "float32", [None, 3, 4, 5])
    g.add_node("GlobalAveragePool", ["x"], "gap")
    g.add_node("GlobalMaxPool", ["x"], "gmp")
    g.outputs = ["gap", "gmp"]
    return Case(g, {"x": x}, [x.mean(axis=(2, 3), keepdims=True),
                              x.max(axis=(2, 3), keepdims=True)])


# -- normalization --------------------------------------------------------------
def _bn_params(shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {"scale": rand(*shape), "B": rand(*shape), "mean": rand(*shape),
            "var": rand(*shape, low=0.1, high=2.0)}


@case("batchnorm_spatial")
def _() -> Case:
    x, p = rand(2, 3, 4, 5), _bn_params((3,))
    return one("BatchNormalization", ["x", "scale", "B", "mean", "var"], {"x": x},
               ref.batch_norm(x, *p.values(), epsilon=1e-3, spatial=True), p, epsilon=1e-3)


@case("batchnorm_spatial_c11_params")
def _() -> Case:  # CNTK-style [C,1,1] parameters, stored as [C] under their own names
    x, p = rand(2, 3, 4, 5), _bn_params((3, 1, 1))
    return one("BatchNormalization", ["x", "scale", "B", "mean", "var"], {"x": x},
               ref.batch_norm(x, *p.values(), epsilon=1e-5, spatial=True), p)


@case("batchnorm_rank2")
def _() -> Case:
    x, p = rand(3, 6), _bn_params((6,))
    return one("BatchNormalization", ["x", "scale", "B", "mean", "var"], {"x": x},
               ref.batch_norm(x, *p.values(), epsilon=1e-5, spatial=True), p)


@case("batchnorm_shared_params")
def _() -> Case:  # the same [C,1,1] weights feed two BNs: Reshape nodes, weights untouched
    x, p = rand(2, 3, 4, 5), _bn_params((3, 1, 1))
    g = Graph("bn_shared")
    g.add_input("x", "float32", [None, 3, 4, 5])
    for k, v in p.items():
        g.add_weight(k, v)
    g.add_node("BatchNormalization", ["x", *p], "bn1")
    g.add_node("BatchNormalization", ["bn1", *p], "bn2")
    g.outputs = ["bn2"]
    y = ref.batch_norm(x, *p.values(), epsilon=1e-5, spatial=True)
    return Case(g, {"x": x}, [ref.batch_norm(y, *p.values(), epsilon=1e-5, spatial=True)])


@case("batchnorm_per_element")
def _() -> Case:  # folded into one Mul and one Add at emit time
    x, p = rand(2, 3, 4, 5), _bn_params((3, 4, 5))
    return one("BatchNormalization", ["x", "scale", "B", "mean", "var"], {"x": x},
               ref.batch_norm(x, *p.values(), epsilon=1e-4, spatial=False), p,
               epsilon=1e-4, spatial=False)


@case("batchnorm_per_element_runtime_scale")
def _() -> Case:  # a parameter computed at run time cannot be folded: arithmetic nodes
    x, p = rand(2, 3, 4), _bn_params((12,))
    scale = p.pop("scale")
    g = Graph("bn_runtime")
    g.add_input("x", "float32", [None, 3, 4])
    g.add_input("s", "float32", [12])
    for k, v in p.items():
        g.add_weight(k, v)
    g.add_node("BatchNormalization", ["x", "s", "B", "mean", "var"], "bn", spatial=False)
    g.outputs = ["bn"]
    y = ref.batch_norm(x, scale, p["B"], p["mean"], p["var"], epsilon=1e-5, spatial=False)
    return Case(g, {"x": x, "s": scale}, [y])


@case("lrn")
def _() -> Case:
    x = rand(2, 7, 3, 3)
    attrs = {"size": 5, "alpha": 1e-2, "beta": 0.75, "bias": 2.0}
    return one("LRN", ["x"], {"x": x}, ref.lrn(x, **attrs), **attrs)


@case("layernorm_last_axis")
def _() -> Case:
    x, s, b = rand(2, 5, 6), rand(6), rand(6)
    return one("LayerNormalization", ["x", "scale", "B"], {"x": x},
               ref.layer_norm(x, s, b, -1, 1e-5), {"scale": s, "B": b})


@case("layernorm_axis1_no_bias")
def _() -> Case:
    x, s = rand(2, 3, 4), rand(3, 4)
    return one("LayerNormalization", ["x", "scale"], {"x": x},
               ref.layer_norm(x, s, None, 1, 1e-3), {"scale": s}, axis=1, epsilon=1e-3)


# -- activation -------------------------------------------------------------------
def _activation_case(op: str, **attrs: float) -> Callable[[], Case]:
    def build() -> Case:
        x = rand(3, 4, 5, low=-4, high=4)
        return one(op, ["x"], {"x": x}, ref.ACTIVATIONS[op](x.astype(np.float64), **attrs),
                   **attrs)
    return build


for _op in ref.ACTIVATIONS:
    case(_op.lower())(_activation_case(_op))
case("elu_alpha")(_activation_case("Elu", alpha=0.5))
case("leakyrelu_alpha")(_activation_case("LeakyRelu", alpha=0.2))
case("hardsigmoid_alpha_beta")(_activation_case("HardSigmoid", alpha=0.3, beta=0.4))
case("selu_params")(_activation_case("Selu", alpha=1.5, gamma=1.1))


@case("prelu_channel")
def _() -> Case:
    x, s = rand(2, 3, 4, 4), rand(3, 1, 1)
    return one("PRelu", ["x", "slope"], {"x": x}, np.where(x >= 0, x, s * x), {"slope": s})


@case("prelu_broadcast_out")
def _() -> Case:  # the slope broadcasts X up: no ONNX PRelu, relu arithmetic instead
    x, s = rand(2, 1, 4), rand(3, 1)
    return one("PRelu", ["x", "slope"], {"x": x}, np.where(x >= 0, x, s * x), {"slope": s},
               dynamic=False)


def _softmax_case(op: str, shape: tuple[int, ...], axis: int, min_opset: int = 7,
                  ties: bool = False) -> Callable[[], Case]:
    fn = {"Softmax": ref.softmax, "LogSoftmax": ref.log_softmax, "Hardmax": ref.hardmax}[op]

    def build() -> Case:
        x = rand(*shape, low=-3, high=3)
        if ties:
            x = np.round(x)
        return one(op, ["x"], {"x": x}, fn(x, axis), min_opset=min_opset, axis=axis)
    return build


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    _name = _op.lower()
    case(f"{_name}_last")(_softmax_case(_op, (2, 3, 5), -1))
    case(f"{_name}_middle")(  # before 13 decomposed along the axis (Hardmax: OneHot, 9+)
        _softmax_case(_op, (2, 4, 3), 1, min_opset=9 if _op == "Hardmax" else 7))
    case(f"{_name}_trailing_ones")(_softmax_case(_op, (2, 5, 1, 1), 1))
case("hardmax_ties")(_softmax_case("Hardmax", (2, 6, 3), 1, min_opset=9, ties=True))


# -- elementwise ------------------------------------------------------------------
def _binary_case(op: str, a: np.ndarray, b: np.ndarray, min_opset: int = 7,
                 b_weight: bool = False) -> Callable[[], Case]:
    def build() -> Case:
        expected = ref.BINARY[op](a.astype(np.float64) if a.dtype.kind == "f" else a,
                                  b.astype(np.float64) if b.dtype.kind == "f" else b)
        if b_weight:
            return one(op, ["a", "b"], {"a": a}, expected, {"b": b}, min_opset=min_opset)
        return one(op, ["a", "b"], {"a": a, "b": b}, expected, min_opset=min_opset,
                   dynamic=False)
    return build


for _op in ("Add", "Sub", "Mul", "Div"):
    case(f"{_op.lower()}_broadcast")(_binary_case(_op, rand(2, 3, 4), rand(3, 1) + 3,
                                                  b_weight=True))
case("pow")(_binary_case("Pow", rand(2, 3, low=0.5, high=2), rand(2, 3)))
case("max_same_shape")(_binary_case("Max", rand(2, 3), rand(2, 3)))
case("min_same_shape")(_binary_case("Min", rand(2, 3), rand(2, 3)))
case("max_broadcast")(_binary_case("Max", rand(2, 3), rand(3), min_opset=8))
case("min_broadcast")(_binary_case("Min", rand(4, 1), rand(3), min_opset=8))
_ints_a = RNG.integers(-3, 3, size=(3, 4)).astype(np.float32)
_ints_b = RNG.integers(-3, 3, size=(4,)).astype(np.float32)
case("equal_float")(_binary_case("Equal", _ints_a, _ints_b, min_opset=11))
case("equal_int64")(_binary_case("Equal", _ints_a.astype(np.int64), _ints_b.astype(np.int64)))
case("greater")(_binary_case("Greater", _ints_a, _ints_b))
case("less")(_binary_case("Less", _ints_a, _ints_b))
case("greater_int32")(_binary_case("Greater", _ints_a.astype(np.int32),
                                   _ints_b.astype(np.int32), min_opset=9))
case("greater_or_equal")(_binary_case("GreaterOrEqual", _ints_a, _ints_b))
case("less_or_equal")(_binary_case("LessOrEqual", _ints_a, _ints_b))


def _unary_case(op: str, x: np.ndarray, min_opset: int = 7) -> Callable[[], Case]:
    def build() -> Case:
        return one(op, ["x"], {"x": x}, ref.UNARY[op](x.astype(np.float64)),
                   min_opset=min_opset)
    return build


_halves = np.array([[0.5, 1.5, 2.5, -0.5], [-1.5, 0.4, -2.6, 0.0]], dtype=np.float32)
for _op in ("Identity", "Neg", "Abs", "Exp", "Floor", "Ceil"):
    case(_op.lower())(_unary_case(_op, rand(2, 3, 4)))
case("log")(_unary_case("Log", rand(2, 5, low=0.1, high=5)))
case("sqrt")(_unary_case("Sqrt", rand(2, 5, low=0.0, high=5)))
case("reciprocal")(_unary_case("Reciprocal", rand(2, 5, low=0.5, high=5)))
case("round_half_even")(_unary_case("Round", _halves, min_opset=11))
case("sign")(_unary_case("Sign", _halves, min_opset=9))


@case("clip_both")
def _() -> Case:
    x = rand(3, 5, low=-3, high=3)
    return one("Clip", ["x"], {"x": x}, np.clip(x, -1.0, 0.5), min=-1.0, max=0.5)


@case("clip_max_only")
def _() -> Case:  # relu6-style: opset 11+ leaves the min input empty
    x = rand(3, 5, low=-3, high=8)
    return one("Clip", ["x"], {"x": x}, np.minimum(x, 6.0), max=6.0)


@case("clip_min_only")
def _() -> Case:
    x = rand(3, 5, low=-3, high=3)
    return one("Clip", ["x"], {"x": x}, np.maximum(x, 0.25), min=0.25)


@case("clip_int32")
def _() -> Case:
    x = RNG.integers(-10, 10, size=(3, 4)).astype(np.int32)
    return one("Clip", ["x"], {"x": x}, np.clip(x, -2, 3), min=-2.0, max=3.0, min_opset=12)


@case("where")
def _() -> Case:
    c = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    x, y = rand(3, 4), rand(4)
    return one("Where", ["c", "x", "y"], {"c": c, "x": x}, np.where(c, x, y), {"y": y},
               min_opset=9)


# -- linalg -----------------------------------------------------------------------
@case("dense_bias")
def _() -> Case:
    x, w, b = rand(3, 6), rand(4, 6), rand(4)
    return one("Dense", ["x", "W", "B"], {"x": x},
               x.astype(np.float64) @ w.T.astype(np.float64) + b, {"W": w, "B": b})


@case("dense_no_bias")
def _() -> Case:  # Gemm's bias is optional only from opset 11: a zero bias before
    x, w = rand(3, 6), rand(4, 6)
    return one("Dense", ["x", "W"], {"x": x}, x.astype(np.float64) @ w.T.astype(np.float64),
               {"W": w})


@case("matmul_batched")
def _() -> Case:
    a, b = rand(2, 3, 4), rand(4, 5)
    return one("MatMul", ["a", "b"], {"a": a}, a.astype(np.float64) @ b, {"b": b})


@case("matmul_vector")
def _() -> Case:
    a, b = rand(3, 4), rand(4)
    return one("MatMul", ["a", "b"], {"a": a}, a.astype(np.float64) @ b, {"b": b})


# -- shape ------------------------------------------------------------------------
@case("flatten_axis2")
def _() -> Case:
    x = rand(2, 3, 4, 5)
    return one("Flatten", ["x"], {"x": x}, x.reshape(6, 20), axis=2, dynamic=False)


@case("flatten_axis1")
def _() -> Case:
    x = rand(2, 3, 4)
    return one("Flatten", ["x"], {"x": x}, x.reshape(2, 12))


@case("flatten_axis0")
def _() -> Case:
    x = rand(2, 3, 4)
    return one("Flatten", ["x"], {"x": x}, x.reshape(1, 24), axis=0, dynamic=False)


@case("flatten_int64")
def _() -> Case:
    x = RNG.integers(0, 9, size=(2, 3, 2)).astype(np.int64)
    return one("Flatten", ["x"], {"x": x}, x.reshape(2, 6), min_opset=9)


@case("reshape_copy_and_infer")
def _() -> Case:
    x = rand(2, 3, 4, 2)
    return one("Reshape", ["x"], {"x": x}, x.reshape(2, 4, 6), shape=(0, 4, -1))


@case("transpose")
def _() -> Case:
    x = rand(2, 3, 4, 5)
    return one("Transpose", ["x"], {"x": x}, x.transpose(0, 2, 3, 1), perm=(0, 2, 3, 1))


@case("concat_channels")
def _() -> Case:
    a, b, c = rand(2, 3, 2), rand(2, 1, 2), rand(2, 2, 2)
    return one("Concat", ["a", "b", "c"], {"a": a, "b": b}, np.concatenate([a, b, c], 1),
               {"c": c}, axis=1)


@case("concat_negative_axis")
def _() -> Case:  # written as a positive axis: negative ones are legal only from opset 11
    a, b = rand(2, 3, 2), rand(2, 3, 4)
    return one("Concat", ["a", "b"], {"a": a, "b": b}, np.concatenate([a, b], -1), axis=-1)


# -- reduce ------------------------------------------------------------------------
_NP_REDUCE = {
    "ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max, "ReduceMin": np.min,
    "ReduceProd": np.prod,
    "ReduceLogSumExp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x.astype(np.float64)),
                                                               axis=axis, keepdims=keepdims)),
}


def _reduce_case(op: str, axes: tuple[int, ...], keepdims: bool) -> Callable[[], Case]:
    def build() -> Case:
        x = rand(2, 3, 4, low=0.5, high=1.5) if op == "ReduceProd" else rand(2, 3, 4)
        np_axes = axes or None
        want = _NP_REDUCE[op](x, axis=np_axes, keepdims=keepdims)
        return one(op, ["x"], {"x": x}, np.asarray(want, dtype=np.float32), axes=axes,
                   keepdims=keepdims, dynamic=bool(axes) and 0 not in axes)
    return build


case("reduce_sum_axis1")(_reduce_case("ReduceSum", (1,), True))
case("reduce_mean_last_two_nokeep")(_reduce_case("ReduceMean", (-2, -1), False))
case("reduce_max_all")(_reduce_case("ReduceMax", (), False))
case("reduce_min_axis2")(_reduce_case("ReduceMin", (2,), True))
case("reduce_prod_axis2")(_reduce_case("ReduceProd", (2,), False))
case("reduce_logsumexp_axis1")(_reduce_case("ReduceLogSumExp", (1,), True))


@case("argmax_keepdims")
def _() -> Case:
    x = rand(2, 3, 4)
    return one("ArgMax", ["x"], {"x": x}, np.argmax(x, axis=1)[:, None, :], axis=1)


@case("argmin_last_axis_nokeep")
def _() -> Case:
    x = rand(2, 3, 4)
    return one("ArgMin", ["x"], {"x": x}, np.argmin(x, axis=-1), axis=-1, keepdims=False)


@case("argmax_select_last")
def _() -> Case:  # ties: the last index (opset 12+)
    x = np.asarray([[1, 3, 3, 0], [2, 2, 1, 2]], dtype=np.float32)
    return one("ArgMax", ["x"], {"x": x}, np.asarray([[2], [3]], dtype=np.int64), axis=1,
               select_last_index=True, min_opset=12)


@case("cumsum_batch_axis")
def _() -> Case:  # numbering the batch: the frontends' use of it
    x = np.ones((3, 2, 1), dtype=np.float32)
    return one("CumSum", ["x"], {"x": x}, np.cumsum(x, axis=0), axis=0, min_opset=11)


@case("cumsum_exclusive_reverse")
def _() -> Case:
    x = rand(2, 5)
    want = np.flip(np.cumsum(np.flip(x, 1), axis=1), 1) - x
    return one("CumSum", ["x"], {"x": x}, want, axis=1, exclusive=True, reverse=True,
               min_opset=11)


# -- shape: Slice, Pad; Cast, Not -----------------------------------------------------
@case("slice_two_axes")
def _() -> Case:
    x = rand(2, 5, 6)
    return one("Slice", ["x"], {"x": x}, x[:, 1:4, -4:], starts=(1, -4), ends=(4, 100),
               axes=(1, -1))


@case("slice_steps")
def _() -> Case:
    x = rand(2, 5, 7)
    return one("Slice", ["x"], {"x": x}, x[:, :, 1::3], starts=(1,), ends=(7,), axes=(2,),
               steps=(3,), min_opset=10)


@case("slice_reversed_to_start")
def _() -> Case:  # the symmetric-padding building block: end -size-1 means "through 0"
    x = rand(2, 3, 5)
    return one("Slice", ["x"], {"x": x}, x[:, :, 1::-1], starts=(1,), ends=(-6,), axes=(2,),
               steps=(-1,), min_opset=10)


@case("pad_constant_value")
def _() -> Case:
    x = rand(2, 3, 4)
    want = np.pad(x, [(0, 0), (1, 2), (2, 0)], constant_values=0.5)
    return one("Pad", ["x"], {"x": x}, want, pads=(0, 1, 2, 0, 2, 0), value=0.5)


@case("pad_reflect")
def _() -> Case:
    x = rand(2, 3, 4)
    want = np.pad(x, [(0, 0), (2, 1), (1, 3)], mode="reflect")
    return one("Pad", ["x"], {"x": x}, want, pads=(0, 2, 1, 0, 1, 3), mode="reflect")


@case("pad_edge")
def _() -> Case:
    x = rand(2, 3, 4)
    want = np.pad(x, [(0, 0), (0, 2), (3, 1)], mode="edge")
    return one("Pad", ["x"], {"x": x}, want, pads=(0, 0, 3, 0, 2, 1), mode="edge")


@case("cast_bool_to_float")
def _() -> Case:
    c = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    return one("Cast", ["c"], {"c": c}, c.astype(np.float32), to="float32")


@case("cast_float_to_int64")
def _() -> Case:
    x = np.asarray([[0.0, -1.5, 2.0], [0.25, 0.0, 3.0]], dtype=np.float32)
    return one("Cast", ["x"], {"x": x}, x.astype(np.int64), to="int64")


@case("not")
def _() -> Case:
    c = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    return one("Not", ["c"], {"c": c}, np.logical_not(c))


# -- detection ----------------------------------------------------------------------
@case("max_roi_pool")
def _() -> Case:
    x = rand(2, 3, 12, 10)
    rois = np.asarray([[0, 1.2, 2.6, 15.0, 20.4], [1, 0.0, 0.0, 19.0, 23.0],
                       [1, 7.0, 9.5, 8.0, 10.0], [0, 30.0, 2.0, 35.0, 5.0]], dtype=np.float32)
    want = ref.max_roi_pool(x, rois, (3, 2), 0.5)
    return one("MaxRoiPool", ["x", "rois"], {"x": x, "rois": rois}, want, pooled_shape=(3, 2),
               spatial_scale=0.5, dynamic=False)


# -- constant subgraphs: nodes whose inputs are all weights ---------------------------
# The CNTK frontend folds these (passes.fold_constants); graphs from elsewhere (an IR
# file, another frontend, a pass that runs later) can still hold them, so every emitter
# must compute them itself, from weights alone, with no runtime input to hang them on.
@case("const_sigmoid_gate")
def _() -> Case:  # CNTK: x * sigmoid(gate), the gate a parameter
    x, gate = rand(2, 3, 4, 5), rand(3, 1, 1)
    g = Graph("const_gate")
    g.add_input("x", "float32", [None, 3, 4, 5])
    g.add_weight("gate", gate)
    g.add_node("Sigmoid", ["gate"], "gate_sig")
    g.add_node("Mul", ["x", "gate_sig"], "gated")
    g.outputs = ["gated"]
    want = x.astype(np.float64) / (1 + np.exp(-gate.astype(np.float64)))
    return Case(g, {"x": x}, [want], node="gate_sig")


@case("const_add_kernel_then_conv")
def _() -> Case:  # the kernel and the bias are each computed from two weights
    x, w1, w2 = rand(2, 3, 6, 5), rand(4, 3, 3, 3), rand(4, 3, 3, 3)
    b1, b2 = rand(4), rand(1)
    g = Graph("const_kernel")
    g.add_input("x", "float32", [None, 3, 6, 5])
    for k, v in {"w1": w1, "w2": w2, "b1": b1, "b2": b2}.items():
        g.add_weight(k, v)
    g.add_node("Add", ["w1", "w2"], "kernel")
    g.add_node("Sub", ["b1", "b2"], "bias")
    g.add_node("Conv", ["x", "kernel", "bias"], "conv", pads=(1, 1, 1, 1))
    g.outputs = ["conv"]
    want = ref.conv(x, w1 + w2, b1 - b2, pads=(1, 1, 1, 1))
    return Case(g, {"x": x}, [want], node="kernel")


@case("const_chain_shape_ops")
def _() -> Case:  # a chain of shape/activation ops on weights only, then used twice
    x, w = rand(2, 4, 3), rand(3, 4)
    g = Graph("const_chain")
    g.add_input("x", "float32", [None, 4, 3])
    g.add_weight("w", w)
    g.add_weight("half", np.asarray(0.5, dtype=np.float32))
    g.add_node("Transpose", ["w"], "wt", perm=(1, 0))
    g.add_node("Tanh", ["wt"], "wt_tanh")
    g.add_node("Mul", ["wt_tanh", "half"], "wt_half")
    g.add_node("Reshape", ["wt_half"], "wr", shape=(1, 4, 3))
    g.add_node("Add", ["x", "wr"], "sum")
    g.add_node("Mul", ["sum", "wt_half"], "prod")
    g.outputs = ["prod"]
    c = np.tanh(w.T.astype(np.float64)) * 0.5
    want = (x.astype(np.float64) + c[None]) * c
    return Case(g, {"x": x}, [want], node="wt")


# -- ops for the ONNX and Keras frontends (own generator: the draws above stay put) ---
_BEFORE_FRONTEND_OPS = set(CASES)
_NEW = np.random.default_rng(2026)


def _r(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return _NEW.uniform(low, high, size=shape).astype(np.float32)


def _more_unary_case(op: str, min_opset: int, low: float = -4.0, high: float = 4.0,
                     **attrs: object) -> Callable[[], Case]:
    def build() -> Case:
        x = _r(3, 4, 5, low=low, high=high)
        return one(op, ["x"], {"x": x}, ref.MORE_UNARY[op](x.astype(np.float64), **attrs),
                   min_opset=min_opset, **attrs)
    return build


case("erf")(_more_unary_case("Erf", 9, low=-3, high=3))
case("sin")(_more_unary_case("Sin", 7, low=-7, high=7))
case("cos")(_more_unary_case("Cos", 7, low=-7, high=7))
case("hardswish")(_more_unary_case("HardSwish", 7, low=-5, high=5))
case("softsign")(_more_unary_case("Softsign", 7))
case("mish")(_more_unary_case("Mish", 7, low=-6, high=6))
case("gelu")(_more_unary_case("Gelu", 9))
case("gelu_tanh")(_more_unary_case("Gelu", 7, approximate="tanh"))


def _mod_case(a: np.ndarray, b: np.ndarray, fmod: int, b_weight: bool = True
              ) -> Callable[[], Case]:
    def build() -> Case:
        want = np.fmod(a, b) if fmod else np.mod(a, b)
        if a.dtype.kind == "f":
            want = (np.fmod(a.astype(np.float64), b) if fmod
                    else np.mod(a.astype(np.float64), b))
        if b_weight:
            return one("Mod", ["a", "b"], {"a": a}, want, {"b": b}, min_opset=10, fmod=fmod)
        return one("Mod", ["a", "b"], {"a": a, "b": b}, want, min_opset=10, fmod=fmod,
                   dynamic=False)
    return build


_mod_a = np.round(_NEW.uniform(-9, 9, size=(2, 3, 4)), 2).astype(np.float32)
_mod_b = np.asarray([[2.5], [-1.5], [4.0]], dtype=np.float32)
case("mod_float_floor")(_mod_case(_mod_a, _mod_b, 0))
case("mod_float_fmod")(_mod_case(_mod_a, _mod_b, 1))
case("mod_int64_floor")(_mod_case(_NEW.integers(-20, 20, size=(3, 4)).astype(np.int64),
                                  np.asarray([3, -4, 5, 7], np.int64), 0, b_weight=False))


def _logical_case(op: str) -> Callable[[], Case]:
    fn = {"And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}[op]

    def build() -> Case:
        a = _NEW.integers(0, 2, size=(2, 3, 4)).astype(bool)
        b = _NEW.integers(0, 2, size=(3, 1)).astype(bool)
        return one(op, ["a", "b"], {"a": a, "b": b}, fn(a, b), dynamic=False)
    return build


for _op in ("And", "Or", "Xor"):
    case(_op.lower())(_logical_case(_op))


@case("reduce_l2_spatial")
def _() -> Case:
    x = _r(2, 3, 4, 5)
    want = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=(2, 3), keepdims=True))
    return one("ReduceL2", ["x"], {"x": x}, want, axes=(2, 3))


@case("reduce_l2_channels_nokeep")
def _() -> Case:
    x = _r(2, 3, 4)
    want = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=1))
    return one("ReduceL2", ["x"], {"x": x}, want, axes=(-2,), keepdims=False)


@case("instance_norm")
def _() -> Case:
    x, s, b = _r(2, 3, 5, 4) * 3 + 1, _r(3), _r(3)
    return one("InstanceNormalization", ["x", "scale", "B"], {"x": x},
               ref.instance_norm(x, s, b, 1e-3), {"scale": s, "B": b}, epsilon=1e-3)


@case("instance_norm_1d")
def _() -> Case:
    x, s, b = _r(2, 4, 7), _r(4), _r(4)
    return one("InstanceNormalization", ["x", "scale", "B"], {"x": x},
               ref.instance_norm(x, s, b, 1e-5), {"scale": s, "B": b})


@case("gather_embedding")
def _() -> Case:  # X a weight, runtime int64 indices with a dynamic batch
    table = _r(10, 4)
    idx = _NEW.integers(0, 10, size=(3, 5)).astype(np.int64)
    return one("Gather", ["table", "idx"], {"idx": idx}, table[idx].astype(np.float64),
               {"table": table})


@case("gather_scalar_index")
def _() -> Case:  # x[:, -2]: a scalar weight index removes the axis
    x = _r(2, 5, 4)
    return one("Gather", ["x", "i"], {"x": x}, x[:, -2], {"i": np.asarray(-2, np.int64)},
               axis=1)


@case("gather_index_vector_last_axis")
def _() -> Case:
    x = _r(2, 3, 6)
    idx = np.asarray([4, 0, 5, 5, -1], np.int64)
    return one("Gather", ["x", "i"], {"x": x}, x[:, :, idx], {"i": idx}, axis=2)


@case("gather_index_matrix_middle_axis")
def _() -> Case:  # int32 indices of rank 2 along axis 1: the output gains an axis
    x = _r(2, 5, 3)
    idx = np.asarray([[1, 0], [4, 4], [2, 3]], np.int32)
    return one("Gather", ["x", "i"], {"x": x}, x[:, idx], {"i": idx}, axis=1)


@case("expand_keep_batch")
def _() -> Case:  # -1 and 0 keep X's dims (the dynamic batch)
    x = _r(2, 1, 4)
    return one("Expand", ["x"], {"x": x}, np.broadcast_to(x, (2, 3, 4)), shape=(-1, 3, 0),
               min_opset=8)


@case("expand_rank_up")
def _() -> Case:  # bidirectional: X [3, 1] against (2, 1, 4) -> [2, 3, 4]
    x = _r(2, 3, 1)
    return one("Expand", ["x"], {"x": x}, np.broadcast_to(x, (2, 2, 3, 4)),
               shape=(2, 1, 1, 4), min_opset=8, dynamic=False)


@case("tile")
def _() -> Case:
    x = _r(2, 2, 3)
    return one("Tile", ["x"], {"x": x}, np.tile(x, (1, 3, 2)), repeats=(1, 3, 2))


@case("depth_to_space_dcr")
def _() -> Case:
    x = _r(2, 8, 3, 2)
    return one("DepthToSpace", ["x"], {"x": x}, ref.depth_to_space(x, 2, "DCR"), blocksize=2)


@case("depth_to_space_crd")
def _() -> Case:
    x = _r(2, 9, 2, 3)
    return one("DepthToSpace", ["x"], {"x": x}, ref.depth_to_space(x, 3, "CRD"), blocksize=3,
               mode="CRD", min_opset=11)


@case("space_to_depth")
def _() -> Case:
    x = _r(2, 3, 4, 6)
    return one("SpaceToDepth", ["x"], {"x": x}, ref.space_to_depth(x, 2), blocksize=2)


def _resize_case(shape: tuple[int, ...], mode: str, min_opset: int = 11,
                 scales: tuple[float, ...] = (), sizes: tuple[int, ...] = (),
                 **attrs: str) -> Callable[[], Case]:
    def build() -> Case:
        x = _r(*shape)
        if scales:
            out = [math.floor(d * s) for d, s in zip(shape, scales, strict=True)]
            eff = list(scales)
        else:
            out = [d if s == 0 else s for d, s in zip(shape, sizes, strict=True)]
            eff = [o / d for o, d in zip(out, shape, strict=True)]
        want = ref.resize(x, out, eff, mode, **attrs)
        return one("Resize", ["x"], {"x": x}, want, min_opset=min_opset, mode=mode,
                   scales=scales, sizes=sizes, **attrs)
    return build


case("resize_nearest_2x_asymmetric_floor")(_resize_case(
    (2, 3, 4, 5), "nearest", 7, scales=(1, 1, 2, 2),
    coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
case("resize_nearest_2x_half_pixel")(_resize_case(  # torch/keras nearest upsampling
    (2, 3, 4, 5), "nearest", scales=(1, 1, 2, 2)))
case("resize_nearest_sizes_round_prefer_ceil")(_resize_case(  # torch nearest-exact
    (2, 2, 4, 5), "nearest", sizes=(0, 0, 7, 9), nearest_mode="round_prefer_ceil"))
case("resize_nearest_tf_half_pixel_3x")(_resize_case(
    (1, 2, 3, 4), "nearest", scales=(1, 1, 3, 3),
    coordinate_transformation_mode="tf_half_pixel_for_nn", nearest_mode="floor"))
case("resize_linear_2x_half_pixel")(_resize_case((2, 3, 4, 5), "linear", scales=(1, 1, 2, 2)))
case("resize_linear_align_corners_sizes")(_resize_case(
    (2, 2, 4, 5), "linear", sizes=(0, 0, 7, 10),
    coordinate_transformation_mode="align_corners"))
case("resize_linear_asymmetric_2x")(_resize_case(
    (2, 2, 3, 4), "linear", 7, scales=(1, 1, 2, 2),
    coordinate_transformation_mode="asymmetric"))
case("resize_linear_pytorch_half_pixel_down")(_resize_case(
    (2, 2, 8, 6), "linear", sizes=(0, 0, 4, 1),
    coordinate_transformation_mode="pytorch_half_pixel"))
case("resize_linear_fractional_scales")(_resize_case(  # floor(5 * 1.5) = 7, scale 1.5 used
    (1, 2, 4, 5), "linear", scales=(1, 1, 1.5, 1.5)))


case("resize_linear_3d_half_pixel")(_resize_case(  # trilinear, depth halved
    (1, 2, 4, 3, 4), "linear", scales=(1, 1, 0.5, 2, 1.5)))
case("resize_nearest_1d_sizes_asymmetric")(_resize_case(
    (2, 3, 5), "nearest", sizes=(0, 0, 8), coordinate_transformation_mode="asymmetric",
    nearest_mode="round_prefer_ceil"))


@case("gather_runtime_indices_of_activation")
def _() -> Case:  # both runtime: CNTK's gather wants a weight table
    x = _r(2, 5, 3)
    idx = np.asarray([3, -1, 0], np.int64)
    return one("Gather", ["x", "i"], {"x": x, "i": idx}, x[:, idx], axis=1, dynamic=False)


def _conv_then(op: str, want_fn: Callable[[np.ndarray], np.ndarray], min_opset: int = 7,
               **attrs: object) -> Callable[[], Case]:
    """Conv -> op: the op reads a feature map the Keras target holds channels-last."""
    def build() -> Case:
        x, w = _r(2, 3, 6, 4), _r(8, 3, 3, 3)
        g = Graph(f"conv_{op}")
        g.add_input("x", "float32", [None, 3, 6, 4])
        g.add_weight("W", w)
        g.add_node("Conv", ["x", "W"], "conv", pads=(1, 1, 1, 1))
        ins = ["conv"]
        plain = {}
        for k, v in attrs.items():
            if isinstance(v, np.ndarray):
                g.add_weight(k, v)
                ins.append(k)
            else:
                plain[k] = v
        g.add_node(op, ins, "after", **plain)  # type: ignore[arg-type]
        g.outputs = ["after"]
        return Case(g, {"x": x}, [want_fn(ref.conv(x, w, pads=(1, 1, 1, 1)))], min_opset,
                    node="after")
    return build


case("conv_then_gather_channels")(_conv_then(
    "Gather", lambda y: y[:, [5, 0, 7]], i=np.asarray([5, 0, -1], np.int64), axis=1))
case("conv_then_hardswish")(_conv_then(
    "HardSwish", lambda y: ref.MORE_UNARY["HardSwish"](y)))
case("conv_then_depth_to_space")(_conv_then(
    "DepthToSpace", lambda y: ref.depth_to_space(y, 2, "DCR"), blocksize=2))
case("conv_then_resize_nearest_2x")(_conv_then(
    "Resize", lambda y: ref.resize(y, (2, 8, 12, 8), (1, 1, 2, 2), "nearest"),
    min_opset=11, scales=(1.0, 1.0, 2.0, 2.0)))
_IN_S, _IN_B = _r(8), _r(8)
case("conv_then_instance_norm")(_conv_then(
    "InstanceNormalization", lambda y: ref.instance_norm(y, _IN_S, _IN_B, 1e-5),
    scale=_IN_S, B=_IN_B))


@case("expand_class_token_to_batch")
def _() -> Case:  # ViT: cls.expand(n, -1, -1), then joined with the patch tokens
    cls, tokens = _r(1, 1, 4), _r(2, 3, 4)
    g = Graph("class_token")
    g.add_input("tokens", "float32", [None, 3, 4])
    g.add_weight("cls", cls)
    g.add_node("Expand", ["cls", "tokens"], "cls_batch", shape=(-1, -1, -1))
    g.add_node("Concat", ["cls_batch", "tokens"], "joined", axis=1)
    g.outputs = ["joined"]
    want = np.concatenate([np.broadcast_to(cls, (2, 1, 4)), tokens], axis=1)
    return Case(g, {"tokens": tokens}, [want], 8, node="cls_batch")


#: The cases of the ops added for the ONNX and Keras frontends (Resize, Gather, Erf ...),
#: so a target that does not have them yet can pin them in one line.
FRONTEND_OP_CASES = frozenset(set(CASES) - _BEFORE_FRONTEND_OPS)
FRONTEND_OPS = frozenset({
    "Resize", "Gather", "Erf", "Gelu", "HardSwish", "InstanceNormalization", "Expand", "Tile",
    "Sin", "Cos", "Softsign", "Mish", "DepthToSpace", "SpaceToDepth", "Mod", "And", "Or", "Xor",
    "ReduceL2",
})


# -- recurrent ----------------------------------------------------------------------
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _rnn_case(cell: str, direction: str = "forward", hidden: int = 5, size: int = 4,
              states: bool = False, peepholes: bool = False, seq_lens: bool = False,
              outputs: tuple[int, ...] = (0, 1, 2), **attrs: object) -> Case:
    """One LSTM/GRU/RNN node on X [batch, time, size], batch and time dynamic; the
    initial states are graph inputs (a model's [N, nd, H] state feeds)."""
    nd = 2 if direction == "bidirectional" else 1
    g_ = _GATES[cell]
    n, t = 3, 6
    x = rand(n, t, size)
    w, r = rand(nd, g_ * hidden, size, low=-1, high=1), rand(nd, g_ * hidden, hidden,
                                                             low=-1, high=1)
    b = rand(nd, 2 * g_ * hidden, low=-1, high=1)
    g = Graph(f"{cell}_graph")
    g.add_input("x", "float32", [None, None, size])
    feeds = {"x": x}
    for k, v in (("W", w), ("R", r), ("B", b)):
        g.add_weight(k, v)
    inputs = ["x", "W", "R", "B", "", "", "", ""]
    h0 = c0 = p = lens = None
    if seq_lens:
        lens = np.array([6, 2, 4], np.int32)
        g.add_input("lens", "int32", [None])
        feeds["lens"] = lens
        inputs[4] = "lens"
    if states:
        h0 = rand(n, nd, hidden, low=-1, high=1)
        g.add_input("h0", "float32", [None, nd, hidden])
        feeds["h0"] = h0
        inputs[5] = "h0"
        if cell == "LSTM":
            c0 = rand(n, nd, hidden, low=-1, high=1)
            g.add_input("c0", "float32", [None, nd, hidden])
            feeds["c0"] = c0
            inputs[6] = "c0"
    if peepholes:
        p = rand(nd, 3 * hidden, low=-1, high=1)
        g.add_weight("P", p)
        inputs[7] = "P"
    while not inputs[-1]:
        inputs.pop()
    names = ["y", "y_h", "y_c"] if cell == "LSTM" else ["y", "y_h"]
    g.add_node(cell, inputs, "cell", outputs=names, hidden_size=hidden,  # type: ignore[arg-type]
               direction=direction, **attrs)
    want = ref.recurrent(cell, x, w, r, b, h0, c0, p, direction=direction,
                         activations=attrs.get("activations", ()),  # type: ignore[arg-type]
                         linear_before_reset=int(attrs.get("linear_before_reset", 0)),
                         sequence_lens=lens)
    keep = [i for i in outputs if i < len(names)]
    g.outputs = [names[i] for i in keep]
    return Case(g, feeds, [want[i].astype(np.float32) for i in keep], 7, node="cell")


_BEFORE_RECURRENT = set(CASES)
for _name, _kw in {
    "lstm_forward_states": {"cell": "LSTM", "states": True},
    "lstm_bidirectional": {"cell": "LSTM", "direction": "bidirectional"},
    "lstm_reverse_last_state": {"cell": "LSTM", "direction": "reverse", "outputs": (1, 2)},
    "lstm_peepholes": {"cell": "LSTM", "peepholes": True, "states": True},
    "lstm_sequence_lens": {"cell": "LSTM", "direction": "bidirectional", "seq_lens": True},
    "gru_linear_before_reset": {"cell": "GRU", "linear_before_reset": 1, "states": True},
    "gru_bidirectional_lbr": {"cell": "GRU", "direction": "bidirectional",
                              "linear_before_reset": 1, "states": True},
    "gru_reset_before": {"cell": "GRU", "direction": "bidirectional"},
    "rnn_tanh_states": {"cell": "RNN", "states": True},
    "rnn_bidirectional_relu": {"cell": "RNN", "direction": "bidirectional",
                               "activations": ("Relu", "Relu")},
}.items():
    CASES[_name] = (lambda kw: lambda: _rnn_case(**kw))(_kw)  # type: ignore[arg-type]

#: The recurrent cases (LSTM/GRU/RNN), so a target without recurrent layers can pin them.
RECURRENT_CASES = frozenset(set(CASES) - _BEFORE_RECURRENT)
RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})


# -- Scan: the general loop (hand-written recurrences) -------------------------------
_BEFORE_SCAN = set(CASES)


def _scan_case(name: str, states: dict[str, np.ndarray], xs: dict[str, np.ndarray],
               weights: dict[str, np.ndarray], body: Graph, outputs: list[str],
               expected: list[np.ndarray], reverse: int = 0) -> Case:
    """One Scan node ``scan`` over graph inputs ``xs`` ([N, T, ...], N and T dynamic).
    A state whose name is in ``weights`` is a constant initial state (a [1, ...]
    weight, CNTK's ``initial_state``); the others are graph inputs [N, ...]."""
    g = Graph(name)
    feeds = {}
    for k, v in {**states, **xs}.items():
        if k in weights:
            continue
        g.add_input(k, "float32", [None, None, *v.shape[2:]] if k in xs
                    else [None, *v.shape[1:]])
        feeds[k] = v
    for k, v in weights.items():
        g.add_weight(k, v)
    g.add_node("Scan", [*states, *xs], "scan", outputs=outputs, body=body,
               num_states=len(states), reverse=reverse)
    g.outputs = list(outputs)
    return Case(g, feeds, [e.astype(np.float32) for e in expected], 9, node="scan")


def _body(inputs: dict[str, list[int | None]]) -> Graph:
    b = Graph("step")
    for k, shape in inputs.items():
        b.add_input(k, "float32", shape)
    return b


def _elman_case(name: str, reverse: int) -> Case:
    """h = tanh(x W + h R + b), forward or reverse; the final state and every step's h."""
    n, t, i, h = 3, 5, 4, 6
    x, h0 = rand(n, t, i), rand(n, h, low=-1, high=1)
    w = {f"{name}/W": rand(i, h, low=-0.6, high=0.6),
         f"{name}/R": rand(h, h, low=-0.6, high=0.6), f"{name}/b": rand(h, low=-0.5, high=0.5)}
    b = _body({"h": [None, h], "x_t": [None, i]})
    b.add_node("MatMul", ["x_t", f"{name}/W"], "xw")
    b.add_node("MatMul", ["h", f"{name}/R"], "hr")
    b.add_node("Add", ["xw", "hr"], "pre")
    b.add_node("Add", ["pre", f"{name}/b"], "pre_b")
    b.add_node("Tanh", ["pre_b"], "h_new")
    b.outputs = ["h_new", "h_new"]
    wx, wh, wb = w.values()

    def step(hs: list, xt: list) -> tuple:
        hn = np.tanh(xt[0] @ wx + hs[0] @ wh + wb)
        return [hn], [hn]
    want = ref.scan(step, [h0], [x], reverse=bool(reverse))
    return _scan_case(name, {"h0": h0}, {"x": x}, w, b, ["h_last", "h_all"], want, reverse)


CASES["scan_elman"] = lambda: _elman_case("scan_elman", 0)
#: a backward Elman loop: outputs stay at their input positions
CASES["scan_reverse_elman"] = lambda: _elman_case("scan_reverse_elman", 1)


@case("scan_running_sum")
def _() -> Case:  # s = s + x_t from a non-zero constant [1, H] initial state
    n, t, h = 2, 6, 5
    x, s0 = rand(n, t, h), rand(1, h)
    b = _body({"s": [None, h], "x_t": [None, h]})
    b.add_node("Add", ["s", "x_t"], "s_new")
    b.outputs = ["s_new", "s_new"]
    want = ref.scan(lambda hs, xt: ([hs[0] + xt[0]], [hs[0] + xt[0]]), [s0], [x])
    return _scan_case("scan_running_sum", {"sum/init": s0}, {"x": x}, {"sum/init": s0}, b,
                      ["sum_last", "sums"], want)


@case("scan_future_value")
def _() -> Case:  # CNTK FutureValue: y[:, t] = x[:, t+1], zeros at the end (reverse loop)
    n, t, h = 3, 4, 3
    x, s0 = rand(n, t, h), np.zeros((1, h), np.float32)
    b = _body({"next": [None, h], "x_t": [None, h]})
    b.outputs = ["x_t", "next"]  # the state becomes x_t; the output is the old state
    want = ref.scan(lambda hs, xt: ([xt[0]], [hs[0]]), [s0], [x], reverse=True)
    return _scan_case("scan_future_value", {"future/init": s0}, {"x": x},
                      {"future/init": s0}, b, ["first", "shifted"], want, reverse=1)


@case("scan_two_states_two_inputs")
def _() -> Case:  # a = tanh(a A + u_t); c = c * sigmoid(v_t) + a; outputs a + c and relu(v_t)
    n, t, h = 2, 5, 4
    u, v = rand(n, t, h), rand(n, t, h)
    a0, c0 = rand(n, h, low=-1, high=1), rand(1, h, low=-1, high=1)
    w = {"loop/A": rand(h, h, low=-0.7, high=0.7), "loop/c0": c0}
    b = _body({"a": [None, h], "c": [None, h], "u_t": [None, h], "v_t": [None, h]})
    b.add_node("MatMul", ["a", "loop/A"], "aA")
    b.add_node("Add", ["aA", "u_t"], "a_pre")
    b.add_node("Tanh", ["a_pre"], "a_new")
    b.add_node("Sigmoid", ["v_t"], "gate")
    b.add_node("Mul", ["c", "gate"], "c_kept")
    b.add_node("Add", ["c_kept", "a_new"], "c_new")
    b.add_node("Add", ["a_new", "c_new"], "y_sum")
    b.add_node("Relu", ["v_t"], "y_relu")
    b.outputs = ["a_new", "c_new", "y_sum", "y_relu"]

    def step(hs: list, xt: list) -> tuple:
        an = np.tanh(hs[0] @ w["loop/A"] + xt[0])
        cn = hs[1] / (1.0 + np.exp(-xt[1])) + an
        return [an, cn], [an + cn, np.maximum(xt[1], 0.0)]
    want = ref.scan(step, [a0, c0], [u, v])
    return _scan_case("scan_two_states_two_inputs", {"a0": a0, "loop/c0": c0},
                      {"u": u, "v": v}, w, b, ["a_last", "c_last", "sums", "relus"], want)


def scan_edge_forms() -> dict[str, tuple[Graph, dict[str, np.ndarray]]]:
    """Scan forms beyond SCAN_CASES, each (graph, feeds): no state (a per-step map with a
    Dense; ONNX makes a body constant for it before opset 11); no step output, a rank-1
    [1] state and a weight read inside and outside the loop."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    g = Graph("map_only")
    g.add_input("x", "float32", [None, None, 3])
    g.add_weight("W", w)
    b = Graph("step")
    b.add_input("x_t", "float32", [None, 3])
    b.add_node("Dense", ["x_t", "W"], "d")
    b.add_node("Relu", ["d"], "r")
    b.outputs = ["r"]
    g.add_node("Scan", ["x"], "scan", outputs=["ys"], body=b, num_states=0)
    g.outputs = ["ys"]
    forms = {"map_only": (g, {"x": x})}
    g = Graph("states_only")
    g.add_input("x", "float32", [None, None, 3])
    g.add_input("z", "float32", [None, 3])
    g.add_weight("W", w)
    g.add_weight("s0", np.array([0.5], np.float32))
    g.add_weight("h0", np.full((1, 4), 0.25, np.float32))
    b = Graph("step")
    for name, shape in (("s", [None]), ("h", [None, 4]), ("x_t", [None, 3])):
        b.add_input(name, "float32", shape)
    b.add_node("ReduceSum", ["x_t"], "rs", axes=(1,), keepdims=False)
    b.add_node("Add", ["s", "rs"], "s_new")
    b.add_node("Dense", ["x_t", "W"], "d")
    b.add_node("Add", ["h", "d"], "h_new")
    b.outputs = ["s_new", "h_new"]
    g.add_node("Scan", ["s0", "h0", "x"], "scan", outputs=["s_last", "h_last"], body=b,
               num_states=2)
    g.add_node("Dense", ["z", "W"], "outside")
    g.outputs = ["s_last", "h_last", "outside"]
    forms["states_only"] = (g, {"x": x, "z": rng.standard_normal((2, 3)).astype(np.float32)})
    return forms


#: The Scan cases, so a target without a Scan handler can pin them as refused.
SCAN_CASES = frozenset(set(CASES) - _BEFORE_SCAN)
SCAN_OPS = frozenset({"Scan"})


# -- a whole small network, for the emitters' file/name/layout tests ----------------
def conv_net(name: str = "convnet") -> Graph:
    """A CNTK-like small CNN: conv-BN-relu-pool twice, then flatten, dense, softmax."""
    rng = np.random.default_rng(7)
    g = Graph(name)
    g.add_input("data", "float32", [None, 3, 12, 12])
    g.add_weight("conv1/W", rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3)
    g.add_weight("conv1/b", rng.standard_normal(8).astype(np.float32))
    g.add_node("Conv", ["data", "conv1/W", "conv1/b"], "conv1", pads=(1, 1, 1, 1))
    for p, v in (("scale", 1.0), ("B", 0.0), ("mean", 0.1), ("var", 1.5)):
        g.add_weight(f"bn1/{p}", np.full((8, 1, 1), v, np.float32) + 0.01 * rng.random((8, 1, 1),
                                                                                     np.float32))
    g.add_node("BatchNormalization", ["conv1", "bn1/scale", "bn1/B", "bn1/mean", "bn1/var"],
               "bn1")
    g.add_node("Relu", ["bn1"], "relu1")
    g.add_node("MaxPool", ["relu1"], "pool1", kernel_shape=(3, 3), strides=(2, 2), ceil_mode=True)
    g.add_weight("conv2/W", rng.standard_normal((4, 8, 3, 3)).astype(np.float32) * 0.2)
    g.add_node("Conv", ["pool1", "conv2/W"], "conv2", pads=(0, 0, 1, 1))
    g.add_node("AveragePool", ["conv2"], "pool2", kernel_shape=(2, 2), strides=(2, 2))
    g.add_node("Flatten", ["pool2"], "flatten")
    g.add_weight("fc/W", rng.standard_normal((10, 16)).astype(np.float32) * 0.2)
    g.add_weight("fc/b", rng.standard_normal(10).astype(np.float32))
    g.add_node("Dense", ["flatten", "fc/W", "fc/b"], "fc")
    g.add_node("Softmax", ["fc"], "prob")
    g.outputs = ["prob"]
    return g


def conv_net_reference(g: Graph, x: np.ndarray) -> np.ndarray:
    w = g.weights
    y = ref.conv(x, w["conv1/W"], w["conv1/b"], pads=(1, 1, 1, 1))
    y = ref.batch_norm(y, w["bn1/scale"], w["bn1/B"], w["bn1/mean"], w["bn1/var"], 1e-5, True)
    y = ref.pool(np.maximum(y, 0), "max", (3, 3), (2, 2), ceil_mode=True)
    y = ref.pool(ref.conv(y, w["conv2/W"], pads=(0, 0, 1, 1)), "avg", (2, 2), (2, 2))
    y = y.reshape(len(x), -1) @ w["fc/W"].T.astype(np.float64) + w["fc/b"]
    return ref.softmax(y, -1).astype(np.float32)


def dtypes_graph() -> Graph:
    """Every weight dtype, a big-endian weight and a 0-d one, some of them graph outputs."""
    g = Graph("dtypes")
    g.add_input("x", "float32", [None, 3])
    weights = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3), "f16": np.ones(3, np.float16),
        "f64": np.full((1, 3), 0.25), "i64": np.arange(3, dtype=np.int64) - 1,
        "i32": np.array([7], np.int32), "flag": np.array([True, False, True]),
        "scalar": np.array(2.5, np.float32), "big_endian": np.arange(3, dtype=">f4"),
    }
    for name, array in weights.items():
        g.add_weight(name, array)
    g.add_node("Dense", ["x", "f32"], "fc")
    g.add_node("Mul", ["fc", "scalar"], "scaled")
    g.add_node("Add", ["x", "big_endian"], "shifted")
    g.outputs = ["scaled", "shifted", "f16", "f64", "i64", "i32", "flag"]
    return g


def refused_forms() -> dict[str, Graph]:
    """One-node graphs (node ``n``) of new-op forms some targets refuse: a resize of
    the dynamic batch, a tile along it, an expand that moves it, runtime indices into
    a dynamic axis.  Each target's tests pin which of them it refuses."""
    forms = {}
    for name, shape, op, attrs in (
        ("resize_batch", [None, 3, 4, 4], "Resize", {"scales": (2.0, 1.0, 1.0, 1.0)}),
        ("tile_batch", [None, 2, 3], "Tile", {"repeats": (2, 1, 1)}),
        ("expand_moves_batch", [None, 3], "Expand", {"shape": (2, 1, 3)}),
        ("gather_runtime_dynamic_axis", [None, 3], "Gather", {}),
    ):
        g = Graph(name)
        g.add_input("x", "float32", shape)
        inputs = ["x"]
        if op == "Gather":
            g.add_input("i", "int64", [2])
            inputs.append("i")
        g.add_node(op, inputs, "n", **attrs)  # type: ignore[arg-type]
        g.outputs = ["n"]
        forms[name] = g
    return forms


HOSTILE = [
    "conv.1", "conv-1", "1st", "class", "it's", 'say "hi"', '"""', "'''", "a\nb", "c\rd",
    "back\\slash", "__import__('os').system('touch PWNED')", "#comment", "{}", "tab\there",
    "ünïcödé", "file", "allow_pickle", "weights", "KitModel", "sys", "  ", "\u2028",
]


def hostile_graph() -> Graph:
    """Every value, node and weight named with something that breaks naive codegen or
    naive text formats (quotes, newlines, separators)."""
    rng = np.random.default_rng(5)
    names = iter(HOSTILE)
    g = Graph("graph\"\"\"\n'name")
    x = next(names)
    g.add_input(x, "float32", [None, 4])
    prev = x
    for _ in range(4):
        w, y = next(names), next(names)
        g.add_weight(w, rng.standard_normal((4, 4)).astype(np.float32))
        g.add_node("Dense", [prev, w], next(names), outputs=[y])
        prev = y
    rest = list(names)
    scale = rest.pop()
    g.add_weight(scale, np.array([2.0, 3.0, 4.0, 5.0], np.float32))
    g.add_node("Mul", [prev, scale], rest.pop(), outputs=[rest.pop()])
    prev = g.nodes[-1].outputs[0]
    for name in rest[:-1]:
        g.add_node("Relu", [prev], name, outputs=[name + "/out"])
        prev = name + "/out"
    g.add_node("Softmax", [prev], rest[-1], outputs=[rest[-1] + "/out"], axis=1)
    g.outputs = [rest[-1] + "/out", prev]
    g.metadata = {"key'\n\"": "value\"\"\"\r\n", "ok": "x"}
    return g
