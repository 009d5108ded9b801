"""IR graph -> the text of a CNTK 2.7 Python module defining ``KitModel(weight_file)``.

The module runs on Python 3.6 (CNTK's last interpreter): no f-strings, no
annotations, nothing newer than the 3.6 stdlib.  It builds the network from
CNTK's own primitives with the IR's layout (channels-first, as CNTK), so a
converted conv net holds no transposes.  Inputs keep their IR names, shapes
and the batch as CNTK's dynamic axis (no sequence axis); the returned
Function's outputs are named after the IR outputs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

from mmconv import __version__
from mmconv.emitters.base import emit_all, load_families
from mmconv.emitters.base import missing_handlers as base_missing
from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.cntk.detection import roi_pattern
from mmconv.emitters.codegen import CodeWriter, literal
from mmconv.errors import IRError, UnsupportedError
from mmconv.ir import serde, usedef
from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import folded_for_emit

#: The op-family modules; importing them fills HANDLERS.
FAMILIES = ("activation", "conv", "detection", "elementwise", "linalg", "normalization", "pool",
            "loop", "recurrent", "reduce", "shape", "spatial")


def load_handlers() -> None:
    """Import every family module so its handlers register (idempotent)."""
    load_families("mmconv.emitters.cntk", FAMILIES)


def missing_handlers() -> list[str]:
    """IR ops without a CNTK handler (the tests pin this set)."""
    load_handlers()
    return base_missing(HANDLERS)


_HEADER = '''\
import numpy as np
import cntk as C
from cntk import cntk_py


class _Weights(object):
    """The weights file (npz, read without pickle); one Parameter/Constant per key."""

    def __init__(self, weight_file):
        with np.load(weight_file, allow_pickle=False) as data:
            self._arrays = dict((key, data[key]) for key in data.files)
        self._made = {}

    def param(self, key):
        if key not in self._made:
            self._made[key] = C.parameter(init=self._arrays[key], name=key)
        return self._made[key]

    def const(self, key):
        if key not in self._made:
            self._made[key] = C.constant(self._arrays[key], name=key)
        return self._made[key]
'''

#: Helpers for CNTK's explicit-padding overloads, which the Python wrappers hide.
#: The SWIG layer takes window/strides as tuples (reversed to CNTK's storage
#: order by its NDShape typemap) and the pads as lists already in storage order
#: (W, H, C), i.e. reversed Python order with the channel axis last.
_HELPER_SOURCE = {
    "_gru_reset_after": '''\
def _gru_reset_after(shape, activation, name):
    """cntk.layers.GRU with the reset gate applied after the recurrent product (ONNX
    linear_before_reset=1, PyTorch's and Keras' GRU), which cntk.layers.GRU cannot say.
    Parameters W (input, 3H), H (H, 3H), b and bh (3H): the input and recurrent biases."""
    W = C.Parameter((C.InferredDimension, 3 * shape), init=C.glorot_uniform(), name="W")
    H = C.Parameter((shape, 3 * shape), init=C.glorot_uniform(), name="H")
    b = C.Parameter((3 * shape,), init=0, name="b")
    bh = C.Parameter((3 * shape,), init=0, name="bh")

    @C.BlockFunction("GRU", name)
    def gru(dh, x):
        px = b + C.times(x, W)
        ph = bh + C.times(dh, H)
        z = C.sigmoid(C.slice(px, -1, 0, shape) + C.slice(ph, -1, 0, shape))
        r = C.sigmoid(C.slice(px, -1, shape, 2 * shape) + C.slice(ph, -1, shape, 2 * shape))
        c = activation(C.slice(px, -1, 2 * shape, 3 * shape)
                       + r * C.slice(ph, -1, 2 * shape, 3 * shape))
        return (1 - z) * c + z * dh
    return gru
''',
    "_close_loop": '''\
def _close_loop(delayed, holder, new):
    """Close a recurrence (ForwardDeclaration.resolve_to): the placeholder the delay
    reads becomes the new state, so step t reads the state step t - 1 (t + 1) made."""
    if isinstance(new, C.Function):
        new = new.output
    delayed.replace_placeholders({holder: new})
''',
    "_valid_steps": '''\
def _valid_steps(seq, lengths):
    """1 at the steps of each sequence before its length (IR sequence_lens), else 0:
    the step's 1-based position (a running count closed by past_value) <= length."""
    ones = C.sequence.broadcast_as(C.constant(1, dtype=seq.dtype), seq)
    count = C.placeholder(shape=ones.shape, dynamic_axes=seq.dynamic_axes)
    before = C.sequence.past_value(count, initial_state=C.constant(0, dtype=seq.dtype))
    position = C.plus(before, ones)
    before.replace_placeholders({count: position.output})
    return C.less_equal(position, C.sequence.broadcast_as(lengths, seq))
''',
    "_reversed_sequence": '''\
def _reversed_sequence(seq, name):
    """Each sequence back to front (step t is step L-1-t of its own sequence): CNTK 2.7
    has no negative-stride slice and no gather from a batched tensor, so the steps are
    unpacked ([T, D] per sequence) and multiplied by the mirror matrix J (J[t, s] = 1
    where s = L-1-t), built from each step's position: exact for finite values (a
    product with 0 and 1), O(T^2 D) per sequence; to_sequence_like repacks it."""
    one = C.sequence.broadcast_as(C.constant(1, shape=(1,), dtype=seq.dtype), seq)
    count = C.placeholder(shape=(1,), dynamic_axes=seq.dynamic_axes)
    before = C.sequence.past_value(count, initial_state=C.constant(0, dtype=seq.dtype))
    position = C.plus(before, one)  # 1-based
    before.replace_placeholders({count: position.output})
    steps, mask = C.sequence.unpack(seq, 0, no_mask_output=False).outputs
    length = C.sequence.broadcast_as(C.reduce_sum(mask, axis=0), seq)
    slots = C.reshape(C.sequence.broadcast_as(
        C.sequence.unpack(position, -1, no_mask_output=True), seq), (-1,))
    mirror = C.sequence.unpack(C.equal(slots, C.minus(length, C.minus(position, 1))), 0,
                               no_mask_output=True)
    flat = C.reshape(steps, (-1, int(np.prod(seq.shape))))
    return C.reshape(C.to_sequence_like(C.times(mirror, flat), seq), seq.shape, name=name)
''',
    "_set_params": '''\
def _set_params(w, layer, keys):
    """Give a cntk.layers block (LSTM, GRU, RNNStep) its trained parameters, by name."""
    for param, key in keys:
        getattr(layer, param).value = w._arrays[key]
''',
    "_pooling": '''\
def _pooling(x, kind, window, strides, lower, upper, ceil_out_dim, include_pad, name):
    """cntk.pooling with explicit lower/upper pads (Python axis order, channel first)."""
    f = cntk_py.pooling(x, kind, window, strides, list(reversed(lower)),
                        list(reversed(upper)), ceil_out_dim, include_pad, name)
    f.__class__ = C.Function
    return f
''',
    "_erf": '''\
def _erf(x, name):
    """erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32's tolerance
    here): CNTK 2.7 has no erf.  Odd: the polynomial runs on |x|, the sign is put back."""
    a = C.abs(x)
    t = C.reciprocal(C.plus(1.0, C.element_times(0.3275911, a)))
    p = 1.061405429
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        p = C.plus(c, C.element_times(t, p))
    y = C.minus(1.0, C.element_times(C.element_times(t, p), C.exp(C.negate(C.square(a)))))
    return C.element_times(C.minus(C.greater(x, 0), C.less(x, 0)), y, name=name)
''',
    "_convolution_transpose": '''\
def _convolution_transpose(w, x, strides, lower, upper, output_shape, dilation, name):
    """cntk.convolution_transpose with explicit lower/upper pads (Python axis order)."""
    f = cntk_py.convolution_transpose(w, x, strides, [True], list(reversed(lower)),
                                      list(reversed(upper)), output_shape, dilation, 0, name)
    f.__class__ = C.Function
    return f
''',
}


def _input_line(ctx: EmitContext, name: str) -> str:
    value = ctx.graph.value(name)
    shape = value.shape
    if len(shape) >= 2 and shape[0] is None and shape[1] is None \
            and all(d is not None for d in shape[2:]):
        # [batch, time, ...] with a dynamic time axis: a CNTK sequence
        ctx.sequence.add(name)
        return (f"{ctx.ident(name)} = C.sequence.input_variable({ints(shape[2:])}, "  # type: ignore[arg-type]
                f"dtype=np.{ctx.cntk_dtype(value.dtype)}, name={literal(name)})")
    if any(d is None for d in shape[1:]):
        raise UnsupportedError(
            f"graph input {name!r} {list(shape)}: only the leading (batch) axis may be dynamic "
            "for the CNTK target (or the leading two: batch and time, a CNTK sequence)")
    batched = bool(shape) and shape[0] is None
    static = ints(shape[1:] if batched else shape)  # type: ignore[arg-type]
    axes = "" if batched else ", dynamic_axes=[]"
    dtype = ctx.cntk_dtype(value.dtype)
    return (f"{ctx.ident(name)} = C.input_variable({static}, dtype=np.{dtype}{axes}, "
            f"name={literal(name)})")


def build_code(graph: Graph, **options: object) -> tuple[str, dict[str, np.ndarray]]:
    """The module's source text and the weights it loads (key -> array).

    All nodes are tried; every one the target cannot express is reported in one
    :class:`UnsupportedError`.
    """
    load_handlers()
    infer_shapes(graph)
    # kernels must be static for CNTK's convolution: nodes computed from weights only
    # are computed here (the frontends' passes usually did)
    graph = folded_for_emit(graph)
    for out in graph.outputs:
        if out not in graph.values:
            raise IRError(f"graph output {out!r} is not produced by any node")
    ctx = EmitContext(graph, dict(options))
    for node in graph.nodes:
        if node.op == "MaxRoiPool":
            found = roi_pattern(graph, node)
            if found is not None:
                ctx.roi_inputs[node.name] = found
    # a recognised MaxRoiPool reads (feature map, boxes): its batch-index column is
    # then not computed at all
    live = {n.name for n in usedef.live_nodes(
        graph, lambda node: ctx.roi_inputs.get(node.name, usedef.reads(node)))}
    problems: list[str] = []
    input_lines = []
    for value in graph.inputs:
        try:
            input_lines.append(_input_line(ctx, value.name))
        except UnsupportedError as exc:
            problems.append(str(exc))
    emit_all(ctx, (n for n in graph.nodes if n.name in live), "CNTK", problems,
             on_error=ctx.stand_in)

    w = CodeWriter()
    w.line(f'"""A CNTK 2.7 model generated by mmconv {__version__} from an IR graph.')
    w.line("")
    w.line("Python 3.6 + cntk 2.7.  KitModel(weight_file) returns the cntk Function; the")
    w.line("weights file is the .npy (npz) written beside this module.")
    w.line('"""')
    w.line(f"# graph: {literal(graph.name)}")
    for part in _HEADER.splitlines():
        w.line(part)
    for helper in sorted(ctx.helpers):
        w.line("")
        w.line("")
        for part in _HELPER_SOURCE[helper].splitlines():
            w.line(part)
    w.line("")
    w.line("")
    w.line("def KitModel(weight_file):")
    with w.indent():
        w.line("_w = _Weights(weight_file)")
        if any(v.dtype == "float64" for v in graph.inputs):
            # cntk.layers blocks (LSTM, GRU, RNNStep, Recurrence's initial state) make
            # float32 parameters unless told: a float64 model needs them in float64
            w.line("with C.layers.default_options(dtype=np.float64):")
            with w.indent():
                _kit_body(w, ctx, graph, input_lines)
        else:
            _kit_body(w, ctx, graph, input_lines)
    return w.text(), ctx.weights


def _kit_body(w: CodeWriter, ctx: EmitContext, graph: Graph, input_lines: list[str]) -> None:
    """KitModel's statements after the weights: inputs, nodes, the returned Function."""
    for line in input_lines:
        w.line(line)
    for line in ctx.lines:
        w.line(line)
    outs = []
    for out in graph.outputs:
        if out in graph.weights or any(v.name == out for v in graph.inputs):
            ident = ctx.namer(f"{out}/output")
            w.line(f"{ident} = C.alias({ctx.ref(out)}, name={literal(out)})")
            outs.append(ident)
        else:
            outs.append(ctx.ident(out))
    if len(outs) == 1:
        w.line(f"return {outs[0]}")
    else:
        w.line(f"return C.combine([{', '.join(outs)}])")


def weights_bytes(weights: Mapping[str, np.ndarray]) -> bytes:
    """An npz archive of ``weights`` that is the same bytes for the same arrays
    (:func:`mmconv.ir.serde.write_weights`: fixed timestamps); ``numpy.load`` reads it."""
    buf = io.BytesIO()
    serde.write_weights(buf, {key: np.ascontiguousarray(weights[key]) for key in weights})
    return buf.getvalue()
