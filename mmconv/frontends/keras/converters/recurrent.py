"""Recurrent layers: LSTM, GRU, SimpleRNN, RNN(cell) and Bidirectional -> one IR node each;
TimeDistributed over a per-step layer (Dense...), which taggers put after them.

The IR's recurrent ops are ONNX's, batch-major (:mod:`mmconv.ir.ops.recurrent`), which
is Keras' own [batch, time, features] layout, so no transposes are needed. What
changes is the weights' arrangement (Keras 3, ``keras/src/layers/rnn``):

- kernels are ``[in, G*H]`` (``x @ kernel``), ONNX ``W`` is ``[G*H, in]``;
- gate blocks: LSTM i, f, c, o -> ONNX i, o, f, c; GRU z, r, h is ONNX's order;
- one bias (LSTM, SimpleRNN, GRU ``reset_after=False``) goes to ONNX's input bias
  with zeros for the recurrent one (exact: ONNX only adds them); GRU
  ``reset_after=True`` has two bias rows (input, recurrent), ONNX's two halves, and
  is ``linear_before_reset=1``; ``reset_after=False`` is ``linear_before_reset=0``;
- ``activation`` / ``recurrent_activation`` become ONNX activation names (LSTM:
  [recurrent, activation, activation], GRU: [recurrent, activation], SimpleRNN:
  [activation]); one ONNX lacks is refused before anything is built.

``go_backwards=True`` is the IR's ``reverse`` direction, but Keras returns that
run's sequence in processing order (reversed), ONNX at the input positions: the
sequence is flipped back. A Bidirectional layer is one ``bidirectional`` node (its
backward layer's sequence is already re-aligned by Keras, as ONNX's is); the merge
modes are a Reshape (concat) or elementwise ops on the two directions' slices.
``RNN(LSTMCell(...))`` (and GRUCell, SimpleRNNCell) is the layer of that cell; a
``StackedRNNCells`` is refused. ``unit_forget_bias`` only initialises weights;
``dropout``/``recurrent_dropout`` act in training only; ``unroll`` is the same
arithmetic. ``stateful=True`` (the state carries over between calls) is refused; a
mask fed to a recurrent layer is refused by :mod:`mmconv.frontends.keras.masking`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, UnsupportedError
from mmconv.frontends.keras.context import KerasContext, Tensor, identity
from mmconv.frontends.keras.converters import CHECKS, CONVERTERS, cfg, unsupported_reason
from mmconv.frontends.keras.converters.activation import activation_name
from mmconv.frontends.keras.model import Layer
from mmconv.ir.ops.recurrent import ACTIVATION_PARAMS, DEFAULT_ACTIVATIONS

#: Keras layer class -> IR op
OPS = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}
#: Keras gate blocks (columns of the kernel) in ONNX's gate order
GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (0, 1, 2), "SimpleRNN": (0,)}
#: Keras' merge_mode -> the elementwise op on the two directions (concat: a Reshape)
MERGES = {"sum": "Add", "mul": "Mul", "ave": "Add"}
#: the generic ``RNN(cell)`` layer's cells -> the layer doing the same
CELLS = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
#: options of the ``RNN`` wrapper (the rest of the config is its cell's)
RNN_OPTIONS = ("name", "return_sequences", "return_state", "go_backwards", "stateful",
               "unroll", "time_major")


def as_layer(layer: Layer) -> Layer:
    """``RNN(LSTMCell(...))`` as the ``LSTM`` it computes (same weights, same place in
    the file: ``<layer>/cell``); any other layer unchanged. A cell Keras has no layer
    for (``StackedRNNCells``, a custom cell) keeps class ``RNN(<cell>)``."""
    if layer.class_name != "RNN":
        return layer
    cell = cfg(layer, "cell")
    if not isinstance(cell, dict) or not isinstance(cell.get("config"), dict) or \
            not isinstance(cell.get("class_name"), str) or cell["class_name"] not in CELLS:
        what = cell.get("class_name") if isinstance(cell, dict) else None
        what = what if isinstance(what, str) else "a damaged cell config"
        return replace(layer, class_name=f"RNN({what})")
    config = {**cell["config"], **{k: layer.config[k] for k in RNN_OPTIONS
                                   if k in layer.config}}
    return replace(layer, class_name=CELLS[cell["class_name"]], config=config)


def onnx_activation(spec: Any, keras_version: str) -> tuple[str, float | None, float | None] | None:
    """The ONNX activation (name, alpha, beta) computing Keras activation ``spec``, or None.

    ``hard_sigmoid`` is Keras 3's relu6(x + 3) / 6 (alpha 1/6), Keras 2's 0.2 x + 0.5."""
    name = activation_name(spec)
    legacy = keras_version.startswith(("1.", "2."))
    table: dict[str, tuple[str, float | None, float | None]] = {
        "tanh": ("Tanh", None, None), "sigmoid": ("Sigmoid", None, None),
        "relu": ("Relu", None, None), "softsign": ("Softsign", None, None),
        "softplus": ("Softplus", None, None), "linear": ("Affine", 1.0, 0.0),
        "elu": ("Elu", 1.0, None), "leaky_relu": ("LeakyRelu", 0.2, None),
        "hard_sigmoid": ("HardSigmoid", 0.2 if legacy else 1.0 / 6.0, 0.5),
    }
    return table.get(name or "")


def _activations(rnn: Layer, keras_version: str) -> list[tuple[str, float | None, float | None]]:
    """The IR activation slots of one direction (refused names were caught earlier)."""
    act = onnx_activation(cfg(rnn, "activation", "tanh"), keras_version)
    rec = onnx_activation(cfg(rnn, "recurrent_activation", "sigmoid"), keras_version)
    assert act is not None and (rec is not None or rnn.class_name == "SimpleRNN")
    return {"LSTM": [rec, act, act], "GRU": [rec, act], "SimpleRNN": [act]}[rnn.class_name]


def _rnn_problem(rnn: Layer, keras_version: str, owner: str) -> str | None:
    """Why wrapped-or-not recurrent layer ``rnn`` cannot be converted, or None."""
    if rnn.class_name not in OPS:
        return rnn.class_name if owner == "RNN" else f"{owner}({rnn.class_name})"
    units = cfg(rnn, "units")
    if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
        return f"{owner}(units={units!r})"
    if cfg(rnn, "stateful", False):
        return f"{owner}(stateful=True: its state carries over from one call to the next)"
    if cfg(rnn, "time_major", False):
        return f"{owner}(time_major=True)"
    keys = ("activation",) if rnn.class_name == "SimpleRNN" else ("activation",
                                                                   "recurrent_activation")
    for key in keys:
        spec = cfg(rnn, key, "tanh" if key == "activation" else "sigmoid")
        if onnx_activation(spec, keras_version) is None:
            what = activation_name(spec) or "a custom function"
            return f"{owner}({key}={what}: no ONNX recurrent activation computes it)"
    return None


def check_rnn(layer: Layer, keras_version: str) -> str | None:
    return _rnn_problem(as_layer(layer), keras_version, layer.class_name)


def _inner(layer: Layer, key: str) -> Layer | None:
    """The layer a Bidirectional wraps (``layer``) or its explicit ``backward_layer``."""
    spec = cfg(layer, key)
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or \
            not isinstance(spec.get("config"), dict):
        return Layer(layer.name, "a damaged layer config", "", {}, layer.where)
    return as_layer(Layer(str(spec["config"].get("name", layer.name)), spec["class_name"],
                          str(spec.get("module") or ""), spec["config"], layer.where))


def check_bidirectional(layer: Layer, keras_version: str) -> str | None:
    fwd, bwd = _inner(layer, "layer"), _inner(layer, "backward_layer")
    if fwd is None:
        return "Bidirectional(without a layer)"
    merge = cfg(layer, "merge_mode", "concat")
    if merge not in (None, "concat", *MERGES):
        return f"Bidirectional(merge_mode={merge})"
    for rnn in (fwd, bwd):
        if rnn is None:
            continue
        problem = _rnn_problem(rnn, keras_version, "Bidirectional")
        if problem:
            return problem
    if cfg(fwd, "go_backwards", False):
        return "Bidirectional(over a go_backwards layer)"
    if bwd is not None and (bwd.class_name != fwd.class_name or any(
            cfg(bwd, k) != cfg(fwd, k) for k in ("units", "use_bias", "reset_after",
                                                 "return_sequences", "return_state"))):
        return "Bidirectional(backward_layer unlike the forward one)"
    return None


CHECKS.update({**dict.fromkeys((*OPS, "RNN"), check_rnn),
               "Bidirectional": check_bidirectional})


@dataclass(frozen=True)
class _Weights:
    """One direction's ONNX arrays: W [G*H, in], R [G*H, H], B [2*G*H] or None."""

    w: np.ndarray
    r: np.ndarray
    b: np.ndarray | None


def _expected(rnn: Layer, n_in: int) -> list[tuple[str, tuple[int, ...]]]:
    g, h = len(GATE_ORDER[rnn.class_name]), int(cfg(rnn, "units"))
    out = [("kernel", (n_in, g * h)), ("recurrent_kernel", (h, g * h))]
    if cfg(rnn, "use_bias", True):
        two_rows = rnn.class_name == "GRU" and cfg(rnn, "reset_after", True)
        out.append(("bias", (2, g * h) if two_rows else (g * h,)))
    return out


def _onnx_weights(rnn: Layer, arrays: dict[str, np.ndarray]) -> _Weights:
    order = GATE_ORDER[rnn.class_name]
    h = int(cfg(rnn, "units"))

    def gates(a: np.ndarray) -> np.ndarray:  # [.., G*H] Keras blocks -> ONNX blocks
        return np.concatenate([a[..., k * h:(k + 1) * h] for k in order], axis=-1)

    w = gates(arrays["kernel"]).T
    r = gates(arrays["recurrent_kernel"]).T
    b = None
    if "bias" in arrays:
        bias = gates(arrays["bias"])
        b = bias.reshape(-1) if bias.ndim == 2 else np.concatenate([bias, np.zeros_like(bias)])
    return _Weights(w, r, b)


def _read_direction(ctx: KerasContext, layer: Layer, rnn: Layer,
                    datasets: dict[str, Any]) -> _Weights:
    arrays = {k: ctx.read(layer, k, ds).astype(np.float64) for k, ds in datasets.items()}
    return _onnx_weights(rnn, arrays)


def _states(ctx: KerasContext, layer: Layer, xs: list[Tensor], count: int,
            nd: int, h: int) -> list[str]:
    """Keras initial states ([N, H] each; per direction for Bidirectional) as IR
    ``[N, nd, H]`` values, one per state kind (h, then c)."""
    states = xs[1:]
    if not states:
        return [""] * count
    if len(states) != count * nd:
        raise UnsupportedError(f"{ctx.path}: layer {layer.name!r} ({layer.class_name}) is "
                               f"given {len(states)} initial states, it takes {count * nd}")
    out = []
    for kind in range(count):
        parts = []
        for d in range(nd):
            v = ctx.keras_order(states[d * count + kind], layer.name)
            parts.append(ctx.add("Reshape", [v], f"{layer.name}/initial_{kind}_{d}",
                                 shape=[0, 1, h]))
        out.append(parts[0] if nd == 1 else ctx.add(
            "Concat", parts, f"{layer.name}/initial_{kind}", axis=1))
    return out


def _recurrent_node(ctx: KerasContext, layer: Layer, xs: list[Tensor], rnns: list[Layer],
                    direction: str) -> tuple[list[str], int]:
    """The IR node of one Keras recurrent layer (``rnns``: one per direction); returns
    its outputs (Y [N, T, nd, H], Y_h [N, nd, H], LSTM Y_c) and H."""
    rnn = rnns[0]
    op = OPS[rnn.class_name]
    if not xs:
        raise ModelFormatError(f"{ctx.path}: layer {layer.name!r} is called on no tensor")
    t = xs[0]
    kshape = ctx.keras_shape(t)
    if len(kshape) != 3:
        raise UnsupportedError(f"{ctx.path}: layer {layer.name!r} ({layer.class_name}) on a "
                               f"rank-{len(kshape)} input; recurrent layers take "
                               "[batch, time, features]")
    x = ctx.keras_order(t, layer.name)
    dtype = ctx.dtype(x)
    n_in, h = int(kshape[2]), int(cfg(rnn, "units"))
    expected = _expected(rnn, n_in)
    if len(rnns) == 1:
        found = ctx.variables(layer, expected, (("cell",),))
        dirs = [_read_direction(ctx, layer, rnn, found)]
    else:
        both = [(f"{d}_{k}", s) for d in ("forward", "backward") for k, s in expected]
        found = ctx.variables(layer, both, (("forward_layer", "cell"),
                                            ("backward_layer", "cell")))
        dirs = [_read_direction(ctx, layer, r,
                                {k: found[f"{d}_{k}"] for k, _ in expected})
                for d, r in zip(("forward", "backward"), rnns, strict=True)]
    nd = len(dirs)
    ins = [x, ctx.weight(layer, "W", np.stack([d.w for d in dirs]), dtype),
           ctx.weight(layer, "R", np.stack([d.r for d in dirs]), dtype),
           "" if dirs[0].b is None else ctx.weight(
               layer, "B", np.stack([d.b for d in dirs]), dtype),  # type: ignore[misc]
           ""]
    ins += _states(ctx, layer, xs, 2 if op == "LSTM" else 1, nd, h)
    while len(ins) > 3 and not ins[-1]:
        ins.pop()
    acts = [a for r in rnns for a in _activations(r, ctx.keras_version)]
    attrs: dict[str, object] = {"hidden_size": h, "direction": direction}
    if tuple(a[0] for a in acts) != DEFAULT_ACTIVATIONS[op] * nd or any(
            a[1] is not None for a in acts):
        attrs["activations"] = tuple(a[0] for a in acts)
        alphas = [a[1] for a in acts if ACTIVATION_PARAMS.get(a[0], (None, None))[0] is not None]
        betas = [a[2] for a in acts if ACTIVATION_PARAMS.get(a[0], (None, None))[1] is not None]
        if alphas:
            attrs["activation_alpha"] = tuple(float(v) for v in alphas)  # type: ignore[arg-type]
        if betas:
            attrs["activation_beta"] = tuple(float(v) for v in betas)  # type: ignore[arg-type]
    if op == "GRU":
        attrs["linear_before_reset"] = int(bool(cfg(rnn, "reset_after", True)))
    ports = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    name = ctx.graph.unique_name(f"{layer.name}/{op}")
    outs = [ctx.graph.unique_name(name if p == "Y" else f"{name}/{p}") for p in ports]
    ctx.add_node(op, ins, name, outputs=outs, **attrs)
    return outs, h


def _sequence(ctx: KerasContext, y: str, name: str, width: int) -> str:
    """Y [N, T, nd, H] -> Keras' [N, T, nd*H]."""
    return ctx.add("Reshape", [y], name, shape=[0, 0, width])


def _flip_time(ctx: KerasContext, value: str, name: str) -> str:
    """The sequence back to front (a dynamic length: ONNX's clamped "past the start")."""
    steps = ctx.shape(value)[1]
    end = -(steps + 1) if steps is not None else -(2 ** 31)
    return ctx.add("Slice", [value], name, starts=[-1], ends=[end], axes=[1], steps=[-1])


def _state_outputs(ctx: KerasContext, layer: Layer, outs: list[str], d: int, nd: int,
                   h: int) -> list[Tensor]:
    """Direction ``d``'s last states (h, then c) as Keras [N, H] tensors."""
    result = []
    for k, state in enumerate(outs[1:]):
        v = state if nd == 1 else ctx.add("Slice", [state], f"{state}/{d}", starts=[d],
                                          ends=[d + 1], axes=[1])
        label = "h" if k == 0 else "c"
        suffix = f"state_{label}" if nd == 1 else f"{('forward', 'backward')[d]}_{label}"
        result.append(Tensor(ctx.add("Reshape", [v], f"{layer.name}/{suffix}", shape=[0, h]),
                             identity(2)))
    return result


@CONVERTERS.register(*OPS, "RNN")
def recurrent(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    layer = as_layer(layer)
    backwards = bool(cfg(layer, "go_backwards", False))
    outs, h = _recurrent_node(ctx, layer, xs, [layer], "reverse" if backwards else "forward")
    if cfg(layer, "return_sequences", False):
        seq = _sequence(ctx, outs[0], f"{layer.name}/sequence" if backwards else layer.name, h)
        if backwards:  # Keras returns the backward run's outputs in processing order
            seq = _flip_time(ctx, seq, layer.name)
        y = Tensor(seq, identity(3))
    else:
        y = Tensor(ctx.add("Reshape", [outs[1]], layer.name, shape=[0, h]), identity(2))
    if not cfg(layer, "return_state", False):
        return [y]
    return [y, *_state_outputs(ctx, layer, outs, 0, 1, h)]


@CONVERTERS.register("Bidirectional")
def bidirectional(ctx: KerasContext, layer: Layer, xs: list[Tensor], _i: int) -> list[Tensor]:
    fwd = _inner(layer, "layer")
    if fwd is None:
        raise ModelFormatError(f"{ctx.path}: Bidirectional {layer.name!r} wraps no layer")
    bwd = _inner(layer, "backward_layer") or fwd
    outs, h = _recurrent_node(ctx, layer, xs, [fwd, bwd], "bidirectional")
    merge = cfg(layer, "merge_mode", "concat")
    if cfg(fwd, "return_sequences", False):
        both = outs[0]  # [N, T, 2, H]
        halves = [ctx.add("Reshape", [ctx.add("Slice", [both], f"{layer.name}/{d}", starts=[k],
                                              ends=[k + 1], axes=[2])],
                          f"{layer.name}/{d}_sequence", shape=[0, 0, h])
                  for k, d in enumerate(("forward", "backward"))] if merge != "concat" else []
        rank = 3
    else:
        both = outs[1]  # [N, 2, H]
        halves = [ctx.add("Reshape", [ctx.add("Slice", [both], f"{layer.name}/{d}", starts=[k],
                                              ends=[k + 1], axes=[1])],
                          f"{layer.name}/{d}_last", shape=[0, h])
                  for k, d in enumerate(("forward", "backward"))] if merge != "concat" else []
        rank = 2
    if merge == "concat":
        shape = [0, 0, 2 * h] if rank == 3 else [0, 2 * h]
        merged = [ctx.add("Reshape", [both], layer.name, shape=shape)]
    elif merge is None:
        merged = halves
    else:
        y = ctx.add(MERGES[merge], halves, layer.name if merge != "ave" else f"{layer.name}/sum")
        if merge == "ave":
            half = ctx.constant(f"{layer.name}/half", np.array(0.5, dtype=ctx.dtype(y)))
            y = ctx.add("Mul", [y, half], layer.name)
        merged = [y]
    result = [Tensor(v, identity(rank)) for v in merged]
    if not cfg(fwd, "return_state", False):
        return result
    return [*result, *_state_outputs(ctx, layer, outs, 0, 2, h),
            *_state_outputs(ctx, layer, outs, 1, 2, h)]


#: layers that act on the last axis alone, so TimeDistributed(layer) is the layer itself
PER_STEP = frozenset({"Dense", "Activation", "Dropout", "GaussianNoise", "GaussianDropout",
                      "AlphaDropout", "ActivityRegularization", "Identity", "ReLU",
                      "LeakyReLU", "ELU"})


def _distributed(layer: Layer) -> Layer | None:
    """The layer TimeDistributed ``layer`` wraps, placed where its weights are (a
    ``.keras`` file: ``<layer>/layer``; an ``.h5``: ``<layer>/<its name>/kernel``)."""
    spec = cfg(layer, "layer")
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or \
            not isinstance(spec.get("config"), dict):
        return None
    name = spec["config"].get("name")
    name = name if isinstance(name, str) else layer.name
    return Layer(name, spec["class_name"], str(spec.get("module") or ""), spec["config"],
                 (*layer.where, "layer"), h5_where=(*layer.h5_where, name))


def check_time_distributed(layer: Layer, keras_version: str) -> str | None:
    inner = _distributed(layer)
    if inner is None or inner.class_name not in PER_STEP:
        return f"TimeDistributed({inner.class_name if inner else '?'})"
    problem = unsupported_reason(inner, keras_version)
    return f"TimeDistributed({problem})" if problem else None


CHECKS["TimeDistributed"] = check_time_distributed


@CONVERTERS.register("TimeDistributed")
def time_distributed(ctx: KerasContext, layer: Layer, xs: list[Tensor],
                     index: int) -> list[Tensor]:
    """TimeDistributed over a layer acting on the last axis: that layer on the whole
    [batch, time, ...] tensor (Dense on rank > 2 is a MatMul over the last axis)."""
    inner = _distributed(layer)
    assert inner is not None  # check_time_distributed refused the rest
    fn = CONVERTERS.get(inner.class_name)
    assert fn is not None
    return fn(ctx, inner, xs, index)
