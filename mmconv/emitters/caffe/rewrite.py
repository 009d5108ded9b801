"""Graph rewrites the Caffe target needs before emitting: decomposed ops Caffe has a layer for.

CNTK's legacy (v1) format stores ``leaky_relu`` as its primitives, and the
CNTK frontend faithfully reads ``where(x < 0, alpha * x, x)`` (a Less, two
Casts, a Mul and a Where).  Caffe has no comparison or select layer, but the
whole is its ``ReLU`` with ``negative_slope``: :func:`fuse_leaky_relu` puts a
LeakyRelu node in the Where's place (on a copy; the caller's graph is kept)
and drops the comparison chain when nothing else reads it.  The same function,
exactly: ``alpha * x`` for ``x < 0``, ``x`` otherwise (both 0 at 0).
"""

from __future__ import annotations

from mmconv.ir.core import Graph, Node
from mmconv.ir.passes import eliminate_dead


def _scalar(graph: Graph, name: str) -> float | None:
    array = graph.weights.get(name)
    return float(array.reshape(-1)[0]) if array is not None and array.size == 1 else None


def _through_casts(name: str, producers: dict[str, Node]) -> Node | None:
    node = producers.get(name)
    while node is not None and node.op == "Cast":
        node = producers.get(node.inputs[0])
    return node


def _leaky_slope(graph: Graph, where: Node, producers: dict[str, Node]) -> float | None:
    """``alpha`` when ``where`` is ``Where(x < 0, alpha * x, x)`` (alpha a scalar weight)."""
    cond, a, x = where.inputs
    less = _through_casts(cond, producers)
    if (less is None or less.op != "Less" or less.inputs[0] != x
            or _scalar(graph, less.inputs[1]) != 0.0):
        return None
    mul = producers.get(a)
    if mul is None or mul.op != "Mul" or x not in mul.inputs or len(mul.inputs) != 2:
        return None
    other = mul.inputs[1] if mul.inputs[0] == x else mul.inputs[0]
    if graph.value(x).shape != graph.value(where.outputs[0]).shape:
        return None
    return _scalar(graph, other)


def fuse_leaky_relu(graph: Graph) -> Graph:
    """``graph``, or a copy of it with every decomposed leaky ReLU as one LeakyRelu node."""
    producers = graph.producers()
    slopes = {id(n): s for n in graph.nodes if n.op == "Where"
              and (s := _leaky_slope(graph, n, producers)) is not None}
    if not slopes:
        return graph
    copy = Graph(graph.name)
    copy.inputs = list(graph.inputs)
    copy.outputs = list(graph.outputs)
    copy.nodes = [Node(n.name, "LeakyRelu", [n.inputs[2]], list(n.outputs),
                       {"alpha": slopes[id(n)]}) if id(n) in slopes else
                  Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs))
                  for n in graph.nodes]
    copy.weights = dict(graph.weights)
    copy.metadata = dict(graph.metadata)
    copy.values = dict(graph.values)
    copy.rebuild_names()
    eliminate_dead(copy)
    return copy
