"""Compute a written ML Program's outputs in numpy, op by op, without Core ML.

Core ML runs only on macOS.  What can be computed here is the program *as
stored in the file* (read back with coremltools' MIL-proto loader, weights
from ``weight.bin``), each op evaluated by a numpy definition of its MIL
semantics:

- for most ops, coremltools' own ``value_inference`` (Apple's numpy reading
  of the op, which coremltools uses to fold constants): the op is rebuilt with
  constant inputs in a scratch MIL function and its value taken;
- for the ops coremltools gives no value for (conv, conv_transpose, pools,
  batch_norm, local_response_norm, instance_norm, depth/space rearrangements,
  upsampling, one_hot, lstm/gru/rnn) and cumsum (whose exclusive form raises
  in coremltools 9), the definitions below, written from the MIL op
  documentation in coremltools' sources (for lstm/gru/rnn also from Apple's
  iOS15 runtime tests of those ops, where the op docs leave a point open: see
  :mod:`mmconv.emitters.coreml.recurrent`).

This checks everything the converter decides (op choice, attribute values,
pad order, weight layout, wiring) against the source model's outputs; it does
not check the Core ML runtime itself, and says so in every report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.emitters.coreml.runtime import import_coremltools, quiet
from mmconv.errors import ModelFormatError, UnsupportedError

#: MIL op -> numpy definition (keyword arguments as the op's inputs)
NUMPY_OPS: dict[str, Callable[..., np.ndarray]] = {}

#: What a report says about these numbers.
NOTICE = ("computed by numpy from the ML Program read back from the file (MIL op semantics: "
          "coremltools' value inference, mmconv's numpy for {ops}), NOT by Core ML, which "
          "runs only on macOS")


def _op(*names: str) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    def add(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        for name in names:
            NUMPY_OPS[name] = fn
        return fn
    return add


def _pairs(pad: Any, n: int) -> list[tuple[int, int]]:
    pad = [int(p) for p in (pad if pad is not None else [0] * (2 * n))]
    return [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]


def _windows(x: np.ndarray, kernel: list[int], strides: list[int], dilations: list[int],
             out: list[int]) -> np.ndarray:
    """x [N, C, *padded] -> [N, C, *out, *kernel]: every window of every output position."""
    n = len(kernel)
    idx = []
    for i in range(n):
        pos = np.arange(out[i])[:, None] * strides[i] + np.arange(kernel[i])[None, :] * dilations[i]
        idx.append(pos)
    result = x
    for i in range(n):
        # take along spatial axis 2 + 2*i (earlier axes already split in two)
        axis = 2 + 2 * i
        result = np.take(result, idx[i], axis=axis)
    # now [N, C, o0, k0, o1, k1, ...] -> [N, C, o0, o1, ..., k0, k1, ...]
    perm = [0, 1] + [2 + 2 * i for i in range(n)] + [3 + 2 * i for i in range(n)]
    return result.transpose(perm)


@_op("conv")
def conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
         strides: Any = None, pad_type: str = "valid", pad: Any = None,
         dilations: Any = None, groups: int = 1) -> np.ndarray:
    n = x.ndim - 2
    if pad_type not in ("custom", "valid"):
        raise UnsupportedError(f"conv pad_type {pad_type!r} is not evaluated here")
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    pairs = _pairs(pad if pad_type == "custom" else None, n)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), *pairs])
    kernel = list(weight.shape[2:])
    out = [(xp.shape[2 + i] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1
           for i in range(n)]
    win = _windows(xp, kernel, strides, dilations, out)  # [N, Cin, *out, *k]
    g = int(groups)
    cin, cout = x.shape[1] // g, weight.shape[0] // g
    parts = []
    for gi in range(g):
        w = weight[gi * cout:(gi + 1) * cout].astype(np.float64)  # [cout, cin, *k]
        xw = win[:, gi * cin:(gi + 1) * cin]  # [N, cin, *out, *k]
        xw = np.moveaxis(xw, 1, 1 + n)  # [N, *out, cin, *k]
        flat = xw.reshape(*xw.shape[:1 + n], -1)
        parts.append(np.moveaxis(flat @ w.reshape(cout, -1).T, -1, 1))
    y = np.concatenate(parts, axis=1)
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * n))
    return y.astype(x.dtype)


@_op("conv_transpose")
def conv_transpose(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                   pad: Any = None, output_shape: Any = None, pad_type: str = "valid",
                   strides: Any = None, dilations: Any = None, groups: int = 1) -> np.ndarray:
    """Scatter each input pixel times the kernel; crop the begin pads; the end is cropped
    to ``output_shape`` when given (extra rows at the end), else by the end pads."""
    n = x.ndim - 2
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    pairs = _pairs(pad if pad_type == "custom" else None, n)
    g = int(groups)
    cin, cout = x.shape[1] // g, weight.shape[1]
    kernel = list(weight.shape[2:])
    full = [(x.shape[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
            for i in range(n)]
    extra = [0] * n
    if output_shape is not None:
        want = [int(d) for d in list(output_shape)[2:]]
        extra = [max(0, want[i] - (full[i] - pairs[i][0] - pairs[i][1])) for i in range(n)]
    y = np.zeros((x.shape[0], cout * g, *[full[i] + extra[i] for i in range(n)]))
    xd = x.astype(np.float64)
    for gi in range(g):
        w = weight[gi * cin:(gi + 1) * cin].astype(np.float64)  # [cin, cout, *k]
        xs = xd[:, gi * cin:(gi + 1) * cin]
        for k in np.ndindex(*kernel):
            contrib = np.einsum("nc...,co->no...", xs, w[(slice(None), slice(None), *k)])
            index = [slice(None), slice(gi * cout, (gi + 1) * cout)]
            for i in range(n):
                start = k[i] * dilations[i]
                index.append(slice(start, start + (x.shape[2 + i] - 1) * strides[i] + 1,
                                   strides[i]))
            y[tuple(index)] += contrib
    crop = [slice(None), slice(None)]
    for i in range(n):
        end = y.shape[2 + i] - (pairs[i][1] if output_shape is None else 0)
        if output_shape is not None:
            end = pairs[i][0] + int(list(output_shape)[2 + i])
        crop.append(slice(pairs[i][0], end))
    y = y[tuple(crop)]
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * n))
    return y.astype(x.dtype)


def _pool(x: np.ndarray, kernel_sizes: Any, strides: Any, pad_type: str, pad: Any,
          ceil_mode: bool, kind: str, exclude_padding_from_average: bool = False
          ) -> np.ndarray:
    n = x.ndim - 2
    kernel = [int(k) for k in kernel_sizes]
    strides = [int(s) for s in strides] if strides is not None else [1] * n
    pairs = _pairs(pad if pad_type == "custom" else None, n)
    out = []
    for i in range(n):
        size = x.shape[2 + i] + pairs[i][0] + pairs[i][1] - kernel[i]
        o = (-(-size // strides[i]) if ceil_mode else size // strides[i]) + 1
        # PyTorch's rule: the last window must start inside the input or the begin padding
        if ceil_mode and (o - 1) * strides[i] >= x.shape[2 + i] + pairs[i][0]:
            o -= 1
        out.append(o)
    # pad to cover every window; cells beyond the padding count as padding too
    ends = [max(pairs[i][1], (out[i] - 1) * strides[i] + kernel[i] - x.shape[2 + i]
                - pairs[i][0]) for i in range(n)]
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(pairs[i][0], ends[i])
                                                          for i in range(n)],
                constant_values=fill)
    win = _windows(xp, kernel, strides, [1] * n, out)
    axes = tuple(range(2 + n, 2 + 2 * n))
    if kind == "max":
        return win.max(axis=axes).astype(x.dtype)
    total = win.sum(axis=axes)
    if exclude_padding_from_average:
        ones = np.pad(np.ones((1, 1, *x.shape[2:])), [(0, 0), (0, 0)] + [
            (pairs[i][0], ends[i]) for i in range(n)])
    else:  # padding counts, the overhang beyond it does not (PyTorch's ceil-mode divisor)
        ones = np.pad(np.ones((1, 1, *[x.shape[2 + i] + pairs[i][0] + pairs[i][1]
                                       for i in range(n)])),
                      [(0, 0), (0, 0)] + [(0, ends[i] - pairs[i][1]) for i in range(n)])
    count = _windows(ones, kernel, strides, [1] * n, out).sum(axis=axes)
    return (total / count).astype(x.dtype)


@_op("max_pool")
def max_pool(x: np.ndarray, kernel_sizes: Any, strides: Any = None, pad_type: str = "valid",
             pad: Any = None, ceil_mode: bool = False) -> np.ndarray:
    return _pool(x, kernel_sizes, strides, pad_type, pad, bool(ceil_mode), "max")


@_op("avg_pool")
def avg_pool(x: np.ndarray, kernel_sizes: Any, strides: Any = None, pad_type: str = "valid",
             pad: Any = None, exclude_padding_from_average: bool = False,
             ceil_mode: bool = False) -> np.ndarray:
    return _pool(x, kernel_sizes, strides, pad_type, pad, bool(ceil_mode), "avg",
                 bool(exclude_padding_from_average))


def _per_channel(a: np.ndarray, rank: int) -> np.ndarray:
    return np.asarray(a, np.float64).reshape(1, -1, *([1] * (rank - 2)))


@_op("batch_norm")
def batch_norm(x: np.ndarray, mean: np.ndarray, variance: np.ndarray,
               gamma: np.ndarray | None = None, beta: np.ndarray | None = None,
               epsilon: float = 1e-5) -> np.ndarray:
    r = x.ndim
    y = (x - _per_channel(mean, r)) / np.sqrt(_per_channel(variance, r) + float(epsilon))
    if gamma is not None:
        y = y * _per_channel(gamma, r)
    if beta is not None:
        y = y + _per_channel(beta, r)
    return y.astype(x.dtype)


@_op("instance_norm")
def instance_norm(x: np.ndarray, gamma: np.ndarray | None = None,
                  beta: np.ndarray | None = None, epsilon: float = 1e-5) -> np.ndarray:
    axes = tuple(range(2, x.ndim))
    xd = x.astype(np.float64)
    y = (xd - xd.mean(axis=axes, keepdims=True)) / np.sqrt(
        xd.var(axis=axes, keepdims=True) + float(epsilon))
    if gamma is not None:
        y = y * _per_channel(gamma, x.ndim)
    if beta is not None:
        y = y + _per_channel(beta, x.ndim)
    return y.astype(x.dtype)


@_op("local_response_norm")
def local_response_norm(x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> np.ndarray:
    """x / (k + alpha / size * sum of x^2 over the channel window) ^ beta; the window is
    floor((size-1)/2) channels before and ceil((size-1)/2) after (ONNX's)."""
    size = int(size)
    sq = np.square(x.astype(np.float64))
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    padded = np.pad(sq, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    total = sum(padded[:, i:i + x.shape[1]] for i in range(size))
    return (x / (float(k) + float(alpha) / size * total) ** float(beta)).astype(x.dtype)


@_op("depth_to_space")
def depth_to_space(x: np.ndarray, block_size: int) -> np.ndarray:
    """TensorFlow's (DCR): channel (i*b + j) * C' + c goes to pixel (h*b + i, w*b + j)."""
    b = int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


@_op("pixel_shuffle")
def pixel_shuffle(x: np.ndarray, upscale_factor: int) -> np.ndarray:
    """PyTorch's (CRD): channel c*b^2 + i*b + j goes to pixel (h*b + i, w*b + j)."""
    b = int(upscale_factor)
    n, c, h, w = x.shape
    y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


@_op("space_to_depth")
def space_to_depth(x: np.ndarray, block_size: int) -> np.ndarray:
    """TensorFlow's: pixel (h*b + i, w*b + j) of channel c goes to channel (i*b + j)*C + c."""
    b = int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@_op("upsample_nearest_neighbor")
def upsample_nearest_neighbor(x: np.ndarray, scale_factor_height: Any = 1,
                              scale_factor_width: Any = 1) -> np.ndarray:
    """Integer factors: output pixel i reads input i // s."""
    sh, sw = int(scale_factor_height), int(scale_factor_width)
    return np.repeat(np.repeat(x, sh, axis=-2), sw, axis=-1)


@_op("one_hot")
def one_hot(indices: np.ndarray, one_hot_vector_size: int, axis: int = -1,
            on_value: Any = 1.0, off_value: Any = 0.0) -> np.ndarray:
    size = int(one_hot_vector_size)
    hot = np.asarray(indices)[..., None] == np.arange(size)
    out = np.where(hot, on_value, off_value).astype(np.asarray(on_value).dtype)
    axis = int(axis)
    return np.moveaxis(out, -1, axis if axis >= 0 else axis + out.ndim)


def _plain(value: Any) -> Any:
    """numpy bool/str scalars (how the loader gives parameters) as Python's: coremltools'
    value inference passes them to numpy calls that want a Python bool or str."""
    if isinstance(value, (np.bool_, np.str_)):
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "bU":
        return value.item()
    return value


@_op("cumsum")
def cumsum(x: np.ndarray, axis: int = 0, exclusive: bool = False,
           reverse: bool = False) -> np.ndarray:
    """Here because coremltools 9's value inference of an exclusive cumsum raises
    (``np.zeros(shape, data)``)."""
    axis = int(axis)
    data = np.flip(x, axis=axis) if reverse else x
    out = np.cumsum(data, axis=axis, dtype=np.float64 if x.dtype.kind == "f" else None)
    if exclusive:
        out = np.concatenate([np.zeros_like(np.take(out, [0], axis=axis)),
                              np.take(out, range(out.shape[axis] - 1), axis=axis)], axis=axis)
    out = np.flip(out, axis=axis) if reverse else out
    return out.astype(x.dtype)


#: MIL recurrent activations with no parameter (the ones the emitter writes)
_RNN_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0.0),
}


def _rnn_act(name: Any) -> Callable[[np.ndarray], np.ndarray]:
    fn = _RNN_ACTIVATIONS.get(str(name).lower())
    if fn is None:
        raise UnsupportedError(f"recurrent activation {name!r} is not evaluated here")
    return fn


def _run(x: np.ndarray, h0: np.ndarray, backwards: bool,
         step: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """x [T, B, I] time-major; ``step(x_t, h) -> h``.  The outputs in the order the steps
    ran (a reverse run's first output is the last input's: Apple's runtime tests)."""
    order = range(x.shape[0] - 1, -1, -1) if backwards else range(x.shape[0])
    h, outs = h0, []
    for t in order:
        h = step(x[t], h)
        outs.append(h)
    return np.stack(outs), h


def _lstm_direction(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray,
                    w_hh: np.ndarray, bias: np.ndarray | None, peephole: np.ndarray | None,
                    backwards: bool, acts: tuple[Any, Any, Any], clip: Any
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MIL lstm, one direction: gates i, f, o, z in W/R/bias rows; peepholes i, f (on
    c_{t-1}) and o (on c_t); ``clip`` bounds the cell state (Apple's runtime tests)."""
    hidden = w_hh.shape[1]
    f_rec, f_cell, f_out = (_rnn_act(a) for a in acts)
    b = np.zeros(4 * hidden) if bias is None else np.asarray(bias, np.float64)
    p = np.zeros(3 * hidden) if peephole is None else np.asarray(peephole, np.float64)
    w_ih, w_hh = np.asarray(w_ih, np.float64), np.asarray(w_hh, np.float64)
    cell = {"c": np.asarray(c0, np.float64)}

    def step(xt: np.ndarray, h: np.ndarray) -> np.ndarray:
        c = cell["c"]
        pre = xt @ w_ih.T + h @ w_hh.T + b
        gi, gf, go, gz = np.split(pre, 4, axis=-1)
        i = f_rec(gi + p[:hidden] * c)
        f = f_rec(gf + p[hidden:2 * hidden] * c)
        c = f * c + i * f_cell(gz)
        if clip is not None:
            c = np.clip(c, -float(clip), float(clip))
        o = f_rec(go + p[2 * hidden:] * c)
        cell["c"] = c
        return o * f_out(c)

    seq, h = _run(np.asarray(x, np.float64), np.asarray(h0, np.float64), backwards, step)
    return seq, h, cell["c"]


@_op("lstm")
def lstm(x: np.ndarray, initial_h: np.ndarray, initial_c: np.ndarray, weight_ih: np.ndarray,
         weight_hh: np.ndarray, bias: np.ndarray | None = None,
         peephole: np.ndarray | None = None, weight_ih_back: np.ndarray | None = None,
         weight_hh_back: np.ndarray | None = None, bias_back: np.ndarray | None = None,
         peephole_back: np.ndarray | None = None, direction: str = "forward",
         output_sequence: bool = False, recurrent_activation: str = "sigmoid",
         cell_activation: str = "tanh", activation: str = "tanh", clip: Any = None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MIL lstm (iOS15): x [T, B, I], states [B, D*H]; bidirectional: the forward half
    then the backward half (its sequence at the input positions, as NeuralNetwork.proto's
    bidirectional LSTM says)."""
    acts = (recurrent_activation, cell_activation, activation)
    hidden = np.asarray(weight_hh).shape[1]
    if direction == "bidirectional":
        yf, hf, cf = _lstm_direction(x, initial_h[:, :hidden], initial_c[:, :hidden],
                                     weight_ih, weight_hh, bias, peephole, False, acts, clip)
        yb, hb, cb = _lstm_direction(x, initial_h[:, hidden:], initial_c[:, hidden:],
                                     weight_ih_back, weight_hh_back, bias_back, peephole_back,
                                     True, acts, clip)
        seq = np.concatenate([yf, yb[::-1]], axis=-1)
        last = np.concatenate([yf[-1:], yb[-1:]], axis=-1)
        h, c = np.concatenate([hf, hb], axis=-1), np.concatenate([cf, cb], axis=-1)
    else:
        seq, h, c = _lstm_direction(x, initial_h, initial_c, weight_ih, weight_hh, bias,
                                    peephole, direction == "reverse", acts, clip)
        last = seq[-1:]
    y = seq if output_sequence else last
    return tuple(a.astype(np.float32) for a in (y, h, c))  # type: ignore[return-value]


@_op("gru")
def gru(x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
        bias: np.ndarray | None = None, direction: str = "forward",
        output_sequence: bool = False, recurrent_activation: str = "sigmoid",
        activation: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """MIL gru: gates r, o, z in W/R/bias rows; the candidate reads ``R_o (r * h)`` (the
    reset-before form Apple's runtime tests and NeuralNetwork.proto compute)."""
    f_rec, f_out = _rnn_act(recurrent_activation), _rnn_act(activation)
    hidden = np.asarray(weight_hh).shape[1]
    w_ih, w_hh = np.asarray(weight_ih, np.float64), np.asarray(weight_hh, np.float64)
    b = np.zeros(3 * hidden) if bias is None else np.asarray(bias, np.float64)
    wr, wo, wz = np.split(w_ih, 3)
    rr, ro, rz = np.split(w_hh, 3)
    br, bo, bz = np.split(b, 3)

    def step(xt: np.ndarray, h: np.ndarray) -> np.ndarray:
        z = f_rec(xt @ wz.T + h @ rz.T + bz)
        r = f_rec(xt @ wr.T + h @ rr.T + br)
        o = f_out(xt @ wo.T + (r * h) @ ro.T + bo)
        return (1 - z) * o + z * h

    seq, h = _run(np.asarray(x, np.float64), np.asarray(initial_h, np.float64),
                  direction == "reverse", step)
    y = seq if output_sequence else seq[-1:]
    return y.astype(np.float32), h.astype(np.float32)


@_op("rnn")
def rnn(x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
        bias: np.ndarray | None = None, direction: str = "forward",
        output_sequence: bool = False, activation: str = "tanh"
        ) -> tuple[np.ndarray, np.ndarray]:
    """MIL rnn: h = activation(W x + R h + bias)."""
    f = _rnn_act(activation)
    w_ih, w_hh = np.asarray(weight_ih, np.float64), np.asarray(weight_hh, np.float64)
    b = np.zeros(w_hh.shape[0]) if bias is None else np.asarray(bias, np.float64)
    seq, h = _run(np.asarray(x, np.float64), np.asarray(initial_h, np.float64),
                  direction == "reverse", lambda xt, h: f(xt @ w_ih.T + h @ w_hh.T + b))
    y = seq if output_sequence else seq[-1:]
    return y.astype(np.float32), h.astype(np.float32)


def _load_program(path: Path) -> Any:
    ct = import_coremltools()
    from coremltools.converters.mil.frontend.milproto.load import load

    with quiet():
        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
        if spec.WhichOneof("Type") != "mlProgram":
            raise UnsupportedError(f"{path}: only ML Programs (.mlpackage) can be computed "
                                   "here; a NeuralNetwork (.mlmodel) is checked structurally")
        return spec, load(spec, spec.specificationVersion, model.weights_dir or "")


def run_program(path: str | Path, feeds: Mapping[str, np.ndarray]
                ) -> tuple[dict[str, np.ndarray], set[str]]:
    """Outputs (by Core ML name) of the ML Program at ``path`` on ``feeds`` (by Core ML
    input name, shapes as declared); also the op types mmconv's numpy computed."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function

    ct = import_coremltools()
    path = Path(path)
    _, program = _load_program(path)
    fn = program.functions["main"]
    env: dict[str, Any] = {}
    for name in fn.inputs:
        if name not in feeds:
            raise ModelFormatError(f"{path}: no value for model input {name!r}")
        env[name] = np.asarray(feeds[name])
    ours: set[str] = set()
    with quiet(), Function({}, opset_version=ct.target.iOS15):
        for op in fn.operations:
            out = op.outputs[0].name
            if op.op_type == "const":
                env[out] = op.outputs[0].val
                continue
            args = {k: ([env[v.name] for v in var] if isinstance(var, (list, tuple))
                        else _plain(env[var.name])) for k, var in op.inputs.items()}
            numpy_op = NUMPY_OPS.get(op.op_type)
            if numpy_op is not None:
                result = numpy_op(**args)
                if isinstance(result, tuple):  # lstm/gru/rnn: one array per output
                    env.update({v.name: a for v, a in zip(op.outputs, result, strict=True)})
                else:
                    env[out] = result
                ours.add(op.op_type)
                continue
            try:
                value = getattr(mb, op.op_type)(**args).val
            except Exception as exc:
                raise UnsupportedError(f"{path}: op {out!r} ({op.op_type}) cannot be computed "
                                       f"here ({exc})") from exc
            if value is None:
                raise UnsupportedError(f"{path}: op {out!r} ({op.op_type}) has no numpy "
                                       "definition here")
            env[out] = np.asarray(value)
    return {v.name: np.asarray(env[v.name]) for v in fn.outputs}, ours


def run_saved_program(path: Path, graph: Any, inputs: Mapping[str, np.ndarray]
                      ) -> tuple[list[np.ndarray], str]:
    """The outputs, in IR order, of the program at ``path`` for inputs keyed by IR name, and
    the notice to print with them.  The model has a fixed batch: a larger batch of
    inputs is run one slice of the model's batch at a time."""
    spec, _ = _load_program(path)
    meta = spec.description.metadata.userDefined
    in_names = json.loads(meta["mmconv.inputs"]) if "mmconv.inputs" in meta else {}
    out_names = json.loads(meta["mmconv.outputs"]) if "mmconv.outputs" in meta else {}
    declared = {f.name: tuple(int(d) for d in f.type.multiArrayType.shape)
                for f in spec.description.input}
    batched = [v for v in graph.inputs if v.shape and v.shape[0] is None]
    steps = 1
    for v in batched:  # the model's batch is fixed: run the inputs' batch in slices of it
        model_batch = declared[in_names.get(v.name, v.name)][0]
        steps = max(steps, -(-np.asarray(inputs[v.name]).shape[0] // model_batch))
    results: list[list[np.ndarray]] = [[] for _ in graph.outputs]
    ours: set[str] = set()
    for step in range(steps):
        feeds = {}
        for v in graph.inputs:
            name = in_names.get(v.name, v.name)
            array = np.asarray(inputs[v.name])
            if steps > 1 and v in batched:
                b = declared[name][0]
                array = array[step * b:(step + 1) * b]
            kind = np.float32 if v.dtype.startswith("float") else np.int32
            feeds[name] = array.astype(kind)
        outs, used = run_program(path, feeds)
        ours |= used
        for i, name in enumerate(graph.outputs):
            results[i].append(outs[out_names.get(name, name)])
    arrays = [np.concatenate(parts) if steps > 1 else parts[0] for parts in results]
    return arrays, NOTICE.format(ops=", ".join(sorted(ours)) or "none")
