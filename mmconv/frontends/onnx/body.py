"""An ONNX loop body (a Scan's ``body`` GraphProto) -> an IR body graph.

Why a context of its own: the body's nodes go through the same converters as the
main graph's, but the IR's body holds no weights (it reads the outermost graph's by
name) and reads no outer activations.  :class:`BodyContext` converts into a fresh
graph and, while it does, lets the converters see outer initializers as weights of
that graph (so they fold and read arrays as usual); :meth:`BodyContext.finish` then
moves every weight the body made into the outer graph and leaves the body reading
them by name.  An outer *activation* the body reads (ONNX lets a body read any value
of the enclosing graph) becomes an extra body input: the Scan passes it in as a state
the body returns unchanged (:attr:`BodyContext.captured`).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

from mmconv.errors import ModelFormatError
from mmconv.frontends.onnx import known as kn
from mmconv.frontends.onnx.builder import OnnxContext, OnnxNode, convert_nodes
from mmconv.frontends.onnx.names import sanitize
from mmconv.frontends.onnx.reader import IR_DTYPES, tensor_array
from mmconv.ir.core import Graph, Shape, Value


class BodyContext(OnnxContext):
    """Converts one body into :attr:`graph` (a new IR graph) for ``outer``'s node ``where``.

    ``self.values`` holds the body's own ONNX names; a name it lacks is looked up in
    ``outer`` (:meth:`x`): an outer weight is read by name, an outer activation is
    captured as a new body input."""

    def __init__(self, outer: OnnxContext, proto: Any, name: str, where: str) -> None:
        arrays = dict(outer.model.arrays)
        for tensor in proto.initializer:
            arrays[tensor.name] = tensor_array(outer.path, tensor)
        model = dataclasses.replace(outer.model, proto=SimpleNamespace(graph=proto),
                                    arrays=arrays, value_info={})
        super().__init__(model, Graph(name))
        self.outer = outer
        self.where_node = where
        #: the body's own initializers (they shadow outer names)
        self.own = {t.name for t in proto.initializer}
        self.known = {**outer.known, **{k: v for k, v in self.known.items() if k in self.own}}
        self._scope = outer._scope
        # body names never equal an outer name: a body value named like an outer weight
        # would shadow it, which is legal in the IR but needless here
        self.graph._inner = set(outer.graph.values) | outer.graph._names | outer.graph._inner
        #: the outer weights the body reads (by IR name; their arrays shared, not copied)
        self.imported: set[str] = set()
        #: outer IR activation -> the body input standing for it, in capture order
        self.captured: dict[str, str] = {}

    # -- reading the outer scope --------------------------------------------------------
    def _outer_value(self, ir: str) -> str:
        """The body's name for outer IR value ``ir``: the weight itself, or a capture."""
        outer = self.outer
        if outer.is_constant(ir):
            if ir not in self.imported:
                self.imported.add(ir)
                self.graph._inner.add(ir)
                self.graph.weights[ir] = outer.graph.weights[ir]
                self.graph.values[ir] = outer.graph.values[ir]
            return ir
        if ir not in self.captured:
            value = outer.graph.value(ir)
            inner = self.graph.unique_name(f"{ir}/outer")
            self.graph.add_input(inner, value.dtype, value.shape)
            self.captured[ir] = inner
        return self.captured[ir]

    def x(self, node: OnnxNode, index: int, param: str | None = None,
          broadcast: bool = False) -> str:
        name = node.input(index)
        if name and name not in self.values and name not in self.own:
            if name in self.outer.values:
                self.values[name] = self._outer_value(self.outer.values[name])
            elif name in self.outer.known:  # an outer constant: one outer weight
                # the outer graph names it clear of the body's names (no shadowing)
                self.outer.graph._inner |= self.graph._names
                self.values[name] = self._outer_value(
                    self.outer.x(node, index, param, broadcast))
        return super().x(node, index, param, broadcast)

    # -- the result ---------------------------------------------------------------------
    def declare(self, proto: Any, shapes: list[tuple[str, Shape]]) -> None:
        """The body's inputs, with the IR dtype and shape each gets (states, then steps)."""
        if len(proto.input) != len(shapes):
            raise ModelFormatError(f"{self.where_node}: its body has {len(proto.input)} "
                                   f"inputs, the node gives it {len(shapes)}")
        for vi, (dtype, shape) in zip(proto.input, shapes, strict=True):
            t = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and t.elem_type and \
                    IR_DTYPES.get(t.elem_type) != dtype:
                raise ModelFormatError(f"{self.where_node}: body input {vi.name!r} is declared "
                                       f"element type {t.elem_type}, the node gives {dtype}")
            name = self.unique_name(sanitize(vi.name, "input"))
            self.graph.add_input(name, dtype, shape)
            self.values[vi.name] = name

    def convert(self, proto: Any) -> None:
        convert_nodes(self, proto.node)
        outs = []
        for vi in proto.output:
            fake = OnnxNode(SimpleNamespace(input=[vi.name], name=vi.name, op_type="Output",
                                            output=[]), sanitize(vi.name), {})
            ir = self.x(fake, 0, "output")
            if ir in self.graph.weights:  # a constant step output: a body output is a
                ir = self.add_node("Identity", [ir], f"{ir}/out").outputs[0]  # node's output
            outs.append(ir)
        self.graph.outputs = outs

    def finish(self) -> Graph:
        """The body as the IR wants it: the weights it made moved to the outer graph
        (renamed where the name is taken there), none held, outer weights read by name."""
        body, outer = self.graph, self.outer.graph
        made = [w for w in body.weights if w not in self.imported]
        rename: dict[str, str] = {}
        own = {v.name for v in body.inputs} | {o for n in body.nodes for o in n.outputs}
        for w in made:
            new = outer.unique_name(w)
            i = 1
            while new in own or new in rename.values():
                new = outer.unique_name(f"{w}_{i}")
                i += 1
            outer.add_weight(new, body.weights[w])
            rename[w] = new
        for n in body.nodes:
            n.inputs = [rename.get(i, i) for i in n.inputs]
        body.outputs = [rename.get(o, o) for o in body.outputs]
        for w in list(body.weights):
            del body.weights[w]
            value = body.values.pop(w)
            if w in rename:
                body.values[rename[w]] = Value(rename[w], value.dtype, value.shape)
            else:
                body.values[w] = value
        body.rebuild_names()
        return body


def is_batch_sized(ctx: OnnxContext, name: str) -> bool:
    """Whether ONNX value ``name`` is a known value whose first axis is the batch (what
    an exporter's ``Expand(c, Shape(x))`` initial state is)."""
    k = ctx.known.get(name)
    return k is not None and not k.is_static and k.a.ndim > 0 and \
        k.a.shape[0] == kn.BATCHES[0]
