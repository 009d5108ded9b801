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
    before = len(graph.nodes) + len(graph.weights)
    graph.nodes = usedef.live_nodes(graph)
    kept = {id(n) for n in graph.nodes}
    used = {i for n in graph.nodes for i in usedef.reads(n)} | set(graph.outputs)
    graph.weights = {k: v for k, v in graph.weights.items() if k in used}
    graph.values = {k: v for k, v in graph.values.items()
                    if k in used or (k in producers and id(producers[k]) in kept)
                    or any(k == i.name for i in graph.inputs)}
    graph.rebuild_names()
    return before - len(graph.nodes) - len(graph.weights)
