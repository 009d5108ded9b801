"""The state one Keras code emission shares between its op handlers.

Keras is channels-last, the IR channels-first.  Instead of wrapping ops in
transposes, the context keeps a *layout* per IR value: how the Keras tensor
holding it is arranged relative to the IR tensor.

- a permutation ``perm`` (a tuple): the Keras tensor is ``ir.transpose(perm)``.
  ``()``-free identity is "plain"; ``(0, 2, ..., r-1, 1)`` is channels-last (CL).
- :class:`Flat`: a rank-2 ``[N, F]`` tensor that is the Flatten of a permuted
  tensor; Keras column ``k`` holds IR column ``index[k]``.  A Dense reading it
  permutes its weight rows at emit time instead of transposing before Flatten.

Handlers ask for an input in the layout they need (:meth:`EmitContext.get`);
only when a value is not already there is a transpose written, and every such
transpose is recorded in :attr:`EmitContext.transposes` (kind ``input``,
``output`` or ``internal``) so tests can assert where they are.  Weights are
rearranged for the target once, here, at emit time.

Names: every identifier comes from one :class:`~mmconv.emitters.codegen.Namer`
and doubles as the Keras layer name; model strings enter code via ``literal``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmconv.dispatch import Registry
from mmconv.emitters.base import EmitContextBase
from mmconv.emitters.codegen import CodeWriter, Namer, literal
from mmconv.ir.core import Graph, Node

#: A handler writes the Keras code of one IR node through the context.
Handler = Callable[["EmitContext", Node], None]

#: IR op name -> handler.  Filled by the family modules of this package.
HANDLERS: Registry[Handler] = Registry("Keras emit handler")

#: Names the generated module defines or imports; IR names never shadow them.
TAKEN = frozenset({"keras", "layers", "ops", "np", "load_weights", "weights", "KitModel",
                   "model", "weight_file",
                   # the custom cells' module-level names (.cells, pasted in when used)
                   "OnnxRecurrentCell", "ScanCell", "_onnx_activation", "_size"})

#: Snake-case names Keras gives the ``keras.ops`` operations the handlers call
#: (``ops.add`` -> ``add``, ``add_1``...).  Keras refuses two operations of one
#: name in a model, so no layer we name may look like one of these.
AUTO_NAMES = frozenset({
    "abs", "add", "argmax", "argmin", "cast", "ceil", "clip", "concatenate", "cumsum",
    "divide", "equal", "exp", "expand_dims", "flip", "floor", "get_item", "greater",
    "greater_equal", "less", "less_equal", "log", "log_softmax", "logical_not", "logsumexp",
    "max", "maximum", "mean", "min", "minimum", "multiply", "negative", "not_equal",
    "one_hot", "pad", "power", "prod", "repeat", "reshape", "round", "sign", "sqrt",
    "square", "squeeze", "subtract", "sum", "take", "transpose", "true_divide", "where", "matmul",
    "input_layer", "sigmoid", "relu", "softmax", "stack", "logical_and", "logical_or",
})
_AUTO = re.compile(r"(?:{})(?:_\d+)?".format("|".join(sorted(AUTO_NAMES, key=len, reverse=True))))


#: Ops that need their (first) input channels-last when it is a feature map.
SPATIAL = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                     "GlobalMaxPool", "LRN", "BatchNormalization", "MaxRoiPool",
                     "InstanceNormalization", "Resize", "DepthToSpace", "SpaceToDepth"})
#: Ops that work in any layout (their axes are remapped): a feature map flowing
#: through them into a SPATIAL op is made channels-last before them, so a Pad or
#: Relu in front of the first conv does not force a transpose after it.
TRANSPARENT = frozenset({
    "Abs", "Add", "Cast", "Ceil", "Clip", "Concat", "Div", "Elu", "Equal", "Exp", "Floor",
    "Greater", "GreaterOrEqual", "HardSigmoid", "Hardmax", "Identity", "LeakyRelu", "Less",
    "LessOrEqual", "Log", "LogSoftmax", "Max", "Min", "Mul", "Neg", "Not", "PRelu", "Pad",
    "Pow", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Slice", "Softmax",
    "Softplus", "Sqrt", "Sub", "Tanh", "Where",
    "Erf", "Sin", "Cos", "Gelu", "HardSwish", "Softsign", "Mish", "Mod", "And", "Or", "Xor"})


def wants_channels_last(graph: Graph) -> set[str]:
    """Values best held channels-last: inputs of SPATIAL ops, and (backwards) the
    same-rank inputs of TRANSPARENT ops whose output is best channels-last."""
    wants: set[str] = set()
    for node in reversed(graph.nodes):
        rank = graph.value(node.outputs[0]).rank
        if node.op in SPATIAL and graph.value(node.inputs[0]).rank >= 3:
            wants.add(node.inputs[0])
        elif node.op in TRANSPARENT and node.outputs[0] in wants:
            wants.update(v for v in node.inputs
                         if v and v not in graph.weights and graph.value(v).rank == rank)
    return wants


@dataclass(frozen=True)
class Flat:
    """A flattened permuted value: Keras column k is IR column ``index[k]``."""

    index: tuple[int, ...]
    #: the IR value that was flattened (to rebuild the plain form if needed)
    source: str


Layout = tuple[int, ...] | Flat


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def channels_last(rank: int) -> tuple[int, ...]:
    """IR (channels-first) -> Keras channels-last: (0, 2, 3, ..., 1); identity below rank 3."""
    return (0, *range(2, rank), 1) if rank >= 3 else identity(rank)


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def compose(have: Sequence[int], want: Sequence[int]) -> tuple[int, ...]:
    """The transpose taking a tensor in layout ``have`` to layout ``want``."""
    inv = inverse(have)
    return tuple(inv[w] for w in want)


@dataclass
class Transpose:
    """A transpose the emitter wrote (not one the IR asked for)."""

    kind: str  # "input", "output" or "internal"
    value: str
    perm: tuple[int, ...]


@dataclass
class EmitContext(EmitContextBase):
    """Collects generated lines, weights and layouts for one IR graph."""

    handlers = HANDLERS
    target = "Keras target"

    graph: Graph
    nhwc_io: bool = False
    writer: CodeWriter = field(default_factory=CodeWriter)
    #: arrays for the weights file, by key (Keras layout)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: (layer name, [weight keys]) in set_weights order
    layer_weights: list[tuple[str, list[str]]] = field(default_factory=list)
    transposes: list[Transpose] = field(default_factory=list)
    #: whether the code uses a custom cell of :mod:`.cells` (its source is pasted in)
    uses_cells: bool = False

    def __post_init__(self) -> None:
        self.namer = Namer("v", taken=TAKEN)
        self._var: dict[str, str] = {}
        self._layout: dict[str, Layout] = {}
        self._cache: dict[tuple[str, Layout], str] = {}
        self._inputs = {v.name for v in self.graph.inputs}
        self.wants_cl = wants_channels_last(self.graph)

    def nested(self, graph: Graph) -> EmitContext:
        """A context for a loop body's functional model: its own values, layouts and
        name space (a body value may be named like an outer one), the same code and
        weights file, identifiers unique across both (no Python name is reassigned)."""
        sub = EmitContext(graph, writer=self.writer, arrays=self.arrays)
        sub.namer = self.namer.scope()
        return sub

    # -- the IR side -----------------------------------------------------------
    def need_weight(self, node: Node, name: str, what: str) -> np.ndarray:
        array = self.weight(name)
        if array is None:
            raise self.unsupported(node, f"{what} must be a weight, not computed at run time")
        return array

    def static(self, node: Node, name: str) -> tuple[int, ...]:
        """The shape of ``name`` without its batch axis; all of it must be static."""
        dims = self.shape(name)[1:]
        if any(d is None for d in dims):
            raise self.unsupported(node, f"{name!r} needs static non-batch dims, has {dims}")
        return tuple(int(d) for d in dims)  # type: ignore[arg-type]

    # -- names -----------------------------------------------------------------
    def ident(self, name: str) -> str:
        """A fresh identifier for a source name, also usable as a Keras layer name."""
        ident = self.namer(name)
        suffix = 0
        while _AUTO.fullmatch(ident):
            suffix += 1
            ident = self.namer(f"{name} layer{suffix if suffix > 1 else ''}")
        return ident

    def var(self, value: str) -> str:
        """The identifier of an IR value (as it is held now)."""
        if value not in self._var and value in self.graph.weights and self._node is not None:
            # a node reading weights only that the emit-time fold could not compute
            raise self.unsupported(self._node, f"input {value!r} is a weight and this op "
                                   "cannot be computed from weights alone here")
        return self._var[value]

    def held_values(self) -> dict[str, tuple[str, Layout]]:
        """IR value -> (identifier = Keras layer name, layout) for every value written."""
        return {v: (ident, self.layout(v)) for v, ident in self._var.items() if ident != "None"}

    def layout(self, value: str) -> Layout:
        if value in self._layout:
            return self._layout[value]
        return identity(self.rank(value))

    # -- writing -----------------------------------------------------------------
    def line(self, text: str) -> None:
        self.writer.line(text)

    def stand_in(self, node: Node) -> None:
        """After a node failed: a placeholder for its outputs, so later nodes are checked too."""
        for out in node.outputs:
            self._var[out] = "None"

    def dtype_kw(self, value: str) -> str:
        """``, dtype='float64'`` for layers on non-float32 floats (Keras would cast to
        float32 otherwise), else nothing."""
        dt = self.dtype(value)
        return f", dtype={literal(dt)}" if dt in ("float64", "float16") else ""

    def out(self, node: Node, index: int = 0) -> str:
        """The identifier (and layer name) of ``node``'s output ``index``."""
        value = node.outputs[index]
        if value not in self._var:
            self._var[value] = self.ident(value)
        return self._var[value]

    def define(self, node: Node, expr: str, layout: Layout, index: int = 0) -> str:
        """Write ``<output> = <expr>`` and record the output's layout."""
        ident = self.out(node, index)
        self.line(f"{ident} = {expr}")
        self._layout[node.outputs[index]] = layout
        return ident

    def alias(self, node: Node, source_var: str, layout: Layout) -> None:
        """The node's output is an existing Keras tensor (an op folded into the layout)."""
        self._var[node.outputs[0]] = source_var
        self._layout[node.outputs[0]] = layout

    def declare_input(self, value: str, layout: tuple[int, ...]) -> str:
        ident = self.ident(value)
        self._var[value] = ident
        self._layout[value] = layout
        return ident

    def const(self, array: np.ndarray, hint: str) -> str:
        """Store a constant in the weights file; returns the expression reading it."""
        base = self.out(self._node) if self._node is not None else "const"
        key = f"{base}/{hint}"
        i = 1
        while key in self.arrays:
            i += 1
            key = f"{base}/{hint}_{i}"
        self.arrays[key] = np.ascontiguousarray(array)
        return f"weights[{literal(key)}]"

    def set_weights(self, layer: str, params: Sequence[tuple[str, np.ndarray]]) -> None:
        """Weights of a named layer, in the order its ``set_weights`` takes them."""
        keys = []
        for param, array in params:
            key = f"{layer}/{param}"
            self.arrays[key] = np.ascontiguousarray(array)
            keys.append(key)
        self.layer_weights.append((layer, keys))

    # -- layouts -------------------------------------------------------------------
    def get(self, value: str, want: tuple[int, ...], kind: str | None = None) -> str:
        """An expression for ``value`` in layout ``want``, writing a transpose if needed.

        A weight becomes a constant already in that layout (no run-time work).
        """
        array = self.weight(value)
        if array is not None:
            return self.const(array.transpose(want) if array.ndim else array, "value")
        have = self.layout(value)
        if have == want:
            return self._var[value]
        key = (value, want)
        if key in self._cache:
            return self._cache[key]
        if isinstance(have, Flat):
            src = self.get(have.source, identity(self.rank(have.source)), kind)
            ident = self.ident(f"{value}_flat")
            self.line(f"{ident} = layers.Flatten(name={literal(ident)}"
                      f"{self.dtype_kw(value)})({src})")
            self._cache[key] = ident
            return self.get(value, want, kind) if want != identity(2) else ident
        perm = compose(have, want)
        if kind is None:
            kind = "input" if value in self._inputs else "internal"
        tag = {channels_last(len(want)): "nhwc", identity(len(want)): "nchw"}.get(want, "perm")
        ident = self.ident(f"{value}_{tag}")
        if perm[0] == 0:
            dims = tuple(p for p in perm[1:])
            self.line(f"{ident} = layers.Permute({literal(dims)}, name={literal(ident)}"
                      f"{self.dtype_kw(value)})({self._var[value]})  # layout: {kind} transpose")
        else:
            self.line(f"{ident} = ops.transpose({self._var[value]}, {literal(perm)})"
                      f"  # layout: {kind} transpose")
        self.transposes.append(Transpose(kind, value, perm))
        self._cache[key] = ident
        return ident

    def plain(self, value: str) -> str:
        return self.get(value, identity(self.rank(value)))

    def cl(self, value: str) -> str:
        return self.get(value, channels_last(self.rank(value)))

    def perm_of(self, value: str) -> tuple[int, ...]:
        """The value's layout as a permutation (a Flat value is materialized first)."""
        layout = self.layout(value)
        if isinstance(layout, Flat):
            self._var[value] = self.plain(value)
            self._layout[value] = identity(2)
            return identity(2)
        return layout

    def runtime(self, value: str) -> bool:
        return bool(value) and value not in self.graph.weights

    def in_layout(self, array: np.ndarray, layout: Layout, rank: int) -> np.ndarray:
        """A constant operand (IR layout, broadcastable to rank ``rank``) in ``layout``."""
        if isinstance(layout, Flat):
            if array.ndim and array.shape[-1] == len(layout.index) > 1:
                return array[..., list(layout.index)]
            return array
        if layout == identity(rank) or array.ndim == 0:
            return array
        full = array.reshape((1,) * (rank - array.ndim) + array.shape)
        return full.transpose(layout)

    def axis(self, value: str, axis: int) -> int:
        """Where IR axis ``axis`` of ``value`` sits in its Keras tensor (non-negative)."""
        rank = self.rank(value)
        axis = axis + rank if axis < 0 else axis
        layout = self.perm_of(value)
        return layout.index(axis)

    def _prefer_channels_last(self, value: str) -> None:
        """Re-home a plain feature map as channels-last (its plain form stays cached)."""
        if value not in self.wants_cl or not self.runtime(value):
            return
        rank = self.rank(value)
        if rank < 3 or self.layout(value) != identity(rank):
            return
        old = self._var[value]
        new = self.cl(value)
        self._cache[(value, identity(rank))] = old
        self._var[value], self._layout[value] = new, channels_last(rank)

    # -- dispatch --------------------------------------------------------------------
    def emit(self, node: Node) -> None:
        """Run the node's handler, first re-homing inputs a channels-last trunk wants."""
        handler = self.handler(node)
        self._node = node
        if node.op in TRANSPARENT and node.outputs[0] in self.wants_cl:
            for v in node.inputs:
                self._prefer_channels_last(v)
        try:
            handler(self, node)
        finally:
            self._node = None


def tuple_or_int(values: Sequence[int]) -> str:
    """Keras takes a tuple per spatial axis; written as a literal tuple."""
    return literal(tuple(int(v) for v in values))


def operands(ctx: EmitContext, node: Node, inputs: Sequence[str]) -> tuple[list[str], Layout]:
    """Expressions for the operands of a broadcasting op and the output's layout.

    Runtime operands that share a layout keep it (a Relu or Add inside a
    channels-last trunk stays there); otherwise the first permuted full-rank
    operand sets the layout and the others are brought to it.  Weight operands
    are rearranged at emit time.
    """
    out_rank = ctx.rank(node.outputs[0])
    runtime = [v for v in inputs if ctx.runtime(v)]
    layouts = {ctx.layout(v) for v in runtime}
    target: Layout
    if len(layouts) == 1 and all(ctx.rank(v) == out_rank for v in runtime):
        target = layouts.pop()
    else:
        target = identity(out_rank)
        for v in runtime:
            layout = ctx.layout(v)
            if ctx.rank(v) == out_rank and not isinstance(layout, Flat) \
                    and layout != identity(out_rank):
                target = layout
                break
    exprs = []
    for v in inputs:
        array = ctx.weight(v)
        if array is not None:
            exprs.append(ctx.const(ctx.in_layout(array, target, out_rank), "value"))
        elif isinstance(target, Flat) or ctx.rank(v) == out_rank:
            exprs.append(ctx.var(v) if ctx.layout(v) == target else ctx.get(v, target))  # type: ignore[arg-type]
        elif target == identity(out_rank):
            exprs.append(ctx.plain(v))
        else:
            dims = ctx.shape(v)
            if any(d is None for d in dims):
                raise ctx.unsupported(node, f"cannot broadcast {v!r} of shape {dims} into a "
                                            "permuted layout")
            full = (1,) * (out_rank - len(dims)) + tuple(int(d) for d in dims)  # type: ignore[arg-type]
            ident = ctx.ident(f"{v}_expanded")
            ctx.line(f"{ident} = ops.transpose(ops.reshape({ctx.plain(v)}, {literal(full)}), "
                     f"{literal(target)})  # layout: internal transpose")
            ctx.transposes.append(Transpose("internal", v, target))  # type: ignore[arg-type]
            exprs.append(ident)
    return exprs, target
