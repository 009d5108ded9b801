"""Constant folding: nodes computed from weights only become the weights they compute.

A CNTK ``sigmoid(parameter)`` or ``plus(parameter, constant)`` is computed once
with numpy (:mod:`mmconv.ir.evaluate`) and replaced by a weight named like its
output, so targets that need static operands (a Keras kernel) get one.
"""

from __future__ import annotations

from mmconv.ir import usedef
from mmconv.ir.core import Graph, Node, Value, toposort
from mmconv.ir.evaluate import evaluate

#: Folding may not turn small weights into a much larger one (Add of [N,1] and [1,M],
#: Pad, a broadcast): beyond this many elements, and more than the inputs hold
#: together, the node stays and the target computes it.
FOLD_MAX_GROWTH = 1 << 20


def fold_constants(graph: Graph) -> int:
    """Replace nodes computed from weights only by the weights they compute.

    Semantics: inference-equivalent, which is what a conversion promises. It is *not*
    training-equivalent: ``sigmoid(gate)`` of a trainable CNTK parameter becomes a
    fixed tensor, and retraining the converted model cannot move ``gate`` any more
    (fine-tune the source model instead, or keep such a graph unfolded).

    Only ops :func:`mmconv.ir.evaluate.evaluate` computes exactly are folded (elementwise,
    activations, softmax family, reductions, shape ops); others (Conv of two weights...)
    stay and their emitters compute them.  A node naming a graph output stays too, so
    every output is still produced by a node.  The folded value keeps its name (now a
    weight key); weights only the folded nodes read are dropped by
    :func:`eliminate_dead`.  Nodes are visited in order, so chains fold whole.
    """
    changed = 0
    keep: list[Node] = []
    outputs = set(graph.outputs)
    order = toposort(graph.nodes, [*(v.name for v in graph.inputs), *graph.weights])
    for node in order:
        ins = [i for i in node.inputs if i]
        if (not ins or any(i not in graph.weights for i in ins) or outputs & set(node.outputs)
                or len(node.outputs) != 1 or len(ins) != len(node.inputs)):
            keep.append(node)
            continue
        arrays = [graph.weights[i] for i in ins]
        result = evaluate(node, arrays)
        limit = max(FOLD_MAX_GROWTH, sum(a.size for a in arrays))
        if result is None or result[0].size > limit:
            keep.append(node)
            continue
        out = node.outputs[0]
        graph.weights[out] = result[0]
        if graph.values:
            graph.values[out] = Value(out, result[0].dtype.name, tuple(result[0].shape))
        changed += 1
    if changed:
        graph.nodes = keep
        graph.rebuild_names()
    return changed


def folded_for_emit(graph: Graph) -> Graph:
    """``graph`` itself when no node reads weights only, else a folded copy of it.

    For emitters whose targets need static operands (a Keras or CNTK convolution
    kernel) or have no runtime input to compute a weights-only node from (a Keras
    functional model): graphs from other sources than our frontends (an IR file,
    another tool) may still hold such nodes.  The caller's graph is not modified;
    weights only folded nodes read are left out of the copy.
    """
    if not any(n.inputs and all(i in graph.weights for i in n.inputs) for n in graph.nodes):
        return graph
    copy = Graph(graph.name)
    copy.inputs = list(graph.inputs)
    copy.outputs = list(graph.outputs)
    copy.nodes = [Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs))
                  for n in graph.nodes]
    copy.weights = dict(graph.weights)
    copy.metadata = dict(graph.metadata)
    copy.values = dict(graph.values)
    copy.rebuild_names()
    if fold_constants(copy):
        read = {i for n in copy.nodes for i in usedef.reads(n)} | set(copy.outputs)
        copy.weights = {k: v for k, v in copy.weights.items() if k in read}
        copy.values = {k: v for k, v in copy.values.items()
                       if k not in graph.weights or k in copy.weights}
        copy.rebuild_names()
    return copy
