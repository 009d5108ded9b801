"""The in-memory IR: plain Python classes, no protobuf and no framework.

A :class:`Graph` holds named :class:`Value` s (graph inputs, weights, node
outputs) and :class:`Node` s that consume and produce them by name.  Layout is
canonical channels-first (NCHW activations, OIHW kernels, ``[out, in]`` dense
weights).  Nodes are checked against the op registry as they are added, so an
unknown op or attribute fails where it is created, not later in an emitter.
Serialization lives in :mod:`mmconv.ir.serde`.

Core is the bottom of the IR: it imports nothing else of :mod:`mmconv.ir` but
the use-def helpers.  The op registry depends on core (its schemas describe
:class:`Node` s), so the two rules core applies without owning them -- checking a
node and an attribute's default -- are handed to it by :mod:`mmconv.ir.registry`
when that is imported (:func:`bind_op_rules`; importing :mod:`mmconv.ir` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmconv.errors import IRError
from mmconv.ir import usedef

#: IR dtypes, by numpy name.  The order is irrelevant; the names are the API.
DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "bool")

#: A dimension: a non-negative size, or ``None`` where it is dynamic (batch).
Dim = int | None
Shape = tuple[Dim, ...]

#: Attribute values: int, float, str, bool, a tuple of ints, floats or strs, or a
#: :class:`Graph` (a loop body, attribute type "graph"; defined below the class).


@dataclass(frozen=True)
class OpRules:
    """What core needs from the op registry: node checking and attribute defaults."""

    check_node: Callable[[Node], None]
    attr_default: Callable[[str, str], Any]


_RULES: OpRules | None = None


def bind_op_rules(rules: OpRules) -> None:
    """Called once by :mod:`mmconv.ir.registry` on import (see the module docstring)."""
    global _RULES
    _RULES = rules


def _rules() -> OpRules:
    if _RULES is None:  # only if someone imported core without the mmconv.ir package
        raise IRError("the IR op registry is not loaded: import mmconv.ir first")
    return _RULES


@dataclass(frozen=True)
class Value:
    """A named tensor of the graph with its dtype and static shape."""

    name: str
    dtype: str
    shape: Shape

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise IRError(f"value {self.name!r}: unknown dtype {self.dtype!r}")

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Node:
    """One operation: ``op`` applied to ``inputs`` (value names) producing ``outputs``.

    An omitted optional input is the empty string, as in ONNX.  ``attrs`` holds
    only what was set explicitly; :meth:`attr` fills in registry defaults.
    """

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, AttrValue] = field(default_factory=dict)

    def bodies(self) -> list[Graph]:
        """The graphs among the attributes (a Scan's ``body``), in attribute-name order."""
        return [self.attrs[k] for k in sorted(self.attrs) if isinstance(self.attrs[k], Graph)]

    def attr(self, name: str) -> Any:
        """The attribute's value, or the op's default for it."""
        if name in self.attrs:
            return self.attrs[name]
        return _rules().attr_default(self.op, name)

    def input(self, index: int) -> str:
        """Input ``index`` by position, or "" when it is absent."""
        return self.inputs[index] if index < len(self.inputs) else ""


class Graph:
    """A model: inputs, weights, topologically sorted nodes and named outputs."""

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[str] = []
        self.nodes: list[Node] = []
        self.weights: dict[str, np.ndarray] = {}
        self.metadata: dict[str, str] = {}
        #: dtype/shape of every value, filled by :func:`mmconv.ir.infer.infer_shapes`.
        self.values: dict[str, Value] = {}
        self._names: set[str] = set()
        #: names used inside loop bodies: :meth:`unique_name` avoids them too, so a pass
        #: never makes an outer weight a body could mistake for one of its own values.
        self._inner: set[str] = set()

    # -- building ---------------------------------------------------------
    def add_input(self, name: str, dtype: str, shape: Sequence[Dim]) -> Value:
        """Declare a runtime input of the model."""
        value = Value(name, dtype, tuple(shape))
        self._claim(name)
        self.inputs.append(value)
        self.values[name] = value
        return value

    def add_weight(self, name: str, array: np.ndarray) -> str:
        """Add a weight (parameter or constant) and return its value name."""
        array = np.asarray(array)
        if array.dtype.name not in DTYPES:
            raise IRError(f"weight {name!r}: unsupported dtype {array.dtype}")
        self._claim(name)
        self.weights[name] = array
        self.values[name] = Value(name, array.dtype.name, tuple(array.shape))
        return name

    def add_node(
        self,
        op: str,
        inputs: Sequence[str],
        name: str,
        outputs: Sequence[str] | None = None,
        **attrs: AttrValue,
    ) -> Node:
        """Append a node, checking op and attributes against the registry.

        By default a single-output node's output value takes the node's name,
        which keeps names users know (``conv1``) as the names of tensors.
        """
        if outputs is None:
            outputs = [name]
        node = Node(name, op, list(inputs), list(outputs), dict(attrs))
        _rules().check_node(node)
        for out in node.outputs:
            self._claim(out)
        self.nodes.append(node)
        for body in node.bodies():
            self._inner |= body_names(body)
        return node

    def unique_name(self, base: str) -> str:
        """``base`` if unused, else ``base_1``, ``base_2`` ... (for synthesized nodes)."""
        taken = self._names | self._inner if self._inner else self._names
        if base not in taken:
            return base
        i = 1
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"

    def new_name(self, base: str) -> str:
        """:meth:`unique_name`, reserved at once (for passes that name values before the
        nodes producing them are added)."""
        name = self.unique_name(base)
        self._claim(name)
        return name

    def _claim(self, name: str) -> None:
        if not name:
            raise IRError("empty value name")
        if name in self._names:
            raise IRError(f"duplicate value name {name!r}")
        self._names.add(name)

    def rebuild_names(self) -> None:
        """Recompute the name index after nodes/weights were edited in place (passes)."""
        self._names = {v.name for v in self.inputs} | set(self.weights)
        self._inner = set()
        for node in self.nodes:
            self._names.update(node.outputs)
            for body in node.bodies():
                self._inner |= body_names(body)

    # -- queries ----------------------------------------------------------
    def value(self, name: str) -> Value:
        try:
            return self.values[name]
        except KeyError:
            raise IRError(f"no value named {name!r} (shapes not inferred yet?)") from None

    def producers(self) -> dict[str, Node]:
        """Map each node output to its node (:func:`mmconv.ir.usedef.producers`)."""
        return usedef.producers(self)

    def consumers(self) -> dict[str, list[Node]]:
        """Map each value name to the nodes that read it (:func:`mmconv.ir.usedef.consumers`)."""
        return usedef.consumers(self)

    def __repr__(self) -> str:
        return (
            f"Graph({self.name!r}, {len(self.inputs)} inputs, {len(self.nodes)} nodes, "
            f"{len(self.weights)} weights, outputs={self.outputs})"
        )


AttrValue = (int | float | str | bool | tuple[int, ...] | tuple[float, ...] | tuple[str, ...]
             | Graph)


def body_names(body: Graph) -> set[str]:
    """Every value name a loop body (and the bodies inside it) defines."""
    names = {v.name for v in body.inputs}
    for node in body.nodes:
        names.update(node.outputs)
        for inner in node.bodies():
            names |= body_names(inner)
    return names


def toposort(nodes: Iterable[Node], available: Iterable[str]) -> list[Node]:
    """Order ``nodes`` so each comes after the producers of its inputs.

    ``available`` are names defined outside the nodes (graph inputs, weights).
    Raises :class:`IRError` naming a node whose input nothing defines, or a cycle.
    """
    nodes = list(nodes)
    defined = set(available)
    produced_by = {out: n for n in nodes for out in n.outputs}
    order: list[Node] = []
    state: dict[int, int] = {}  # id(node) -> 1 visiting, 2 done

    for root in nodes:
        stack = [root]
        while stack:
            node = stack[-1]
            if state.get(id(node)) == 2:
                stack.pop()
                continue
            state[id(node)] = 1
            missing = next((x for x in node.inputs if x and x not in defined), None)
            if missing is None:
                stack.pop()
                state[id(node)] = 2
                order.append(node)
                defined.update(node.outputs)
                continue
            dep = produced_by.get(missing)
            if dep is None:
                raise IRError(f"node {node.name!r}: input {missing!r} is not defined")
            if state.get(id(dep)) == 1:
                raise IRError(f"graph has a cycle through node {dep.name!r}")
            stack.append(dep)
    return order
