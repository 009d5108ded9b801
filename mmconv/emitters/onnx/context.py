"""The state one ONNX emission shares between its op handlers.

Handlers (one module per IR op family, registered in :data:`HANDLERS`) see the
IR node and an :class:`EmitContext`; they never build protobuf by hand beyond
``ctx.add``/``ctx.const``.  The context owns naming (so emitted helper values
never collide with IR names), the opset (so every opset decision is made in
the handler that knows the op) and the ONNX nodes and initializers produced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from mmconv.dispatch import Registry
from mmconv.emitters.base import EmitContextBase, norm_axis
from mmconv.ir.core import Graph, Node

#: A handler turns one IR node into ONNX nodes through the context.
Handler = Callable[["EmitContext", Node], None]

#: IR op name -> handler.  Filled by the family modules of this package.
HANDLERS: Registry[Handler] = Registry("ONNX emit handler")


class EmitContext(EmitContextBase):
    """Collects the ONNX nodes and initializers for one IR graph at one opset.

    Naming (``fresh``), use counts, the current node and the error form come
    from :class:`~mmconv.emitters.base.EmitContextBase`.
    """

    handlers = HANDLERS
    target = "ONNX"

    def __init__(self, graph: Graph, opset: int) -> None:
        self.graph = graph
        self.opset = opset
        self.nodes: list[NodeProto] = []
        #: Constants the handlers created (IR weights are added by the builder).
        self.constants: list[TensorProto] = []
        self._node_names: set[str] = set()
        #: IR weights to be stored in another (same-size) shape: name -> shape.
        self.reshaped_weights: dict[str, tuple[int, ...]] = {}

    def target_note(self) -> str:
        return f"ONNX opset {self.opset}"

    # -- building -----------------------------------------------------------
    def add(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: Sequence[str] | None = None,
        *,
        name: str | None = None,
        **attrs: Any,
    ) -> list[str]:
        """Append an ONNX node; returns its output names.

        Without ``outputs`` one fresh output named after the current IR node
        and ``op_type`` is made (a helper value of a decomposition).  Without
        ``name`` the node is named after its first output, so helper nodes and
        values read as ``<ir node>/<step>`` in Netron.
        """
        if outputs is None:
            base = self._node.name if self._node is not None else "mmconv"
            outputs = [self.fresh(f"{base}/{op_type}")]
        node_name = name if name is not None else outputs[0]
        if node_name in self._node_names:
            # The IR does not require unique node names; onnxruntime does.
            node_name = self.fresh(node_name)
        self._node_names.add(node_name)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs),
                                           name=node_name, **attrs))
        return list(outputs)

    def const(self, array: np.ndarray | Sequence[Any], hint: str, dtype: Any = None) -> str:
        """Add a constant initializer made by the emitter; returns its (fresh) name."""
        arr = np.asarray(array, dtype=dtype)
        base = self._node.name if self._node is not None else "mmconv"
        name = self.fresh(f"{base}/{hint}")
        self.constants.append(numpy_helper.from_array(arr, name))
        return name

    def int64s(self, values: Sequence[int], hint: str) -> str:
        """A 1-D int64 constant, the form ONNX wants for shapes, axes and pads."""
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def scalar(self, value: float, like: str, hint: str) -> str:
        """A 0-d constant of the same dtype as value ``like`` (for eps, bounds...)."""
        return self.const(np.asarray(value, dtype=self.dtype(like)), hint)

    def as_shape(self, name: str, shape: Sequence[int], hint: str) -> str:
        """Value ``name`` (same element count) seen with a static ``shape``.

        A weight read only by this node is stored in that shape under its own
        name (a layout choice, not a computation, and it keeps the IR weight
        name); anything else gets a Reshape node.
        """
        shape = tuple(int(d) for d in shape)
        if self.shape(name) == shape:
            return name
        if name in self.graph.weights and self.uses(name) == 1:
            self.reshaped_weights[name] = shape
            return name
        return self.add("Reshape", [name, self.int64s(shape, f"{hint}_shape")])[0]

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool = True,
               outputs: Sequence[str] | None = None, name: str | None = None) -> str:
        """A Reduce* node over ``axes``: ReduceSum takes axes as an input from opset 13,
        the other reductions from opset 18; before that they are an attribute."""
        from_opset = 13 if op_type == "ReduceSum" else 18
        if self.opset >= from_opset:
            inputs, attrs = [x, self.int64s(axes, "axes")], {}
        else:
            inputs, attrs = [x], {"axes": list(axes)}
        return self.add(op_type, inputs, outputs, name=name, keepdims=int(keepdims),
                        **attrs)[0]

    # -- opset ----------------------------------------------------------------
    def require(self, node: Node, opset: int, what: str | None = None) -> None:
        """Fail unless the target opset is at least ``opset`` for ``what`` this node needs."""
        if self.opset < opset:
            what = what or f"ONNX {node.op}"
            raise self.unsupported(
                node, f"{what} needs ONNX opset >= {opset}; pass a higher --opset")


def present(inputs: Sequence[str]) -> list[str]:
    """Inputs with trailing omitted ("") ones dropped, as ONNX prefers them."""
    out = list(inputs)
    while out and not out[-1]:
        out.pop()
    return out


def axis_of(node: Node, rank: int, attr: str = "axis") -> int:
    """The node's axis attribute made non-negative.

    Always emitting non-negative axes keeps one code path for every opset
    (negative axes are only legal in many ops from opset 11 on).
    """
    return norm_axis(int(node.attr(attr)), rank)
