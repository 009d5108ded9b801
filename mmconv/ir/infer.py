"""Shape inference and whole-graph validation."""

from __future__ import annotations

from collections.abc import Mapping

from mmconv.errors import IRError
from mmconv.ir.core import DTYPES, Graph, Node, Value, toposort
from mmconv.ir.registry import check_node, get_schema

#: Ops a loop body may not hold (nor any op with a body of its own): a body is one step
#: of one loop, and a loop or recurrent layer inside a step is not something every
#: target can write.
NOT_IN_BODY = frozenset({"LSTM", "GRU", "RNN", "Scan"})


def infer_shapes(graph: Graph) -> Graph:
    """Fill ``graph.values`` with the dtype and static shape of every value.

    Also checks that the graph is well formed: nodes are known ops with valid
    attributes, every input is defined before use, outputs exist.  Nodes are
    put in topological order.  Loop bodies (a Scan's ``body``) are inferred
    first, from their declared inputs and the weights of this graph.  Returns the
    graph for chaining.
    """
    values: dict[str, Value] = {v.name: v for v in graph.inputs}
    for name, array in graph.weights.items():
        values[name] = Value(name, array.dtype.name, tuple(array.shape))
    weights = {name: values[name] for name in graph.weights}
    _infer(graph, values, weights)
    return graph


def _infer(graph: Graph, values: dict[str, Value], weights: Mapping[str, Value]) -> None:
    """Infer ``graph`` given ``values`` (its inputs and the weights it may read)."""
    graph.nodes = toposort(graph.nodes, values)
    for node in graph.nodes:
        check_node(node)
        for body in node.bodies():
            _infer_body(node, body, weights)
        schema = get_schema(node.op)
        ins = [values[i] if i else None for i in node.inputs]
        assert schema.infer is not None
        results = schema.infer(node, ins)
        for out, (dtype, shape) in zip(node.outputs, results, strict=False):
            if dtype not in DTYPES:
                raise IRError(f"node {node.name!r}: inferred unknown dtype {dtype!r}")
            if any(d is not None and d < 0 for d in shape):
                raise IRError(f"node {node.name!r} ({node.op}): negative size in {list(shape)}")
            if out in values:
                raise IRError(f"node {node.name!r}: value {out!r} is defined twice")
            values[out] = Value(out, dtype, tuple(shape))
        if len(results) < len(node.outputs):
            raise IRError(f"node {node.name!r} ({node.op}): too many outputs")
    if not graph.outputs:
        raise IRError("graph has no outputs")
    for out in graph.outputs:
        if out not in values:
            raise IRError(f"graph output {out!r} is not produced by any node")
    graph.values = values
    graph.rebuild_names()


def _infer_body(node: Node, body: Graph, weights: Mapping[str, Value]) -> None:
    """Infer a loop body: it reads its inputs, its own nodes' outputs and the outermost
    graph's ``weights`` by name, and holds no weights of its own.  A body value named
    like an outer weight shadows it inside the body (the body's names are its own: a
    pass folding an outer value into a weight cannot change what a body reads).
    ``body.values`` gets the body's values and the outer weights it reads."""
    where = f"node {node.name!r} ({node.op}) body"
    if body.weights:
        raise IRError(f"{where}: a body holds no weights (it reads the outer graph's "
                      f"by name), found {sorted(body.weights)[:3]}")
    own = {v.name for v in body.inputs} | {o for n in body.nodes for o in n.outputs}
    outer = {k: v for k, v in weights.items() if k not in own}
    inner = next((n for n in body.nodes if n.op in NOT_IN_BODY or n.bodies()), None)
    if inner is not None:
        raise IRError(f"{where}: node {inner.name!r} is a {inner.op}; a loop body holds no "
                      "recurrent ops (make it a separate layer outside the loop)")
    try:
        missing = next((i for n in body.nodes for i in n.inputs
                        if i and i not in own and i not in outer), None)
        if missing is not None:
            raise IRError(f"reads {missing!r}, which is neither a body input, a body node's "
                          "output nor an outer weight (pass an outer activation in as a "
                          "scan input or state)")
        _infer(body, {**{v.name: v for v in body.inputs}, **outer}, weights)
    except IRError as exc:
        raise IRError(f"{where}: {exc}") from None
    for out in body.outputs:
        if out not in own:
            raise IRError(f"{where}: output {out!r} is an outer weight; a body output must "
                          "be a body input or a body node's output")
    read = {i for n in body.nodes for i in n.inputs if i in outer}
    body.values = {k: v for k, v in body.values.items() if k in own or k in read}
