"""The state one MXNet emission shares between its op handlers.

Handlers (one module per IR op family, registered in :data:`HANDLERS`) turn an
IR node into MXNet symbol nodes through an :class:`EmitContext`; they never
build JSON.  The context owns:

- the symbol graph (:class:`~.symbol.SymbolGraph`) and which symbol output
  holds each IR value;
- the parameters: each IR weight an operator reads becomes a variable of the
  same name (``arg:NAME`` in the params file, ``aux:NAME`` for BatchNorm's
  moving statistics), laid out for MXNet once, here, at emit time (a CNTK
  ``[C, 1, 1]`` BatchNorm scale is stored as ``[C]``); the same weight in
  another layout is a second variable ``NAME@layout``;
- names: the node computing IR value ``v`` is named ``v`` (so MXNet's
  ``get_internals()`` finds ``v_output``), helper nodes ``<ir node>/<step>``;
  no two symbol nodes share a name.

MXNet binds shapes late: an IR dynamic (batch) axis needs nothing, except in
``Reshape`` targets, where it becomes MXNet's ``0`` (copy) or ``-1`` (infer).
MXNet's legacy operators have no bool tensors: IR bools are carried as 0/1 in
the float dtype (as MXNet's own comparison operators return them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mmconv.dispatch import Registry
from mmconv.emitters.base import EmitContextBase
from mmconv.emitters.mxnet.params import DTYPE_FLAGS, stored_shape
from mmconv.emitters.mxnet.symbol import AttrValue, SymbolGraph, SymNode, shape_attr
from mmconv.ir.core import Graph, Node

#: A handler writes the MXNet nodes of one IR node through the context.
Handler = Callable[["EmitContext", Node], None]

#: IR op name -> handler.  Filled by the family modules of this package.
HANDLERS: Registry[Handler] = Registry("MXNet emit handler")

#: A symbol output: (node index, output index).
Entry = tuple[int, int]

FLOAT_DTYPES = ("float32", "float64", "float16")


class EmitContext(EmitContextBase):
    """Collects the symbol nodes and parameters for one IR graph."""

    handlers = HANDLERS
    target = "MXNet 1.9 target"

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.sym = SymbolGraph()
        #: parameter name -> array, as the params file stores it
        self.args: dict[str, np.ndarray] = {}
        self.auxs: dict[str, np.ndarray] = {}
        self.entries: dict[str, Entry] = {}
        self._vars: dict[tuple[str, str], Entry] = {}
        #: names no helper node may take: IR values and nodes, then every symbol node
        self._taken_names = set(graph.values) | {n.name for n in graph.nodes}
        self.float_dtype = next((v.dtype for v in graph.values.values()
                                 if v.dtype in FLOAT_DTYPES), "float32")

    # -- names --------------------------------------------------------------------
    def helper_name(self, hint: str) -> str:
        return self.fresh(f"{self._node.name}/{hint}" if self._node is not None else hint)

    # -- variables ------------------------------------------------------------------
    def mx_dtype(self, ir_dtype: str) -> str:
        """The dtype MXNet carries an IR dtype in (bool as the float dtype)."""
        if ir_dtype in DTYPE_FLAGS:
            return ir_dtype
        if ir_dtype == "bool":
            return self.float_dtype
        if ir_dtype in ("int16", "uint16", "uint32", "uint64"):
            return "int64" if ir_dtype != "int16" else "int32"
        raise self.unsupported(None, f"MXNet has no dtype {ir_dtype}")

    def variable(self, name: str, array: np.ndarray | None = None, *, aux: bool = False) -> Entry:
        """A ``null`` node: a graph input (``array`` None) or a parameter holding ``array``."""
        attrs: dict[str, AttrValue] = {}
        if array is not None:
            array = np.ascontiguousarray(array, dtype=self.mx_dtype(array.dtype.name))
            attrs["__shape__"] = shape_attr(stored_shape(array.shape))
            attrs["__dtype__"] = str(DTYPE_FLAGS[array.dtype.name])
            (self.auxs if aux else self.args)[name] = array
        self._taken_names.add(name)
        idx = self.sym.add(SymNode("null", name, attrs=attrs))
        return (idx, 0)

    def param(self, name: str, transform: Callable[[np.ndarray], np.ndarray] | None = None,
              layout: str = "ir", *, aux: bool = False) -> Entry:
        """IR weight ``name`` as a parameter variable (laid out by ``transform``).

        The variable is named after the weight for its first layout and
        ``name@layout`` for any other, so users find ``conv1/W`` in the params file.
        """
        key = (name, layout)
        if key in self._vars:
            return self._vars[key]
        array = self.graph.weights[name]
        if transform is not None:
            array = transform(array)
        var = name if not any(k[0] == name for k in self._vars) else f"{name}@{layout}"
        if var in self.args or var in self.auxs or (var != name and var in self._taken_names):
            var = self.fresh(var)
        entry = self.variable(var, array, aux=aux)
        self._vars[key] = entry
        return entry

    def new_param(self, array: np.ndarray, hint: str) -> Entry:
        """A parameter the emitter made (not an IR weight), named ``<ir node>/<hint>``."""
        return self.variable(self.helper_name(hint), np.asarray(array))

    # -- values -----------------------------------------------------------------------
    def value_node_name(self, out: str) -> str:
        """The name of the node computing IR value ``out``: the value's own (IR value
        names are unique and reserved from the start); a loop body's are renamed."""
        return out

    def is_weight(self, name: str) -> bool:
        return name in self.graph.weights

    def input(self, name: str) -> Entry:
        """The symbol output holding IR value ``name`` (a weight becomes its variable)."""
        if name in self.entries:
            return self.entries[name]
        if self.is_weight(name):
            return self.param(name)
        raise self.unsupported(None, f"input {name!r} was not emitted")

    def op(self, op: str, inputs: Sequence[Entry], hint: str | None = None, *,
           out: str | None = None, num_outputs: int = 1, **attrs: AttrValue) -> Entry:
        """Add an operator node; returns its first output.

        With ``out`` the node computes IR value ``out`` and is named after it;
        otherwise it is a helper named ``<ir node>/<hint or op>``.
        """
        name = self.value_node_name(out) if out is not None else self.helper_name(hint or op)
        idx = self.sym.add(SymNode(op, name, list(inputs),
                                   {k: v for k, v in attrs.items() if v is not None},
                                   num_outputs))
        entry = (idx, 0)
        if out is not None:
            self.entries[out] = entry
        return entry

    def emit_op(self, node: Node, op: str, inputs: Sequence[Entry], **attrs: AttrValue
                ) -> Entry:
        """The node's last step: an operator computing the node's (first) output."""
        return self.op(op, inputs, out=node.outputs[0], **attrs)

    def alias(self, node: Node, entry: Entry) -> None:
        """The node's output is ``entry`` as it is (an identity in MXNet terms)."""
        self.emit_op(node, "identity", [entry])

    # -- shape helpers --------------------------------------------------------------------
    def static_shape(self, name: str) -> tuple[int, ...]:
        shape = self.shape(name)
        if any(d is None for d in shape):
            raise self.unsupported(None, f"value {name!r} needs a static shape here, it has "
                                   f"{list(shape)}")
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]

    def reshape_target(self, like: str, target: Sequence[int | None]) -> tuple[int, ...]:
        """MXNet ``Reshape`` ``shape`` for IR shape ``target`` from IR value ``like``.

        Static dims are written as they are; a dynamic dim becomes ``0`` (copy the
        input's dim) when it sits where ``like`` has the same dynamic dim, or ``-1``
        (infer) for at most one other.
        """
        src = self.shape(like)
        out: list[int] = []
        infer = 0
        for i, d in enumerate(target):
            if d is not None:
                out.append(int(d))
            elif i < len(src) and src[i] is None and i == 0:
                out.append(0)
            else:
                infer += 1
                out.append(-1)
        if infer > 1:
            raise self.unsupported(None, f"reshape to {list(target)}: more than one dynamic axis "
                                   "that is not the batch axis")
        if 0 in [int(d) for d in target if d is not None]:
            raise self.unsupported(None, "reshape to an empty shape (MXNet reads 0 as 'copy')")
        return tuple(out)

    def reshape(self, entry: Entry, like: str, target: Sequence[int | None],
                hint: str = "reshape") -> Entry:
        return self.op("Reshape", [entry], hint, shape=self.reshape_target(like, target))

    def full_rank(self, name: str, rank: int, hint: str = "rank") -> Entry:
        """IR value ``name`` with leading 1s up to ``rank`` (numpy broadcasting made explicit):
        a weight stored so, a computed value through ``Reshape``."""
        shape = self.shape(name)
        if len(shape) >= rank:
            return self.input(name)
        lead = (1,) * (rank - len(shape))
        if self.is_weight(name):
            full = lead + tuple(int(d) for d in shape)  # type: ignore[arg-type]
            return self.param(name, lambda a: a.reshape(full), f"rank{rank}")
        return self.reshape(self.input(name), name, (*lead, *shape), hint)
