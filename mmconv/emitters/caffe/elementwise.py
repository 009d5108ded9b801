"""Elementwise ops: Eltwise (SUM/PROD/MAX) between computed blobs, Power/Scale layers
with a constant operand, AbsVal/Exp/Log, and Clip built from ReLUs.

Caffe's Eltwise has no broadcasting: two computed operands must have the
output's shape.  A constant operand becomes layer parameters instead: a scalar
a Power layer (y = (shift + scale * x) ^ power), a tensor a Scale layer whose
blob covers the axes the constant varies along (with a bias blob for Add/Sub).
Clip has no layer OpenCV and BVLC Caffe both read, so it is written as
``lo + relu(x - lo) - relu(x - hi)`` (Power, ReLU and Eltwise layers).
"""

from __future__ import annotations

import math

import numpy as np

from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.emitters.caffe.context import FLOAT_DTYPES, HANDLERS, EmitContext
from mmconv.ir.core import Node

SUM, PROD, MAX = pb.EltwiseParameter.SUM, pb.EltwiseParameter.PROD, pb.EltwiseParameter.MAX


# -- helpers other families use ---------------------------------------------------------
def clip_blob(ctx: EmitContext, node: Node | None, x: str, lo: float, hi: float) -> str:
    """min(max(x, lo), hi) for blob ``x`` (either bound may be inf): ``node``'s output
    (its last layer named after it), or a helper blob when ``node`` is None."""
    def last(type_: str, bottoms: list[str], **params: object) -> str:
        if node is not None:
            return ctx.final(node, type_, bottoms, **params)  # type: ignore[arg-type]
        return ctx.layer(type_, bottoms, hint="clip", **params)[0]  # type: ignore[arg-type]

    def power(blob: str, **kw: float) -> str:
        return ctx.power(blob, node=node, **kw) if node is not None else \
            ctx.power(blob, hint="clip", **kw)

    has_lo, has_hi = math.isfinite(lo), math.isfinite(hi)
    if has_lo and has_hi:  # lo + relu(x - lo) - relu(x - hi)
        below = ctx.layer("ReLU", [ctx.power(x, shift=-lo, hint="minus_lo") if lo else x],
                          hint="relu_lo")[0]
        above = ctx.layer("ReLU", [ctx.power(x, shift=-hi, hint="minus_hi")],
                          hint="relu_hi")[0]
        param = pb.EltwiseParameter(operation=SUM, coeff=[1.0, -1.0])
        if not lo:
            return last("Eltwise", [below, above], eltwise_param=param)
        diff = ctx.layer("Eltwise", [below, above], hint="diff", eltwise_param=param)[0]
        return power(diff, shift=lo)
    if has_lo:  # relu(x - lo) + lo
        if lo == 0.0:
            return last("ReLU", [x])
        r = ctx.layer("ReLU", [ctx.power(x, shift=-lo, hint="minus_lo")], hint="relu_lo")[0]
        return power(r, shift=lo)
    if has_hi:  # hi - relu(hi - x)
        r = ctx.layer("ReLU", [ctx.power(x, scale=-1.0, shift=hi, hint="hi_minus")],
                      hint="relu_hi")[0]
        return power(r, scale=-1.0, shift=hi)
    if node is not None:
        ctx.alias(node.outputs[0], x)
    return x


def _scale_span(ctx: EmitContext, node: Node, const: np.ndarray, shape: tuple[int, ...]
                ) -> tuple[int, np.ndarray]:
    """(axis, blob) of a Scale layer applying ``const`` (broadcast to ``shape``): the blob
    covers the axes from the first to the last one ``const`` varies along."""
    rank = len(shape)
    dims = (1,) * (rank - const.ndim) + tuple(const.shape)
    varying = [i for i, d in enumerate(dims) if d != 1]
    if 0 in varying:
        raise ctx.unsupported(node, f"the constant of shape {list(const.shape)} varies along "
                              "the batch axis")
    lo, hi = (min(varying), max(varying) + 1) if varying else (1, 1)
    if not varying:  # a one-element tensor: still a scalar
        return 1, const.reshape(())
    full = np.broadcast_to(const.reshape(dims), dims[:lo] + shape[lo:hi] + dims[hi:])
    index = tuple(0 if i < lo or i >= hi else slice(None) for i in range(rank))
    return lo, np.ascontiguousarray(full[index])


def scale_layer(ctx: EmitContext, node: Node | None, x: str, shape: tuple[int, ...],
                scale: np.ndarray | None, bias: np.ndarray | None, owner: Node | None = None,
                hint: str = "scale") -> str:
    """y = x * scale + bias, constants broadcast like numpy (either may be None): one
    Power layer for scalars, else one Scale layer; ``node``'s final layer when given."""
    owner = owner if owner is not None else node
    assert owner is not None
    given = [a for a in (scale, bias) if a is not None]
    ref = np.broadcast_shapes(*(a.shape for a in given))
    s_full = np.broadcast_to(scale if scale is not None else np.ones(()), ref)
    axis, s_blob = _scale_span(ctx, owner, s_full, shape)
    b_blob = None if bias is None else _scale_span(ctx, owner, np.broadcast_to(bias, ref),
                                                   shape)[1]
    if s_blob.ndim == 0:  # a scalar: Power
        shift = float(b_blob) if b_blob is not None else 0.0
        if node is not None:
            return ctx.power(x, scale=float(s_blob), shift=shift, node=node)
        return ctx.power(x, scale=float(s_blob), shift=shift, hint=hint)
    blobs = [s_blob] if b_blob is None else [s_blob, b_blob]
    span = s_blob.ndim
    if span > 1:
        # OpenCV fuses a Scale that follows a convolution into its weights assuming one
        # factor per channel, and fails on a blob spanning several axes; a Scale on the
        # spanned axes flattened into one (Reshapes around it, views in every runtime) is
        # the same function and never fused
        merged = [0] * axis + [int(np.prod(shape[axis:axis + span]))]
        x = ctx.layer("Reshape", [x], hint=f"{hint}_flat", reshape_param=pb.ReshapeParameter(
            shape=pb.BlobShape(dim=merged), num_axes=axis + span))[0]
        blobs = [b.reshape(-1) for b in blobs]
    param = pb.ScaleParameter(axis=axis, num_axes=1 if span else 0,
                              bias_term=b_blob is not None)
    if span <= 1:
        if node is not None:
            return ctx.final(node, "Scale", [x], blobs=blobs, scale_param=param)
        return ctx.layer("Scale", [x], hint=hint, blobs=blobs, scale_param=param)[0]
    y = ctx.layer("Scale", [x], hint=hint, blobs=blobs, scale_param=param)[0]
    back = pb.ReshapeParameter(shape=pb.BlobShape(dim=[0] * axis + list(shape[axis:axis + span])),
                               num_axes=axis + 1)
    if node is not None:
        return ctx.final(node, "Reshape", [y], reshape_param=back)
    return ctx.layer("Reshape", [y], hint=f"{hint}_unflat", reshape_param=back)[0]


# -- binary ops --------------------------------------------------------------------------
def _broadcast_product(ctx: EmitContext, node: Node, a: str, b: str) -> bool:
    """Mul/Div where one operand varies only along the leading axes of the other (an SE
    block's ``x * gate[N, C, 1, 1]``): a Scale layer with the small operand as its second
    bottom, which Caffe broadcasts over the trailing axes.  False if not that form."""
    out = ctx.shape(node.outputs[0])
    if ctx.shape(a) == out:
        big, small = a, b
    elif ctx.shape(b) == out:
        big, small = b, a
    else:
        return False
    dims = (1,) * (len(out) - ctx.rank(small)) + tuple(ctx.shape(small))
    k = max((i + 1 for i, d in enumerate(dims) if d != 1), default=0)
    if k == 0 or tuple(dims[:k]) != tuple(out[:k]) or any(d is None for d in out[1:k]):
        return False
    big_blob, small_blob = ctx.blob(big), ctx.blob(small)
    if node.op == "Div":  # a / b = a * (1 / b)
        if b == big:
            big_blob = ctx.power(big_blob, power=-1.0, hint="reciprocal")
        else:
            small_blob = ctx.power(small_blob, power=-1.0, hint="reciprocal")
    if tuple(ctx.shape(small)) != tuple(out[:k]):
        small_blob = ctx.layer("Reshape", [small_blob], hint="lead", reshape_param=(
            pb.ReshapeParameter(shape=pb.BlobShape(dim=[0, *(int(d) for d in out[1:k])]))))[0]
    ctx.final(node, "Scale", [big_blob, small_blob], scale_param=pb.ScaleParameter(axis=0))
    return True


def _both_computed(ctx: EmitContext, node: Node, a: str, b: str) -> None:
    out_shape = ctx.shape(node.outputs[0])
    if ctx.shape(a) != out_shape or ctx.shape(b) != out_shape:
        if node.op in ("Mul", "Div") and _broadcast_product(ctx, node, a, b):
            return
        raise ctx.unsupported(node, f"it broadcasts {list(ctx.shape(a))} against "
                              f"{list(ctx.shape(b))}; Caffe's Eltwise needs equal shapes")
    ba, bb = ctx.blob(a), ctx.blob(b)
    op = node.op
    if op == "Add":
        ctx.final(node, "Eltwise", [ba, bb], eltwise_param=pb.EltwiseParameter(operation=SUM))
    elif op == "Sub":
        ctx.final(node, "Eltwise", [ba, bb],
                  eltwise_param=pb.EltwiseParameter(operation=SUM, coeff=[1.0, -1.0]))
    elif op == "Mul":
        ctx.final(node, "Eltwise", [ba, bb], eltwise_param=pb.EltwiseParameter(operation=PROD))
    elif op == "Div":
        inv = ctx.power(bb, power=-1.0, hint="reciprocal")
        ctx.final(node, "Eltwise", [ba, inv], eltwise_param=pb.EltwiseParameter(operation=PROD))
    elif op == "Max":
        ctx.final(node, "Eltwise", [ba, bb], eltwise_param=pb.EltwiseParameter(operation=MAX))
    elif op == "Min":  # min(a, b) = -max(-a, -b)
        na = ctx.power(ba, scale=-1.0, hint="neg_a")
        nb = ctx.power(bb, scale=-1.0, hint="neg_b")
        m = ctx.layer("Eltwise", [na, nb], hint="max",
                      eltwise_param=pb.EltwiseParameter(operation=MAX))[0]
        ctx.power(m, scale=-1.0, node=node)
    else:
        raise ctx.unsupported(node, "Caffe has no layer raising a blob to a computed power")


def _one_constant(ctx: EmitContext, node: Node, x: str, c: np.ndarray, const_first: bool
                  ) -> None:
    shape = ctx.static_shape(node, x)
    if ctx.static_shape(node, node.outputs[0]) != shape:
        raise ctx.unsupported(node, f"the constant of shape {list(c.shape)} broadcasts the "
                              f"input {list(ctx.shape(x))} up; Caffe layers keep their "
                              "input's shape")
    c = c.astype(np.float64)
    bx, op = ctx.blob(x), node.op
    if op == "Add":
        scale_layer(ctx, node, bx, shape, None, c, node, "add")
    elif op == "Sub" and not const_first:
        scale_layer(ctx, node, bx, shape, None, -c, node, "sub")
    elif op == "Sub":
        scale_layer(ctx, node, bx, shape, -np.ones_like(c), c, node, "rsub")
    elif op == "Mul":
        scale_layer(ctx, node, bx, shape, c, None, node, "mul")
    elif op == "Div" and not const_first:
        scale_layer(ctx, node, bx, shape, 1.0 / c, None, node, "div")
    elif op == "Div":
        inv = ctx.power(bx, power=-1.0, hint="reciprocal")
        scale_layer(ctx, node, inv, shape, c, None, node, "rdiv")
    elif op in ("Max", "Min"):
        # max(x, c) = relu(x - c) + c;  min(x, c) = c - relu(c - x)
        sign = 1.0 if op == "Max" else -1.0
        d = scale_layer(ctx, None, bx, shape, np.full_like(c, sign), -sign * c, node, "diff")
        r = ctx.layer("ReLU", [d], hint="relu")[0]
        scale_layer(ctx, node, r, shape, np.full_like(c, sign), c, node, "out")
    elif op == "Pow" and not const_first and c.size == 1:
        ctx.power(bx, power=float(c.reshape(())), node=node)
    elif op == "Pow" and const_first and c.size == 1 and float(c.reshape(())) > 0:
        ctx.final(node, "Exp", [bx], exp_param=pb.ExpParameter(base=float(c.reshape(()))))
    else:
        raise ctx.unsupported(node, f"{op} with a constant of shape {list(c.shape)} in that "
                              "position has no Caffe layer")


@HANDLERS.register("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow")
def binary(ctx: EmitContext, node: Node) -> None:
    a, b = node.inputs
    wa, wb = ctx.weight(a), ctx.weight(b)
    if wa is None and wb is None:
        _both_computed(ctx, node, a, b)
    elif wb is not None and wa is None:
        _one_constant(ctx, node, a, wb, const_first=False)
    elif wa is not None and wb is None:
        _one_constant(ctx, node, b, wa, const_first=True)
    else:
        raise ctx.unsupported(node, "both operands are constants (the IR passes fold these)")


# -- unary ops ---------------------------------------------------------------------------
@HANDLERS.register("Abs")
def abs_(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "AbsVal", [ctx.blob(node.inputs[0])])


@HANDLERS.register("Exp")
def exp(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "Exp", [ctx.blob(node.inputs[0])])


@HANDLERS.register("Log")
def log(ctx: EmitContext, node: Node) -> None:
    ctx.final(node, "Log", [ctx.blob(node.inputs[0])])


@HANDLERS.register("Sqrt")
def sqrt(ctx: EmitContext, node: Node) -> None:
    ctx.power(ctx.blob(node.inputs[0]), power=0.5, node=node)


@HANDLERS.register("Reciprocal")
def reciprocal(ctx: EmitContext, node: Node) -> None:
    ctx.power(ctx.blob(node.inputs[0]), power=-1.0, node=node)


@HANDLERS.register("Neg")
def neg(ctx: EmitContext, node: Node) -> None:
    ctx.power(ctx.blob(node.inputs[0]), scale=-1.0, node=node)


@HANDLERS.register("Identity")
def identity(ctx: EmitContext, node: Node) -> None:
    ctx.alias(node.outputs[0], ctx.blob(node.inputs[0]))


@HANDLERS.register("Cast")
def cast(ctx: EmitContext, node: Node) -> None:
    """Between float types only: Caffe holds every float as float32 already."""
    src, dst = ctx.dtype(node.inputs[0]), str(node.attr("to"))
    if src not in FLOAT_DTYPES or dst not in FLOAT_DTYPES:
        raise ctx.unsupported(node, f"a cast from {src} to {dst}; Caffe blobs hold floats "
                              "only")
    ctx.alias(node.outputs[0], ctx.blob(node.inputs[0]))


@HANDLERS.register("Clip")
def clip(ctx: EmitContext, node: Node) -> None:
    clip_blob(ctx, node, ctx.blob(node.inputs[0]), float(node.attr("min")),
              float(node.attr("max")))
