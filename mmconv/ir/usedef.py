"""Use-def information of a graph: who produces each value and who reads it.

The graph stores nodes with input/output *names* only; producers and consumers
are derived here, in one place, rather than kept in the graph and patched by
every edit (passes rewrite ``node.inputs`` freely, and a stale index is a worse
bug than a rebuilt one).  Building an index is one linear walk, so passes
rebuild it after each rewrite they make instead of maintaining it by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # core imports this module; the reverse is for type hints only
    from mmconv.ir.core import Graph, Node


def producers(graph: Graph) -> dict[str, Node]:
    """Value name -> the node that outputs it (graph inputs and weights have none)."""
    return {out: node for node in graph.nodes for out in node.outputs}


def consumers(graph: Graph) -> dict[str, list[Node]]:
    """Value name -> the nodes that read it, in graph order (a node reading a value
    twice is listed twice, so counts are uses, not readers)."""
    result: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            if name:
                result.setdefault(name, []).append(node)
    return result


class UseDef:
    """A snapshot of :func:`producers` and :func:`consumers` with convenience queries.

    A snapshot: after editing the graph, build a new one (cheap) rather than
    trusting this one.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producers = producers(graph)
        self.consumers = consumers(graph)
        self.outputs = set(graph.outputs)

    def producer(self, name: str) -> Node | None:
        return self.producers.get(name)

    def users(self, name: str) -> list[Node]:
        return self.consumers.get(name, [])

    def uses(self, name: str) -> int:
        """How many places read ``name``: node inputs plus graph outputs."""
        return len(self.users(name)) + (name in self.outputs)

    def only_user(self, name: str) -> Node | None:
        """The single node reading ``name`` once, when nothing else (no graph output) does."""
        users = self.users(name)
        if len(users) == 1 and name not in self.outputs:
            return users[0]
        return None


def replace_all_uses(graph: Graph, old: str, new: str, *, outputs: bool = False) -> int:
    """Make every node input reading ``old`` read ``new``; returns how many were changed.

    Graph outputs are names users know (and verifiers fetch), so they are only
    renamed when ``outputs`` is true.
    """
    changed = 0
    for node in graph.nodes:
        if old in node.inputs:
            changed += node.inputs.count(old)
            node.inputs = [new if i == old else i for i in node.inputs]
    if outputs and old in graph.outputs:
        changed += graph.outputs.count(old)
        graph.outputs = [new if o == old else o for o in graph.outputs]
    return changed
