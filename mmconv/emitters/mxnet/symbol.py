"""MXNet's symbol graph, in memory and as the ``NAME-symbol.json`` text MXNet 1.x reads.

The file is the NNVM graph JSON that ``Symbol.tojson`` writes (MXNet 1.9.1,
``nnvm::pass::SaveJSON``):

- ``nodes``: in topological order, each ``{"op", "name", "attrs", "inputs"}``.
  Variables (graph inputs and every parameter) are ``op: "null"``; ``attrs``
  maps attribute names to *strings* (MXNet parses them with each operator's
  dmlc parameter parser: tuples as ``"(3, 3)"``, bools as ``"True"``);
  ``inputs`` are ``[node index, output index, version]`` (version is 0).
- ``arg_nodes``: the indices of the ``null`` nodes.
- ``node_row_ptr``: the prefix sum of each node's number of outputs (BatchNorm
  has three outputs, two of them hidden).
- ``heads``: the graph outputs, ``[node index, output index, 0]``.
- ``attrs``: ``{"mxnet_version": ["int", 10901]}``; MXNet upgrades older
  files by this number, so it claims the format of 1.9.1 exactly.

A variable's static shape and dtype go in its ``__shape__``/``__dtype__``
attributes (what ``mx.sym.var(shape=, dtype=)`` writes), so shape inference
works for parameters no operator can infer (operands of broadcast ops).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmconv.errors import UnsupportedError

#: The MXNet version the file claims (1.9.1): MXNet upgrades files older than itself.
MXNET_VERSION = 10901

#: Attribute values handlers may use; they become strings only in the JSON.
AttrValue = int | float | bool | str | tuple[object, ...] | None


@dataclass
class SymNode:
    """One node: an operator application or (``op == "null"``) a variable."""

    op: str
    name: str
    #: (node index, output index) pairs, in the operator's argument order
    inputs: list[tuple[int, int]] = field(default_factory=list)
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    #: all outputs, hidden ones included (BatchNorm: 3)
    num_outputs: int = 1
    #: the loop body of a control-flow operator (``_foreach``): written inline as the
    #: node's ``subgraphs``, as nnvm's SaveJSON does
    subgraphs: list[SymbolGraph] = field(default_factory=list)


@dataclass
class SymbolGraph:
    """The nodes of one MXNet symbol and its heads (graph outputs)."""

    nodes: list[SymNode] = field(default_factory=list)
    heads: list[tuple[int, int]] = field(default_factory=list)

    def add(self, node: SymNode) -> int:
        """Append ``node`` (its inputs must already be in the graph); its index."""
        for src, out in node.inputs:
            if not (0 <= src < len(self.nodes) and 0 <= out < self.nodes[src].num_outputs):
                raise ValueError(f"node {node.name!r}: input ({src}, {out}) does not exist")
        self.nodes.append(node)
        return len(self.nodes) - 1

    def input_order(self) -> list[int]:
        """The variables in the order MXNet's ``list_inputs`` gives them (nnvm's DFS from
        the heads, inputs in order): what a loop's ``*_locs`` attributes index."""
        seen: set[int] = set()
        order: list[int] = []

        def visit(i: int) -> None:
            stack = [(i, False)]
            while stack:
                idx, done = stack.pop()
                if done:
                    if self.nodes[idx].op == "null":
                        order.append(idx)
                    continue
                if idx in seen:
                    continue
                seen.add(idx)
                stack.append((idx, True))
                stack.extend((src, False) for src, _ in reversed(self.nodes[idx].inputs))

        for src, _ in self.heads:
            visit(src)
        return order

    def _parts(self) -> tuple[list[dict[str, object]], list[int], list[int], list[list[int]]]:
        nodes = []
        for node in self.nodes:
            entry: dict[str, object] = {"op": node.op, "name": node.name}
            attrs = {k: format_attr(v) for k, v in node.attrs.items() if v is not None}
            if attrs:
                entry["attrs"] = attrs
            entry["inputs"] = [[src, out, 0] for src, out in node.inputs]
            if node.subgraphs:
                entry["subgraphs"] = [sub.as_dict() for sub in node.subgraphs]
            nodes.append(entry)
        row_ptr = [0]
        for node in self.nodes:
            row_ptr.append(row_ptr[-1] + node.num_outputs)
        arg_nodes = [i for i, n in enumerate(self.nodes) if n.op == "null"]
        heads = [[src, out, 0] for src, out in self.heads]
        return nodes, arg_nodes, row_ptr, heads

    def as_dict(self) -> dict[str, object]:
        """A subgraph as nnvm writes it inside its node (no ``attrs``)."""
        nodes, arg_nodes, row_ptr, heads = self._parts()
        return {"nodes": nodes, "arg_nodes": arg_nodes, "node_row_ptr": row_ptr,
                "heads": heads}

    def to_json(self) -> str:
        """The symbol file's text: deterministic (same graph, same bytes)."""
        nodes, arg_nodes, row_ptr, heads = self._parts()
        # one node per line: diffable, and close to what MXNet itself writes
        lines = ["{", '  "nodes": [']
        lines += [f"    {_dump(n)}," for n in nodes]
        if nodes:
            lines[-1] = lines[-1][:-1]
        lines += ["  ],", f'  "arg_nodes": {_dump(arg_nodes)},',
                  f'  "node_row_ptr": {_dump(row_ptr)},', f'  "heads": {_dump(heads)},',
                  f'  "attrs": {_dump({"mxnet_version": ["int", MXNET_VERSION]})}', "}"]
        return "\n".join(lines) + "\n"


#: The escapes MXNet's JSON reader (dmlc-core ``JSONReader::ReadString``) knows; it has
#: no ``\uXXXX``, so every other character is written as it is (UTF-8).
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(text: str) -> str:
    if "\0" in text:
        raise UnsupportedError(f"name or attribute {text!r} holds a NUL character, which "
                               "MXNet's C API cannot pass; rename it")
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def _dump(value: object) -> str:
    """JSON text MXNet's reader accepts (see :data:`_ESCAPES`); ``json.loads`` reads it
    with ``strict=False`` (control characters other than those stay raw)."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_dump(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(str(k))}: {_dump(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to a symbol file")


def format_attr(value: AttrValue) -> str:
    """An attribute value as MXNet's parameter parser reads it.

    Tuples print as ``(1, 2)`` (``(1,)`` for one item; ``None`` items as
    ``None``, which ``slice`` reads as "open"), bools as ``True``/``False``,
    floats with ``repr`` (exact round trip).  Non-finite floats are refused:
    dmlc's parser has no spelling for them that every operator accepts.
    """
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"attribute value {value!r} is not finite")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        items = [("None" if v is None else format_attr(v)) for v in value]  # type: ignore[arg-type]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return str(value)


def shape_attr(shape: Sequence[int]) -> str:
    """``__shape__`` of a variable."""
    return format_attr(tuple(int(d) for d in shape))
