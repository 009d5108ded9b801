"""Numpy implementation of the IR's Scan op (framework-free): the loop, step by step.

Why here: Scan's semantics (:mod:`mmconv.ir.ops.loop`) in code, for frontends that
check what they built and for the emitter tests, which compare every target's loop
with it.  A body step runs its nodes with :func:`mmconv.ir.evaluate.evaluate` (each
node computed in float64 and rounded once to its dtype, as a runtime does) plus the
matrix products, which constant folding leaves out but a step needs.  Nothing is
reassociated across nodes, so the result is what the IR says, not an approximation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmconv.errors import IRError
from mmconv.ir.core import Graph, Node
from mmconv.ir.evaluate import evaluate
from mmconv.ir.ops.loop import scan_layout


def _matmul(node: Node, xs: list[np.ndarray]) -> np.ndarray:
    return np.matmul(xs[0].astype(np.float64), xs[1].astype(np.float64))


def _dense(node: Node, xs: list[np.ndarray]) -> np.ndarray:
    y = xs[0].astype(np.float64) @ xs[1].astype(np.float64).T
    return y + xs[2].astype(np.float64) if len(xs) > 2 else y


#: Ops :func:`evaluate` leaves to runtimes that a step computes here (float64).
_PRODUCTS = {"MatMul": _matmul, "Dense": _dense}


def run_node(node: Node, arrays: Sequence[np.ndarray], weights: Mapping[str, np.ndarray],
             dtypes: Sequence[str]) -> list[np.ndarray]:
    """The outputs of one node on ``arrays`` (its present inputs, in order); ``dtypes``
    are its outputs' inferred dtypes.  Raises :class:`IRError` naming an op this
    evaluator does not run."""
    if node.op == "Scan":
        return run_scan(node, arrays, weights)
    if node.op in _PRODUCTS and all(node.inputs):
        return [_PRODUCTS[node.op](node, list(arrays)).astype(dtypes[0])]
    if node.op in ("LSTM", "GRU", "RNN"):
        from mmconv.ir.recurrent import run

        full = iter(arrays)
        return run(node, [next(full) if i else None for i in node.inputs])
    out = evaluate(node, list(arrays))
    if out is None:
        raise IRError(f"node {node.name!r} ({node.op}): the numpy evaluator does not run "
                      "this op (or these input dtypes)")
    return out


def run_graph(graph: Graph, feeds: Mapping[str, np.ndarray],
              weights: Mapping[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """``graph``'s outputs for ``feeds`` (by input name).  ``weights`` defaults to the
    graph's own; a loop body is run with the outermost graph's.  Shapes must be
    inferred (``graph.values``)."""
    weights = graph.weights if weights is None else weights
    env: dict[str, np.ndarray] = dict(weights)
    for value in graph.inputs:
        env[value.name] = np.asarray(feeds[value.name])
    for node in graph.nodes:
        arrays = [env[i] for i in node.inputs if i]
        dtypes = [graph.values[o].dtype for o in node.outputs]
        for name, array in zip(node.outputs, run_node(node, arrays, weights, dtypes),
                               strict=True):
            env[name] = array
    return [env[o] for o in graph.outputs]


def run_scan(node: Node, arrays: Sequence[np.ndarray],
             weights: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs of Scan ``node`` on ``arrays`` (its inputs) with outer ``weights``."""
    body: Graph = node.attr("body")
    s, _, k = scan_layout(node)
    xs = [np.asarray(a) for a in arrays[s:]]
    n, t = xs[0].shape[:2]
    states = [np.asarray(a) for a in arrays[:s]]
    states = [np.broadcast_to(a, (n, *a.shape[1:])).copy() if a.shape[0] == 1 else a
              for a in states]
    steps: list[list[np.ndarray]] = [[] for _ in range(k)]
    order = range(t - 1, -1, -1) if node.attr("reverse") else range(t)
    for step in order:
        feeds = dict(zip((v.name for v in body.inputs), [*states, *(x[:, step] for x in xs)],
                         strict=True))
        outs = run_graph(body, feeds, weights)
        states = outs[:s]
        for i, y in enumerate(outs[s:]):
            steps[i].append(y)
    if node.attr("reverse"):
        for ys in steps:
            ys.reverse()
    ys_out = []
    for i, ys in enumerate(steps):
        if ys:
            ys_out.append(np.stack(ys, axis=1))
        else:  # T = 0: an empty sequence of the step output's shape
            v = body.value(body.outputs[s + i])
            if any(d is None for d in v.shape[1:]):
                raise IRError(f"node {node.name!r} (Scan): T = 0 and step output "
                              f"{v.name!r} has a dynamic shape")
            ys_out.append(np.zeros((n, 0, *v.shape[1:]), v.dtype))
    return [*states, *ys_out]
