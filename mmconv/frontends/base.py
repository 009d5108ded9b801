"""What every frontend needs, whatever it reads: building the IR graph as converters go.

A frontend walks its source graph and calls one converter per source op.  The
converters need more than :meth:`Graph.add_node`: the shape of what they just
built (to pick an axis, to resolve "same" padding), arrays for values computed
from weights alone (a reshaped kernel, ``sigmoid(parameter)``), each source
parameter turned into an IR weight once per transformation, unique names, and
one error listing *every* unsupported op rather than the first.  Those live
here, once, so the CNTK, ONNX and Keras frontends do not each grow their own
copy; a frontend subclasses :class:`BuildContext` for its own matters (CNTK's
uid map and batch axis, ONNX's initializers and opset).

Public API::

    BuildContext(graph)
        .graph                                   the Graph being built
        .add(op, inputs, name, **attrs) -> str   add a node (or fold it), infer at once
        .add_node(op, inputs, name, outputs=None, **attrs) -> Node   never folds
        .try_fold(op, inputs, name, attrs) -> str | None
        .constant(name, array) -> str            a synthesized weight
        .cached_weight(source, layer, param, array, key="") -> str
        .is_constant(name) -> bool, .constant_array(name) -> np.ndarray
        .shape(name) -> Shape, .dtype(name) -> str, .unique_name(base) -> str
    UnsupportedOps()
        .record(op, node_name), bool(...), len(...), .message(source_path, what)
        .raise_if_any(source_path, what, hint="")
    finish_graph(graph) -> Graph               shapes, default passes, shapes again
    finish_graph_keeping(graph, candidates)   the same, and which values kept their meaning
    Frontend(name, convert, channels_last)    what the CLI knows of a frontend
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.ir.core import Graph, Node, Shape, Value
from mmconv.ir.evaluate import evaluate
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import FOLD_MAX_GROWTH, run_default_passes
from mmconv.ir.registry import check_node, get_schema


@dataclass(frozen=True)
class Frontend:
    """What the CLI knows about one source format.

    Each frontend package defines ``FRONTEND = Frontend(...)`` and nothing else of it
    is read from outside (as :class:`mmconv.emitters.base.Emitter` is for targets), so
    a capability is declared once instead of being guessed from ``convert``'s signature.
    """

    #: the ``-sf``/``-f`` name, lower case
    name: str
    #: ``convert(network, weights, *, input_shapes, input_names, output_names, ...)``
    convert: Callable[..., Graph]
    #: its models can be channels-last (TensorFlow's NHWC), so ``--channelsFirstIO``
    #: applies: ``convert`` takes ``channels_first_io=True`` and then gives the IR
    #: channels-first inputs and outputs with no boundary transposes
    channels_last: bool = False


#: How many node names :class:`UnsupportedOps` shows per op (the count says the rest).
SHOWN_NAMES = 5


class BuildContext:
    """The graph under construction plus the helpers converters share.

    Shapes are inferred node by node as they are added (not only at the end)
    because converters decide things from them: which axis a flatten keeps,
    how CNTK/TF "same" padding resolves, whether an operand broadcasts.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        #: (source id, transformation key) -> IR weight name: a source parameter used by
        #: several nodes, or several times the same way, becomes one IR weight.
        self._weight_cache: dict[tuple[str, str], str] = {}

    # -- names and values --------------------------------------------------------------
    def unique_name(self, base: str) -> str:
        """``base`` if no value has that name yet, else ``base_1``, ``base_2`` ..."""
        return self.graph.unique_name(base)

    def shape(self, name: str) -> Shape:
        """The static shape of IR value ``name`` (``None`` for a dynamic dimension)."""
        return self.graph.value(name).shape

    def dtype(self, name: str) -> str:
        return self.graph.value(name).dtype

    def is_constant(self, name: str) -> bool:
        """True when IR value ``name`` is a weight (a parameter, or folded from weights)."""
        return bool(name) and name in self.graph.weights

    def constant_array(self, name: str) -> np.ndarray:
        """The array of weight ``name`` (check :meth:`is_constant` first)."""
        return self.graph.weights[name]

    # -- weights -----------------------------------------------------------------------
    def constant(self, name: str, array: np.ndarray) -> str:
        """A synthesized constant weight (a reshaped parameter, a shape tensor); the
        name is made unique, so converters can pass a descriptive base name."""
        name = self.graph.unique_name(name)
        self.graph.add_weight(name, np.asarray(array, order="C"))  # keeps a 0-d one 0-d
        return name

    def cached_weight(self, source: str, layer: str, param: str,
                      array: np.ndarray | Callable[[], np.ndarray], key: str = "") -> str:
        """The IR weight for source parameter ``source`` transformed as ``key`` says.

        Named ``<layer>/<param>`` (the weights file's key convention), made unique.
        ``array`` may be a callable so the (possibly large) array is only produced
        the first time; ``key`` names the transformation (``""`` for none, e.g.
        ``"transposed"``), so the same parameter used raw and transposed gives two
        weights, and used twice the same way gives one.
        """
        cache = (source, key)
        found = self._weight_cache.get(cache)
        if found is not None:
            return found
        data = array() if callable(array) else array
        name = self.graph.unique_name(f"{layer}/{param}")
        # asarray, not ascontiguousarray: that makes a 0-d index (y[:, -1]) 1-d
        self.graph.add_weight(name, np.asarray(data, order="C"))
        self._weight_cache[cache] = name
        return name

    # -- nodes -------------------------------------------------------------------------
    def add(self, op: str, inputs: Sequence[str], name: str, **attrs: object) -> str:
        """Add a node (or fold it into a weight) and return its first output's name.

        When every input is a weight the node is computed now with numpy (when
        :func:`mmconv.ir.evaluate.evaluate` knows the op and the result is not
        much bigger than its inputs) and becomes a weight of the same name: later
        converters that need an array (a computed convolution kernel) then have
        one, and emitters never see the constant sub-graph.  Inference-equivalent,
        not training-equivalent (see :func:`mmconv.ir.passes.fold_constants`).
        """
        folded = self.try_fold(op, inputs, name, attrs)
        if folded is not None:
            return folded
        return self.add_node(op, inputs, name, **attrs).outputs[0]  # type: ignore[arg-type]

    def add_node(self, op: str, inputs: Sequence[str], name: str,
                 outputs: Sequence[str] | None = None, **attrs: object) -> Node:
        """Add a node without folding and infer its outputs' dtypes and shapes at once.

        ``name`` is made unique; a single-output node's output takes the node's name.
        """
        name = self.graph.unique_name(name)
        node = self.graph.add_node(op, list(inputs), name, outputs,
                                   **attrs)  # type: ignore[arg-type]
        schema = get_schema(op)
        ins: list[Value | None] = [self.graph.values[i] if i else None for i in node.inputs]
        assert schema.infer is not None
        for out, (dtype, shape) in zip(node.outputs, schema.infer(node, ins), strict=False):
            self.graph.values[out] = Value(out, dtype, tuple(shape))
        return node

    def try_fold(self, op: str, inputs: Sequence[str], name: str, attrs: dict) -> str | None:
        """The weight ``op(inputs)`` folds into, or None (an input is not a weight, the
        op has no numpy evaluator, or the result would grow past ``FOLD_MAX_GROWTH``
        elements beyond its inputs: a Tile/Expand of a scalar stays a node)."""
        if not inputs or not all(self.is_constant(i) for i in inputs):
            return None
        node = Node(name, op, list(inputs), [name], dict(attrs))  # type: ignore[arg-type]
        check_node(node)
        arrays = [self.graph.weights[i] for i in inputs]
        result = evaluate(node, arrays)
        if result is None or result[0].size > max(FOLD_MAX_GROWTH, sum(a.size for a in arrays)):
            return None
        return self.graph.add_weight(self.graph.unique_name(name), result[0])


class UnsupportedOps:
    """Collects every source op a frontend cannot convert, so the user sees them all.

    Failing on the first unsupported op makes users iterate one op per run; one
    error listing each op with its count and a few node names tells them at once
    whether the model is close to convertible.  Ops may carry a qualifier for an
    unsupported attribute value (``"Resize(mode=cubic)"``).
    """

    def __init__(self) -> None:
        self._nodes: dict[str, list[str]] = {}

    def record(self, op: str, node_name: str) -> None:
        self._nodes.setdefault(op, []).append(node_name)

    def __len__(self) -> int:
        return sum(len(v) for v in self._nodes.values())

    def __bool__(self) -> bool:
        return bool(self._nodes)

    def message(self, source_path: str, what: str) -> str:
        """``"<path>: <what>: OpA x3 (n1, n2, n3); OpB x1 (n4)"``, most frequent first."""
        parts = []
        order = sorted(self._nodes.items(), key=lambda kv: -len(kv[1]))  # stable for ties
        for op, names in order:
            shown = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
            parts.append(f"{op} x{len(names)} ({shown})")
        return f"{source_path}: {what}: {'; '.join(parts)}"

    def raise_if_any(self, source_path: str, what: str, hint: str = "") -> None:
        """Raise one :class:`UnsupportedError` listing everything recorded, if anything was.

        ``what`` says what the list is (``"CNTK ops without a converter"``); ``hint``,
        if given, is appended after ``"; "`` (what the user can do about it).
        """
        if self._nodes:
            message = self.message(source_path, what)
            raise UnsupportedError(f"{message}; {hint}" if hint else message)


def finish_graph(graph: Graph) -> Graph:
    """The last step of every frontend: full shape inference (which also orders and
    validates the graph), the default clean-up passes, and inference again because
    the passes replace nodes.  Returns the graph."""
    infer_shapes(graph)
    run_default_passes(graph)
    infer_shapes(graph)
    return graph


def finish_graph_keeping(graph: Graph, candidates: dict[str, tuple]) -> tuple[Graph, list[str]]:
    """:func:`finish_graph`, and which of ``candidates`` (IR value -> its shape as built,
    values standing for a source value) still stand for it afterwards, for ``mmverify
    --layers``: still computed, with the same shape, and not downstream of a Transpose the
    layout pass removed (it re-lays-out what follows: a flatten after a sunk
    NCHW->NHWC transpose keeps its shape but orders its elements otherwise).  The other
    passes (identities, folding, bias fusion) keep values as they were."""
    before = [(n.op, list(n.inputs), list(n.outputs)) for n in graph.nodes]
    finish_graph(graph)
    after = {o for n in graph.nodes for o in n.outputs if o}
    moved: set[str] = set()
    for op, inputs, outputs in before:  # build order is a topological order
        if (op == "Transpose" and not any(o in after for o in outputs)) or \
                any(i in moved for i in inputs):
            moved.update(outputs)
    return graph, [v for v, shape in candidates.items()
                   if v in after and v not in moved and v in graph.values
                   and tuple(graph.values[v].shape) == tuple(shape)]
