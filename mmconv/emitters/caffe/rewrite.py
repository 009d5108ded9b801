"""Graph rewrites the Caffe target needs before emitting: decomposed ops Caffe has a layer for.

CNTK's legacy (v1) format stores some ops as their primitives, and the CNTK
frontend faithfully reads them so:

- ``leaky_relu``: ``where(x < 0, alpha * x, x)`` (a Less, two Casts, a Mul and
  a Where).  Caffe has no comparison or select layer, but the whole is its
  ``ReLU`` with ``negative_slope`` (the same function: ``alpha * x`` for
  ``x < 0``, ``x`` otherwise, both 0 at 0);
- ``softmax``/``log_softmax`` along an axis: ``exp(x - max) * (1 / sum(exp(x - max)))``
  and ``(x - max) - log(sum(exp(x - max)))`` with keepdims reductions, whose
  broadcasting subtraction no Caffe layer expresses; they are Softmax and
  LogSoftmax along that axis.

:func:`fuse_decomposed` puts one node in the pattern's place (on a copy; the
caller's graph is kept) and drops the nodes nothing else reads any more.
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


def _reduce_axis(node: Node | None, op: str, x: str) -> int | None:
    """The single axis of ``node`` when it is ``op(x, axes=[a], keepdims=1)``."""
    if node is None or node.op != op or node.inputs[0] != x or not node.attr("keepdims"):
        return None
    axes = [int(a) for a in node.attr("axes")]
    return axes[0] if len(axes) == 1 else None


def _max_shifted(graph: Graph, name: str, producers: dict[str, Node]) -> tuple[str, int] | None:
    """``(x, axis)`` when ``name`` is ``x - ReduceMax(x, [axis], keepdims)``."""
    sub = producers.get(name)
    if sub is None or sub.op != "Sub":
        return None
    x, m = sub.inputs
    axis = _reduce_axis(producers.get(m), "ReduceMax", x)
    return None if axis is None else (x, axis)


def _log_sum_exp_shifted(graph: Graph, name: str, producers: dict[str, Node]
                         ) -> tuple[str, int] | None:
    """``(x, axis)`` when ``name`` is ``ReduceSum(Exp(x - max(x)), [axis], keepdims)``."""
    total = producers.get(name)
    if total is None or total.op != "ReduceSum":
        return None
    exp = producers.get(total.inputs[0])
    if exp is None or exp.op != "Exp":
        return None
    found = _max_shifted(graph, exp.inputs[0], producers)
    if found is None or _reduce_axis(total, "ReduceSum", total.inputs[0]) != found[1]:
        return None
    return found


def _softmax(graph: Graph, node: Node, producers: dict[str, Node]
             ) -> tuple[str, str, int] | None:
    """``(op, x, axis)`` when ``node`` closes a decomposed softmax or log-softmax."""
    if node.op == "Mul" and len(node.inputs) == 2:
        for e, r in (node.inputs, node.inputs[::-1]):
            exp, rec = producers.get(e), producers.get(r)
            if exp is None or exp.op != "Exp" or rec is None or rec.op != "Reciprocal":
                continue
            shifted = _max_shifted(graph, exp.inputs[0], producers)
            total = producers.get(rec.inputs[0])
            if (shifted is not None and total is not None and total.inputs[0] == e
                    and _log_sum_exp_shifted(graph, rec.inputs[0], producers) == shifted):
                return "Softmax", shifted[0], shifted[1]
    if node.op == "Sub":
        shifted = _max_shifted(graph, node.inputs[0], producers)
        log = producers.get(node.inputs[1])
        if shifted is not None and log is not None and log.op == "Log" and \
                _log_sum_exp_shifted(graph, log.inputs[0], producers) == shifted:
            return "LogSoftmax", shifted[0], shifted[1]
    return None


def fuse_decomposed(graph: Graph) -> Graph:
    """``graph``, or a copy of it with every decomposed leaky ReLU, softmax and
    log-softmax as one node."""
    producers = graph.producers()
    replace: dict[int, tuple[str, list[str], dict[str, float | int]]] = {}
    for n in graph.nodes:
        if n.op == "Where" and (slope := _leaky_slope(graph, n, producers)) is not None:
            replace[id(n)] = ("LeakyRelu", [n.inputs[2]], {"alpha": slope})
        elif n.op in ("Mul", "Sub") and (soft := _softmax(graph, n, producers)) is not None:
            replace[id(n)] = (soft[0], [soft[1]], {"axis": soft[2]})
    if not replace:
        return graph
    copy = Graph(graph.name)
    copy.inputs = list(graph.inputs)
    copy.outputs = list(graph.outputs)
    copy.nodes = [Node(n.name, replace[id(n)][0], replace[id(n)][1], list(n.outputs),
                       replace[id(n)][2]) if id(n) in replace else
                  Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs))
                  for n in graph.nodes]
    copy.weights = dict(graph.weights)
    copy.metadata = dict(graph.metadata)
    copy.values = dict(graph.values)
    copy.rebuild_names()
    eliminate_dead(copy)
    return copy
