"""Shape inference and whole-graph validation."""

from __future__ import annotations

from mmconv.errors import IRError
from mmconv.ir.core import DTYPES, Graph, Value, toposort
from mmconv.ir.registry import check_node, get_schema


def infer_shapes(graph: Graph) -> Graph:
    """Fill ``graph.values`` with the dtype and static shape of every value.

    Also checks that the graph is well formed: nodes are known ops with valid
    attributes, every input is defined before use, outputs exist.  Nodes are
    put in topological order.  Returns the graph for chaining.
    """
    values: dict[str, Value] = {v.name: v for v in graph.inputs}
    for name, array in graph.weights.items():
        values[name] = Value(name, array.dtype.name, tuple(array.shape))
    graph.nodes = toposort(graph.nodes, values)
    for node in graph.nodes:
        check_node(node)
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
    return graph
