"""The state one CNTK code emission shares between its op handlers.

Handlers (one module per IR op family, registered in :data:`HANDLERS`) turn an
IR node into one line of CNTK 2.7 Python (``conv1 = C.convolution(...)``)
through an :class:`EmitContext`, which owns:

- identifiers (only from :class:`~mmconv.emitters.codegen.Namer`) and string
  literals (only from :func:`~mmconv.emitters.codegen.literal`);
- the weights file: IR weights laid out for CNTK once, here, at emit time
  (a Dense weight is stored transposed for ``times``; nothing is transposed
  at run time);
- the batch axis.  CNTK keeps the batch as a *dynamic* axis outside a
  variable's shape: an IR value ``[None, 3, 32, 32]`` is a CNTK variable of
  shape ``(3, 32, 32)`` with the batch axis.  So every IR axis number of a
  batched value is one more than CNTK's static axis number, and an op that
  would work across the batch (reduce over axis 0, a concat along it) has no
  CNTK spelling and is refused with the node's name.

Sequences: an IR value ``[None, None, ...]`` whose time axis (1) is dynamic is a CNTK
*sequence* (batch and sequence axes both dynamic, outside the shape): a graph input
of that shape becomes ``C.sequence.input_variable`` (feed it ``[N, T, ...]`` arrays
of equal-length sequences), a recurrent layer's Y is one.  For those values IR
axes 0 and 1 are dynamic and static axis numbers are two less.

CNTK has no integer or bool tensors: IR values of those dtypes are carried as
floats (0/1 for bool, exact integers up to 2**24 in float32).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mmconv.dispatch import Registry
from mmconv.emitters.base import EmitContextBase, norm_axis
from mmconv.emitters.codegen import Namer, literal
from mmconv.ir.core import Graph, Node

#: A handler writes the CNTK code of one IR node through the context.
Handler = Callable[["EmitContext", Node], None]

#: IR op name -> handler.  Filled by the family modules of this package.
HANDLERS: Registry[Handler] = Registry("CNTK emit handler")

#: numpy dtype names CNTK 2.7 computes in.
FLOAT_DTYPES = ("float32", "float64", "float16")

class EmitContext(EmitContextBase):
    """Collects the lines of ``KitModel`` and the weights for one IR graph."""

    handlers = HANDLERS
    target = "CNTK 2.7 target"
    #: True in a loop body's context: values there are one step of a sequence
    in_loop = False

    def __init__(self, graph: Graph, options: dict[str, Any] | None = None) -> None:
        self.graph = graph
        self.options = dict(options or {})
        self.lines: list[str] = []
        #: weights file content: key -> array in the layout the code uses
        self.weights: dict[str, np.ndarray] = {}
        #: helper functions the code needs (defined in the generated module when used)
        self.helpers: set[str] = set()
        self.namer = Namer("v")
        self._batched: dict[str, bool] = {}
        #: values with CNTK's sequence axis too (IR axis 1, dynamic time)
        self.sequence: set[str] = set()
        self._idents: dict[str, str] = {}
        self._weight_keys: dict[tuple[str, str], str] = {}
        #: MaxRoiPool nodes whose boxes map back to CNTK's per-sample form: (x, boxes)
        self.roi_inputs: dict[str, tuple[str, str]] = {}
        #: values whose IR axis 0 is batch x R while CNTK holds (R, ...) per sample
        self.folded: set[str] = set()
        self.float_dtype = next((v.dtype for v in graph.values.values()
                                 if v.dtype in FLOAT_DTYPES), "float32")
        for value in graph.inputs:
            self._batched[value.name] = bool(value.shape) and value.shape[0] is None

    def nested(self, graph: Graph) -> EmitContext:
        """A context for a loop body (IR ``Scan``): ``graph`` is the body with the outer
        weights, its values get their own identifiers and batch/sequence marks (a body may
        reuse an outer value's name) while the code lines, the weights file, the helpers
        and the identifier namer stay this context's, so the body's nodes are emitted by
        the same handlers into the same module."""
        child = EmitContext(graph, self.options)
        child.lines, child.weights, child.helpers = self.lines, self.weights, self.helpers
        child.namer, child._weight_keys = self.namer, self._weight_keys
        child.float_dtype = self.float_dtype
        child.in_loop = True
        return child

    def bind(self, name: str, ident: str, batched: bool = True) -> None:
        """Make IR value ``name`` the existing Python identifier ``ident`` (a body input)."""
        self._idents[name] = ident
        self._batched[name] = batched

    # -- the IR side ------------------------------------------------------------
    def is_weight(self, name: str) -> bool:
        return name in self.graph.weights

    def batched(self, name: str) -> bool:
        """True when the value carries CNTK's dynamic batch axis (IR axis 0 is None)."""
        return self._batched.get(name, False)

    def sample_shape(self, name: str) -> tuple[int, ...]:
        """The CNTK (static) shape: the IR shape without the batch (and sequence) axis."""
        lead = 2 if name in self.sequence else 1 if self.batched(name) else 0
        shape = self.shape(name)[lead:]
        if any(d is None for d in shape):
            raise self.unsupported(None, f"value {name!r} has a dynamic axis other than the batch "
                                   f"(shape {list(self.shape(name))})")
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]

    def cntk_dtype(self, ir_dtype: str) -> str:
        """The dtype CNTK computes a value of ``ir_dtype`` in (ints and bools as floats)."""
        return ir_dtype if ir_dtype in FLOAT_DTYPES else self.float_dtype

    def axis(self, name: str, ir_axis: int) -> int:
        """CNTK's static axis for IR axis ``ir_axis`` of value ``name``; refuses the batch."""
        try:
            ir_axis = norm_axis(ir_axis, self.rank(name))
        except ValueError as exc:
            raise self.unsupported(None, str(exc)) from None
        if name in self.sequence:
            if ir_axis < 2:
                raise self.unsupported(None, "it works along the batch or sequence axis, which "
                                       "are dynamic in CNTK (a CNTK op sees one step at a time)")
            return ir_axis - 2
        if self.batched(name):
            if ir_axis == 0:
                raise self.unsupported(None, "it works along the batch axis, which is dynamic in "
                                       "CNTK (a CNTK op sees one sample at a time)")
            return ir_axis - 1
        return ir_axis

    # -- generated names ----------------------------------------------------------
    def ident(self, value: str) -> str:
        """The Python identifier holding IR value ``value`` (sanitized, unique, stable)."""
        if value not in self._idents:
            self._idents[value] = self.namer(value)
        return self._idents[value]

    def temp(self, hint: str) -> str:
        """A fresh identifier for a helper value of the current node: ``<node>_<hint>``."""
        base = self._node.name if self._node is not None else "mmconv"
        return self.namer(f"{base}/{hint}/{len(self.lines)}")

    def ref(self, name: str) -> str:
        """A Python expression for IR value ``name``: its variable, or its weight as a Constant."""
        if name in self.folded and (self._node is None or self._node.op != "Reshape"):
            raise self.unsupported(None, f"it reads {name!r}, ROI-pooled boxes of all samples in "
                                   "one axis; only a Reshape back to [N, R, ...] can")
        if self.is_weight(name):
            return self.const(name)
        return self.ident(name)

    # -- weights ------------------------------------------------------------------
    def _store(self, name: str, array: np.ndarray, layout: str) -> str:
        """Record ``array`` (IR weight ``name`` in ``layout``) in the weights file; its key.

        The key is the IR weight name for the first layout it is used in (so users
        find ``conv1/W`` in the weights file and the model) and ``name@layout`` for
        any other.
        """
        key = self._weight_keys.get((name, layout))
        if key is None:
            key = name if name not in self.weights else f"{name}@{layout}"
            i = 2
            while key in self.weights:
                key = f"{name}@{layout}{i}"
                i += 1
            self._weight_keys[(name, layout)] = key
            dtype = self.cntk_dtype(array.dtype.name)
            self.weights[key] = np.ascontiguousarray(array, dtype=dtype)
        return key

    def param(self, name: str, transform: Callable[[np.ndarray], np.ndarray] | None = None,
              layout: str = "ir") -> str:
        """A trainable ``C.parameter`` for IR weight ``name`` (laid out by ``transform``)."""
        array = self.graph.weights[name]
        key = self._store(name, transform(array) if transform else array, layout)
        return f"_w.param({literal(key)})"

    def const(self, name: str, transform: Callable[[np.ndarray], np.ndarray] | None = None,
              layout: str = "ir") -> str:
        """A ``C.constant`` for IR weight ``name`` (BN statistics, fixed operands)."""
        array = self.graph.weights[name]
        key = self._store(name, transform(array) if transform else array, layout)
        return f"_w.const({literal(key)})"

    def new_const(self, array: np.ndarray, hint: str) -> str:
        """A constant the emitter made (not an IR weight), stored as ``<node>/<hint>``."""
        base = self._node.name if self._node is not None else "mmconv"
        key = f"{base}/{hint}"
        i = 2
        while key in self.weights or key in self.graph.weights:
            key = f"{base}/{hint}{i}"
            i += 1
        self._weight_keys[(key, "new")] = key
        self.weights[key] = np.ascontiguousarray(array)
        return f"_w.const({literal(key)})"

    def operand(self, name: str, other: str, trainable: bool = False) -> str:
        """``name`` as an operand of a broadcasting op whose other operand is ``other``.

        When ``other`` is batched and ``name`` is not but has the full IR rank, its
        leading axis lines up with the batch: it must be 1 and is dropped (stored so
        for a weight, a reshape otherwise), since CNTK broadcasts a batch-less
        operand over the batch by itself.  A weight becomes a Constant, or a
        Parameter when ``trainable``.
        """
        make = self.param if trainable else self.const
        if self.batched(other) and not self.batched(name) and self.rank(name) >= self.rank(other):
            lead = self.rank(name) - self.rank(other) + 1
            shape = self.shape(name)
            if any(d != 1 for d in shape[:lead]):
                raise self.unsupported(None, f"operand {name!r} {list(shape)} varies along the "
                                       "batch axis")
            rest = tuple(int(d) for d in shape[lead:])  # type: ignore[arg-type]
            if self.is_weight(name):
                return make(name, lambda a: a.reshape(rest), f"drop{lead}")
            return f"C.reshape({self.ref(name)}, {literal(rest)})"
        return make(name) if self.is_weight(name) else self.ref(name)

    # -- output -------------------------------------------------------------------
    def assign(self, node: Node, expr: str, out: str | None = None,
               batched: bool | None = None, sequence: bool | None = None) -> str:
        """Write ``<ident of out> = expr`` (one line per layer); returns the identifier.

        The output is batched (a sequence) when an input is, unless told otherwise."""
        out = out if out is not None else node.outputs[0]
        if batched is None:
            batched = any(self.batched(i) for i in node.inputs if i)
        if sequence is None:
            sequence = any(i in self.sequence for i in node.inputs if i)
        if sequence:
            self.sequence.add(out)
        self._batched[out] = batched
        ident = self.ident(out)
        self.lines.append(f"{ident} = {expr}")
        return ident

    def stand_in(self, node: Node) -> None:
        """A failed node's outputs marked batched as the IR says, so its consumers are
        still checked (and see the batch axis) without repeating its error."""
        for out in node.outputs:
            if out:
                shape = self.shape(out)
                self._batched[out] = bool(shape) and shape[0] is None

    def let(self, expr: str, hint: str) -> str:
        """A helper line ``<node>_<hint> = expr`` inside a multi-line layer; its identifier."""
        ident = self.temp(hint)
        self.lines.append(f"{ident} = {expr}")
        return ident

    def name_kw(self, node: Node, out: str | None = None) -> str:
        """``name='...'`` for the CNTK function computing ``out`` (default: the node's output)."""
        return f"name={literal(out if out is not None else node.outputs[0])}"


def ints(values: Sequence[int]) -> str:
    """A tuple literal of ints (always a tuple, ``(3,)`` for one)."""
    return literal(tuple(int(v) for v in values))
