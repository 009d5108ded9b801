"""Times: CNTK's tensor product, as Dense (Gemm) where it is a layer.

``C.times(left, right, output_rank=r)`` is saved as ``Times(right, left)``
(storage order).  In Python order it contracts the trailing axes of ``left``
with the leading axes of ``right``; ``right``'s last ``r`` axes are the output
axes.  A Dense layer is ``times(x, W)`` with W of Python shape ``(*K, *M)``: x
(of sample shape K) is flattened row-major in Python order -- the same
element order as CNTK's column-major storage of the reversed shape -- and W
becomes the IR's ``[out, in]`` matrix ``W.reshape(prod K, prod M).T``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, unsupported

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


@CONVERTERS.register("Times")
def convert_times(ctx: Context, unit: Unit) -> None:
    if len(unit.inputs) != 2:
        raise unsupported(ctx, unit, f"{len(unit.inputs)} inputs")
    right_uid, left_uid = unit.inputs
    name = ctx.node_name(unit)
    layer = ctx.layer_name(unit, name)
    r = int(unit.attrs.get("outputRank", 1))
    if ctx.is_weight(right_uid) and not ctx.is_weight(left_uid):
        w = ctx.array(right_uid)
        x = ctx.input(left_uid, unit, name)
        if not 0 < r <= w.ndim:
            raise unsupported(ctx, unit, f"outputRank {r} with a weight of rank {w.ndim}")
        k_shape, m_shape = w.shape[: w.ndim - r], w.shape[w.ndim - r:]
        k, m = math.prod(k_shape), math.prod(m_shape)
        sample = sample_shape(ctx, x)
        if not ctx.batched(x):
            raise unsupported(ctx, unit, "a product without batch axis")
        lead = len(sample) - len(k_shape)
        if lead < 0 or math.prod(sample[lead:]) != k:
            raise unsupported(ctx, unit, f"input {list(sample)} against weight {list(w.shape)}")
        if ctx.is_sequence(x):
            # Per time step: [batch, time, *sample] flattened to [batch, time, k] @ [k, m].
            xr = x if len(sample) == 1 else ctx.add(
                "Reshape", [x], ctx.graph.unique_name(f"{name}/flatten"), shape=(0, 0, -1))
            w2 = ctx.weight(right_uid, layer, None, w.reshape(k, m), key="matmul")
            y = ctx.add("MatMul", [xr, w2], name if len(m_shape) == 1 and lead == 0
                        else ctx.graph.unique_name(f"{name}/matmul"))
            if len(m_shape) != 1 or lead:
                y = ctx.add("Reshape", [y], name, shape=(0, 0, *sample[:lead], *m_shape))
            finish(ctx, unit, y)
            return
        wt = ctx.weight(right_uid, layer, None, w.reshape(k, m).T, key="dense")
        if lead == 0:
            flat = x if len(sample) == 1 else ctx.add(
                "Flatten", [x], ctx.graph.unique_name(f"{name}/flatten"), axis=1)
            if len(m_shape) == 1:
                out = ctx.add("Dense", [flat, wt], name)
            else:
                y = ctx.add("Dense", [flat, wt], ctx.graph.unique_name(f"{name}/dense"))
                out = ctx.add("Reshape", [y], name, shape=(0, *m_shape))
        else:
            # Extra leading sample axes are mapped over: a batched MatMul.
            rest = sample[:lead]
            xr = ctx.add("Reshape", [x], ctx.graph.unique_name(f"{name}/flatten"),
                         shape=(0, math.prod(rest), k))
            w2 = ctx.weight(right_uid, layer, None, w.reshape(k, m), key="matmul")
            y = ctx.add("MatMul", [xr, w2], ctx.graph.unique_name(f"{name}/matmul"))
            out = ctx.add("Reshape", [y], name, shape=(0, *rest, *m_shape))
        finish(ctx, unit, out)
        return
    if ctx.is_weight(left_uid) and not ctx.is_weight(right_uid):
        # times(W, x) with W (M, K) and x (K,): y = W @ x = x @ W^T per sample.
        w = ctx.array(left_uid)
        x = ctx.input(right_uid, unit, name)
        sample = sample_shape(ctx, x)
        if w.ndim != 2 or r != 1 or len(sample) != 1 or not ctx.batched(x):
            raise unsupported(ctx, unit, "this form of times(W, x)")
        wt = ctx.weight(left_uid, layer, None, w, key="dense")
        finish(ctx, unit, ctx.add("Dense", [x, wt], name))
        return
    raise unsupported(ctx, unit, "a product of two computed values")


@CONVERTERS.register("TransposeTimes")
def convert_transpose_times(ctx: Context, unit: Unit) -> None:
    """``C.times_transpose(left, right)`` = left @ right^T, saved as
    ``TransposeTimes(right, left)``.

    A weight ``right`` of Python shape (M, K) is already the IR's [out, in] Dense
    matrix; a vector weight (K,) acts as (1, K).  Two computed vectors (how CNTK's
    cross entropy picks the label's logit) are a per-sample dot product: Mul and
    ReduceSum, of shape (1,).
    """
    if len(unit.inputs) != 2:
        raise unsupported(ctx, unit, f"{len(unit.inputs)} inputs")
    right_uid, left_uid = unit.inputs
    name = ctx.node_name(unit)
    layer = ctx.layer_name(unit, name)
    if int(unit.attrs.get("outputRank", 1)) != 1:
        raise unsupported(ctx, unit, f"outputRank {unit.attrs.get('outputRank')}")
    if ctx.is_weight(right_uid) and not ctx.is_weight(left_uid):
        w = ctx.array(right_uid)
        x = ctx.input(left_uid, unit, name)
        sample = sample_shape(ctx, x)
        if w.ndim == 1:
            w = w.reshape(1, -1)
        if w.ndim != 2 or len(sample) != 1 or sample[0] != w.shape[1] or not ctx.batched(x):
            raise unsupported(ctx, unit, f"input {list(sample)} against {list(w.shape)}")
        wt = ctx.weight(right_uid, layer, None, w, key="dense")
        finish(ctx, unit, ctx.add("Dense", [x, wt], name))
        return
    left = ctx.input(left_uid, unit, name)
    right = ctx.input(right_uid, unit, name)
    ls, rs = sample_shape(ctx, left), sample_shape(ctx, right)
    if len(ls) != 1 or ls != rs or not (ctx.batched(left) and ctx.batched(right)):
        raise unsupported(ctx, unit, f"a product of {list(ls)} and {list(rs)}^T")
    prod = ctx.add("Mul", [left, right], ctx.graph.unique_name(f"{name}/mul"))
    finish(ctx, unit, ctx.add("ReduceSum", [prod], name, axes=(1,), keepdims=True))
