"""Independent numpy implementations of IR op semantics, the oracle of the emitter tests.

Written from the IR op docs (mmconv/ir/ops/*.py), with direct loops where that
is clearest; float64 throughout.  Nothing here calls mmconv or onnx, so a
shared misunderstanding cannot hide a bug.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np


def _fill(values: Sequence[int], n: int, default: int) -> list[int]:
    return list(values) if values else [default] * n


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, strides: Sequence[int] = (),
         pads: Sequence[int] = (), dilations: Sequence[int] = (), group: int = 1) -> np.ndarray:
    """N-d grouped, strided, dilated cross-correlation with explicit begin/end zero pads."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n = w.ndim - 2
    s, d = _fill(strides, n, 1), _fill(dilations, n, 1)
    p = _fill(pads, 2 * n, 0)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p[i], p[n + i]) for i in range(n)])
    out_c, cg = w.shape[0], w.shape[1]
    mg = out_c // group
    k = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - ((k[i] - 1) * d[i] + 1)) // s[i] + 1 for i in range(n)]
    y = np.zeros((x.shape[0], out_c, *out_sp))
    for pos in itertools.product(*(range(o) for o in out_sp)):
        window = tuple(
            slice(pos[i] * s[i], pos[i] * s[i] + (k[i] - 1) * d[i] + 1, d[i]) for i in range(n)
        )
        for g in range(group):
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg), *window)]
            wg = w[g * mg:(g + 1) * mg]
            y[(slice(None), slice(g * mg, (g + 1) * mg), *pos)] = np.tensordot(
                patch, wg, axes=(list(range(1, n + 2)), list(range(1, n + 2))))
    if b is not None:
        y += b.astype(np.float64).reshape(1, -1, *([1] * n))
    return y


def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                   strides: Sequence[int] = (), pads: Sequence[int] = (),
                   dilations: Sequence[int] = (), group: int = 1,
                   output_padding: Sequence[int] = ()) -> np.ndarray:
    """Scatter each input pixel times the kernel, then crop the pads (W is [C, M/group, *k])."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n = w.ndim - 2
    s, d = _fill(strides, n, 1), _fill(dilations, n, 1)
    p = _fill(pads, 2 * n, 0)
    extra = _fill(output_padding, n, 0)
    cin, mg = w.shape[0], w.shape[1]
    cg = cin // group
    k = w.shape[2:]
    full = [(x.shape[2 + i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 + extra[i] for i in range(n)]
    y = np.zeros((x.shape[0], mg * group, *full))
    for pos in itertools.product(*(range(x.shape[2 + i]) for i in range(n))):
        for kk in itertools.product(*(range(k[i]) for i in range(n))):
            at = tuple(pos[i] * s[i] + kk[i] * d[i] for i in range(n))
            for g in range(group):
                xin = x[(slice(None), slice(g * cg, (g + 1) * cg), *pos)]  # [N, cg]
                wk = w[(slice(g * cg, (g + 1) * cg), slice(None), *kk)]  # [cg, mg]
                y[(slice(None), slice(g * mg, (g + 1) * mg), *at)] += xin @ wk
    crop = tuple(slice(p[i], full[i] - p[n + i]) for i in range(n))
    y = y[(slice(None), slice(None), *crop)]
    if b is not None:
        y += b.astype(np.float64).reshape(1, -1, *([1] * n))
    return y


def _pool_out(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil: bool) -> int:
    span = (k - 1) * d + 1
    if not ceil:
        return (size + pb + pe - span) // s + 1
    out = -(-(size + pb + pe - span) // s) + 1
    if (out - 1) * s >= size + pb:  # last window must start inside input or begin pad
        out -= 1
    return out


def pool(x: np.ndarray, mode: str, kernel_shape: Sequence[int], strides: Sequence[int] = (),
         pads: Sequence[int] = (), dilations: Sequence[int] = (), ceil_mode: bool = False,
         count_include_pad: bool = False) -> np.ndarray:
    """Max or average pooling by direct loops.

    Padding never wins a max.  The average divides by the real elements of the
    window, or with count_include_pad by the window positions that lie inside
    the padded input (a ceil-mode window hanging past the end padding does not
    count its overhang, as in onnxruntime and PyTorch).
    """
    x = x.astype(np.float64)
    kernel = kernel_shape
    n = len(kernel)
    s, d = _fill(strides, n, 1), _fill(dilations, n, 1)
    p = _fill(pads, 2 * n, 0)
    sizes = x.shape[2:]
    out_sp = [_pool_out(sizes[i], kernel[i], s[i], d[i], p[i], p[n + i], ceil_mode)
              for i in range(n)]
    y = np.zeros((*x.shape[:2], *out_sp))
    for pos in itertools.product(*(range(o) for o in out_sp)):
        idx_per_axis = []
        padded_count = 1
        for i in range(n):
            coords = [pos[i] * s[i] - p[i] + kk * d[i] for kk in range(kernel[i])]
            padded_count *= sum(1 for c in coords if -p[i] <= c < sizes[i] + p[n + i])
            idx_per_axis.append([c for c in coords if 0 <= c < sizes[i]])
        window = x[(slice(None), slice(None), *np.ix_(*idx_per_axis))]
        flat = window.reshape(*x.shape[:2], -1)
        if mode == "max":
            y[(slice(None), slice(None), *pos)] = flat.max(axis=-1)
        else:
            count = padded_count if count_include_pad else flat.shape[-1]
            y[(slice(None), slice(None), *pos)] = flat.sum(axis=-1) / count
    return y


def batch_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray,
               var: np.ndarray, epsilon: float, spatial: bool) -> np.ndarray:
    x = x.astype(np.float64)
    shape = (1, -1, *([1] * (x.ndim - 2))) if spatial else (1, *x.shape[1:])
    s, b, m, v = (a.astype(np.float64).reshape(shape) for a in (scale, bias, mean, var))
    return (x - m) / np.sqrt(v + epsilon) * s + b


def lrn(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    x = x.astype(np.float64)
    channels = x.shape[1]
    y = np.empty_like(x)
    lo, hi = (size - 1) // 2, math.ceil((size - 1) / 2)
    for c in range(channels):
        window = x[:, max(0, c - lo):min(channels, c + hi + 1)]
        y[:, c] = x[:, c] / (bias + alpha / size * (window ** 2).sum(axis=1)) ** beta
    return y


def layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None, axis: int,
               epsilon: float) -> np.ndarray:
    x = x.astype(np.float64)
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + epsilon) * scale.astype(np.float64)
    return y + bias.astype(np.float64) if bias is not None else y


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return np.log(softmax(x, axis))


def hardmax(x: np.ndarray, axis: int) -> np.ndarray:
    """1 at the first maximum along ``axis``."""
    first = np.argmax(x, axis=axis)
    y = np.zeros(x.shape)
    np.put_along_axis(y, np.expand_dims(first, axis), 1.0, axis=axis)
    return y


ACTIVATIONS = {
    "Relu": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
    "Softplus": lambda x: np.log1p(np.exp(x)),
    "Elu": lambda x, alpha=1.0: np.where(x > 0, x, alpha * (np.exp(x) - 1)),
    "Selu": lambda x, alpha=1.6732632423543772, gamma=1.0507009873554805: gamma * np.where(
        x > 0, x, alpha * (np.exp(x) - 1)),
    "LeakyRelu": lambda x, alpha=0.01: np.where(x >= 0, x, alpha * x),
    "HardSigmoid": lambda x, alpha=0.2, beta=0.5: np.clip(alpha * x + beta, 0, 1),
}

UNARY = {
    "Identity": lambda x: x, "Neg": np.negative, "Abs": np.abs, "Exp": np.exp, "Log": np.log,
    "Sqrt": np.sqrt, "Reciprocal": lambda x: 1 / x, "Floor": np.floor, "Ceil": np.ceil,
    "Round": np.round, "Sign": np.sign,
}

BINARY = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
    "Max": np.maximum, "Min": np.minimum, "Equal": np.equal, "Greater": np.greater,
    "Less": np.less, "GreaterOrEqual": np.greater_equal, "LessOrEqual": np.less_equal,
}


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def max_roi_pool(x: np.ndarray, rois: np.ndarray, pooled_shape: Sequence[int],
                 spatial_scale: float) -> np.ndarray:
    """Fast R-CNN ROI max pooling (ONNX MaxRoiPool): rounded, scaled boxes, floor/ceil bins."""
    ph, pw = pooled_shape
    n_c, height, width = x.shape[1:]
    out = np.zeros((len(rois), n_c, ph, pw), dtype=x.dtype)
    for r, (b, *box) in enumerate(rois):
        x1, y1, x2, y2 = (int(v) for v in _round_half_away(np.asarray(box) * spatial_scale))
        roi_h, roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(ph):
            h0 = min(max(int(np.floor(i * roi_h / ph)) + y1, 0), height)
            h1 = min(max(int(np.ceil((i + 1) * roi_h / ph)) + y1, 0), height)
            for j in range(pw):
                w0 = min(max(int(np.floor(j * roi_w / pw)) + x1, 0), width)
                w1 = min(max(int(np.ceil((j + 1) * roi_w / pw)) + x1, 0), width)
                if h1 > h0 and w1 > w0:
                    out[r, :, i, j] = x[int(b), :, h0:h1, w0:w1].max(axis=(1, 2))
    return out


# -- the ops the ONNX and Keras frontends added ---------------------------------------
def erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, np.float64))


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


MORE_UNARY = {
    "Erf": erf, "Sin": np.sin, "Cos": np.cos,
    "HardSwish": lambda x: x * np.maximum(0, np.minimum(1, x / 6 + 0.5)),
    "Softsign": lambda x: x / (1 + np.abs(x)),
    "Mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
    "Gelu": gelu,
}


def instance_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray,
                  epsilon: float) -> np.ndarray:
    x = x.astype(np.float64)
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean) / np.sqrt(var + epsilon) * scale.reshape(shape) + bias.reshape(shape)


def depth_to_space(x: np.ndarray, b: int, mode: str) -> np.ndarray:
    n, c, h, w = x.shape
    co = c // (b * b)
    y = np.zeros((n, co, h * b, w * b), x.dtype)
    for cc, hh, ww, i, j in itertools.product(range(co), range(h), range(w), range(b),
                                              range(b)):
        src = (i * b + j) * co + cc if mode == "DCR" else cc * b * b + i * b + j
        y[:, cc, hh * b + i, ww * b + j] = x[:, src, hh, ww]
    return y


def space_to_depth(x: np.ndarray, b: int) -> np.ndarray:
    n, c, h, w = x.shape
    y = np.zeros((n, c * b * b, h // b, w // b), x.dtype)
    for cc, hh, ww, i, j in itertools.product(range(c), range(h // b), range(w // b),
                                              range(b), range(b)):
        y[:, (i * b + j) * c + cc, hh, ww] = x[:, cc, hh * b + i, ww * b + j]
    return y


def _source(mode: str, x: int, scale: float, n_in: int, n_out: int) -> float:
    """Written from ONNX Resize's coordinate_transformation_mode formulas."""
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if n_out > 1 else 0.0
    if mode == "align_corners":
        return 0.0 if n_out == 1 else x * (n_in - 1) / (n_out - 1)
    if mode == "asymmetric":
        return x / scale
    assert mode == "tf_half_pixel_for_nn"
    return (x + 0.5) / scale


def _nearest(mode: str, c: float) -> int:
    if mode == "round_prefer_floor":
        return math.floor(c) if c - math.floor(c) <= 0.5 else math.floor(c) + 1
    if mode == "round_prefer_ceil":
        return math.floor(c) if c - math.floor(c) < 0.5 else math.floor(c) + 1
    return math.floor(c) if mode == "floor" else math.ceil(c)


def resize(x: np.ndarray, out_shape: Sequence[int], scales: Sequence[float], mode: str,
           coordinate_transformation_mode: str = "half_pixel",
           nearest_mode: str = "round_prefer_floor") -> np.ndarray:
    """Separable, one axis at a time: a 1-D weight matrix per axis, from the ONNX spec."""
    y = x.astype(np.float64)
    for axis in range(x.ndim):
        n_in, n_out = x.shape[axis], out_shape[axis]
        if n_in == n_out and scales[axis] == 1.0:
            continue
        m = np.zeros((n_out, n_in))
        for o in range(n_out):
            c = _source(coordinate_transformation_mode, o, scales[axis], n_in, n_out)
            if mode == "nearest":
                m[o, min(max(_nearest(nearest_mode, c), 0), n_in - 1)] = 1.0
            else:
                c = min(max(c, 0.0), n_in - 1.0)
                lo = math.floor(c)
                hi = min(lo + 1, n_in - 1)
                m[o, lo] += 1.0 - (c - lo)
                m[o, hi] += c - lo
        y = np.moveaxis(np.tensordot(m, np.moveaxis(y, axis, 0), axes=(1, 0)), 0, axis)
    return y


# -- recurrent ------------------------------------------------------------------
def _rnn_direction(cell: str, x: np.ndarray, w: np.ndarray, r: np.ndarray, b: np.ndarray,
                   h: np.ndarray, c: np.ndarray, p: np.ndarray, fns: Sequence,
                   lbr: int, lens: np.ndarray) -> tuple:
    """One forward direction over the whole batch at once, step by step in time order.

    x [N, T, I]; a sequence is over once t >= lens[n]; finished rows keep their state
    and output zeros."""
    n, t_len, _ = x.shape
    hidden = r.shape[1]
    wb, rb = b[:b.size // 2], b[b.size // 2:]
    ys = np.zeros((n, t_len, hidden))
    for t in range(t_len):
        live = (t < lens)[:, None]
        gx = x[:, t] @ w.T + wb
        gh = h @ r.T + rb
        if cell == "LSTM":
            zi, zo, zf, zc = (gx + gh)[:, :hidden], (gx + gh)[:, hidden:2 * hidden], \
                (gx + gh)[:, 2 * hidden:3 * hidden], (gx + gh)[:, 3 * hidden:]
            i = fns[0](zi + p[:hidden] * c)
            f = fns[0](zf + p[2 * hidden:] * c)
            c_new = f * c + i * fns[1](zc)
            o = fns[0](zo + p[hidden:2 * hidden] * c_new)
            h_new = o * fns[2](c_new)
            c = np.where(live, c_new, c)
        elif cell == "GRU":
            z = fns[0](gx[:, :hidden] + gh[:, :hidden])
            rr = fns[0](gx[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
            if lbr:
                cand = fns[1](gx[:, 2 * hidden:] + rr * gh[:, 2 * hidden:])
            else:
                cand = fns[1](gx[:, 2 * hidden:] + (rr * h) @ r[2 * hidden:].T
                              + rb[2 * hidden:])
            h_new = z * h + (1 - z) * cand
        else:
            h_new = fns[0](gx + gh)
        h = np.where(live, h_new, h)
        ys[:, t] = np.where(live, h_new, 0.0)
    return ys, h, c


def recurrent(cell: str, x: np.ndarray, w: np.ndarray, r: np.ndarray,
              b: np.ndarray | None = None, initial_h: np.ndarray | None = None,
              initial_c: np.ndarray | None = None, p: np.ndarray | None = None,
              direction: str = "forward", activations: Sequence[str] = (),
              linear_before_reset: int = 0, sequence_lens: np.ndarray | None = None
              ) -> list[np.ndarray]:
    """IR LSTM/GRU/RNN (ONNX semantics, batch-major): [Y, Y_h] (+ Y_c for LSTM).

    Reverse rows of unequal length: reversing each row's valid prefix, running
    forward and reversing back is the same as reading it back to front."""
    defaults = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                "RNN": ["Tanh"]}[cell]
    x = x.astype(np.float64)
    n, t_len, _ = x.shape
    nd, hidden = w.shape[0], r.shape[2]
    names = list(activations) or defaults * nd
    per = len(defaults)
    lens = np.full(n, t_len) if sequence_lens is None else np.asarray(sequence_lens)
    y = np.zeros((n, t_len, nd, hidden))
    yh, yc = np.zeros((n, nd, hidden)), np.zeros((n, nd, hidden))
    for d in range(nd):
        reverse = direction == "reverse" or d == 1
        fns = [ACTIVATIONS[a] for a in names[d * per:(d + 1) * per]]
        h = np.zeros((n, hidden)) if initial_h is None else initial_h[:, d].astype(np.float64)
        c = np.zeros((n, hidden)) if initial_c is None else initial_c[:, d].astype(np.float64)
        bd = np.zeros(2 * w.shape[1]) if b is None else b[d].astype(np.float64)
        pd = np.zeros(3 * hidden) if p is None else p[d].astype(np.float64)
        xd = x
        if reverse:  # flip each row's valid prefix, run forward, flip back
            xd = x.copy()
            for i in range(n):
                xd[i, :lens[i]] = x[i, :lens[i]][::-1]
        ys, h, c = _rnn_direction(cell, xd, w[d].astype(np.float64), r[d].astype(np.float64),
                                  bd, h, c, pd, fns, linear_before_reset, lens)
        if reverse:
            for i in range(n):
                ys[i, :lens[i]] = ys[i, :lens[i]][::-1].copy()
        y[:, :, d], yh[:, d], yc[:, d] = ys, h, c
    return [y, yh, yc] if cell == "LSTM" else [y, yh]


# -- Scan -----------------------------------------------------------------------
def scan(step: Callable[..., tuple[list[np.ndarray], list[np.ndarray]]],
         states: Sequence[np.ndarray], xs: Sequence[np.ndarray], reverse: bool = False
         ) -> list[np.ndarray]:
    """IR Scan with a Python ``step(states, x_ts) -> (new_states, step_outputs)``:
    [final states..., stacked outputs [N, T, ...]...] in float64.  A [1, ...] state is
    broadcast over the batch; with ``reverse`` t runs T-1..0 and y[:, t] stays at t."""
    n, t_len = xs[0].shape[:2]
    hs = [np.broadcast_to(s.astype(np.float64), (n, *s.shape[1:])) for s in states]
    ys: dict[int, list[np.ndarray]] = {}
    for t in (reversed(range(t_len)) if reverse else range(t_len)):
        hs, outs = step(hs, [x[:, t].astype(np.float64) for x in xs])
        ys[t] = outs
    stacked = [np.stack([ys[t][k] for t in range(t_len)], axis=1)
               for k in range(len(ys[0]))]
    return [*hs, *stacked]
