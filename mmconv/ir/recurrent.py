"""Numpy implementation of the IR's LSTM, GRU and RNN ops (float64, framework-free).

Why here and not in :mod:`mmconv.ir.evaluate`: constant folding never meets a
recurrent layer whose input is a weight, and a time loop is no exact fold.  This
is the semantics of :mod:`mmconv.ir.ops.recurrent` in code, for frontends that
need to check a recognised cell and for ``mmverify`` style comparisons; the
emitter tests use their own, independently written oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mmconv.ir.core import Node
from mmconv.ir.ops.recurrent import GATES, activations, num_directions


def _act(name: str, alpha: float | None, beta: float | None) -> Callable[[np.ndarray], np.ndarray]:
    a = 0.0 if alpha is None else alpha
    b = 0.0 if beta is None else beta
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "Relu": lambda x: np.maximum(x, 0.0),
        "Tanh": np.tanh,
        "Sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
        "Affine": lambda x: a * x + b,
        "LeakyRelu": lambda x: np.where(x >= 0, x, a * x),
        "ThresholdedRelu": lambda x: np.where(x > a, x, 0.0),
        "ScaledTanh": lambda x: a * np.tanh(b * x),
        "HardSigmoid": lambda x: np.clip(a * x + b, 0.0, 1.0),
        "Elu": lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0.0)) - 1.0)),
        "Softsign": lambda x: x / (1.0 + np.abs(x)),
        "Softplus": lambda x: np.logaddexp(0.0, x),
    }
    return table[name]


def run(node: Node, arrays: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """Outputs of LSTM/GRU/RNN ``node`` on ``arrays`` (its inputs; ``None`` for absent)."""
    arrays = list(arrays) + [None] * (8 - len(arrays))
    x, w, r, b, lens, h0, c0, p = (None if a is None else np.asarray(a) for a in arrays[:8])
    assert x is not None and w is not None and r is not None
    dtype = x.dtype
    x = x.astype(np.float64)
    n, t, _ = x.shape
    h, g, nd = node.attr("hidden_size"), GATES[node.op], num_directions(node)
    acts = [_act(*a) for a in activations(node)]
    per = len(acts) // nd
    clip = node.attr("clip")

    def pre(v: np.ndarray) -> np.ndarray:  # ONNX clips what goes into an activation
        return np.clip(v, -clip, clip) if clip > 0 else v

    lens_ = np.full(n, t, np.int64) if lens is None else lens.astype(np.int64)
    y = np.zeros((n, t, nd, h))
    yh = np.zeros((n, nd, h))
    yc = np.zeros((n, nd, h))
    for d in range(nd):
        reverse = node.attr("direction") == "reverse" or d == 1
        f = acts[d * per:(d + 1) * per]
        wd, rd = w[d].astype(np.float64), r[d].astype(np.float64)
        bd = np.zeros(2 * g * h) if b is None else b[d].astype(np.float64)
        wb, rb = bd[:g * h], bd[g * h:]
        pd = np.zeros(3 * h) if p is None else p[d].astype(np.float64)
        for i in range(n):
            ht = np.zeros(h) if h0 is None else h0[i, d].astype(np.float64)
            ct = np.zeros(h) if c0 is None else c0[i, d].astype(np.float64)
            steps = range(lens_[i])
            for s in (reversed(steps) if reverse else steps):
                xw = wd @ x[i, s] + wb
                hr = rd @ ht + rb
                if node.op == "LSTM":
                    gi, go, gf, gc = np.split(xw + hr, 4)
                    it = f[0](pre(gi + pd[:h] * ct))
                    ft = (1.0 - it) if node.attr("input_forget") \
                        else f[0](pre(gf + pd[2 * h:] * ct))
                    ct = ft * ct + it * f[1](pre(gc))
                    ot = f[0](pre(go + pd[h:2 * h] * ct))
                    ht = ot * f[2](ct)
                elif node.op == "GRU":
                    xz, xr, xh = np.split(xw, 3)
                    hz, hr_, hh = np.split(hr, 3)
                    zt = f[0](pre(xz + hz))
                    rt = f[0](pre(xr + hr_))
                    if node.attr("linear_before_reset"):
                        cand = f[1](pre(xh + rt * hh))
                    else:
                        cand = f[1](pre(xh + rd[2 * h:] @ (rt * ht) + rb[2 * h:]))
                    ht = (1.0 - zt) * cand + zt * ht
                else:
                    ht = f[0](pre(xw + hr))
                y[i, s, d] = ht
            yh[i, d], yc[i, d] = ht, ct
    outs = [y, yh] + ([yc] if node.op == "LSTM" else [])
    return [o.astype(dtype) for o in outs[:len(node.outputs)]]
