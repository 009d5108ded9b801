"""Dead-code elimination: nodes no graph output depends on, and weights no node reads.

Other passes leave replaced nodes behind rather than deleting them one by one
(cheaper, and simpler to get right); this pass sweeps them.  A weight a loop body
reads is read by the body's node (:func:`mmconv.ir.usedef.reads`); bodies themselves
are not swept (a body is what its node computes, whole).
"""

from __future__ import annotations

from mmconv.ir import usedef
from mmconv.ir.core import Graph


def eliminate_dead(graph: Graph) -> int:
    """Drop nodes no graph output depends on, and weights no node reads."""
    producers = usedef.producers(graph)
    live: set[int] = set()
    stack = [producers[o] for o in graph.outputs if o in producers]
    while stack:
        node = stack.pop()
        if id(node) in live:
            continue
        live.add(id(node))
        stack.extend(producers[i] for i in usedef.reads(node) if i in producers)
    before = len(graph.nodes) + len(graph.weights)
    graph.nodes = [n for n in graph.nodes if id(n) in live]
    used = {i for n in graph.nodes for i in usedef.reads(n)} | set(graph.outputs)
    graph.weights = {k: v for k, v in graph.weights.items() if k in used}
    graph.values = {k: v for k, v in graph.values.items()
                    if k in used or (k in producers and id(producers[k]) in live)
                    or any(k == i.name for i in graph.inputs)}
    graph.rebuild_names()
    return before - len(graph.nodes) - len(graph.weights)
