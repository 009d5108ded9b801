"""Use-def information of a graph: who produces each value and who reads it.

The graph stores nodes with input/output *names* only; producers and consumers
are derived here, in one place, rather than kept in the graph and patched by
every edit (passes rewrite ``node.inputs`` freely, and a stale index is a worse
bug than a rebuilt one).  Building an index is one linear walk, so passes
rebuild it after each rewrite they make instead of maintaining it by hand.

A loop body (a Scan's ``body`` attribute) reads outer weights by name; those reads
count as reads by the node holding the body (:func:`reads`), so dead-code
elimination keeps those weights and a pass never rewrites a weight in place that a
body still reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # core imports this module; the reverse is for type hints only
    from mmconv.ir.core import Graph, Node


def outer_reads(node: Node) -> list[str]:
    """The names ``node``'s loop bodies read from outside themselves (outer weights),
    sorted; empty for a node without a body."""
    found: set[str] = set()
    for body in node.bodies():
        defined = {v.name for v in body.inputs} | {o for n in body.nodes for o in n.outputs}
        for inner in body.nodes:
            found.update(i for i in (*inner.inputs, *outer_reads(inner))
                         if i and i not in defined)
    return sorted(found)


def reads(node: Node) -> list[str]:
    """Everything ``node`` reads: its inputs (``""`` left out), then its bodies'
    :func:`outer_reads`."""
    names = [i for i in node.inputs if i]
    return names + outer_reads(node) if node.attrs else names


def live_nodes(graph: Graph, reading: Callable[[Node], Iterable[str]] | None = None
               ) -> list[Node]:
    """The nodes ``graph``'s outputs depend on, in graph order.  ``reading(node)`` says
    what a node reads (default :func:`reads`); an emitter narrows it where it computes a
    node from fewer inputs (CNTK's recognised MaxRoiPool).  Nodes are told apart by
    identity: a pass may leave two nodes of one name behind until names are rebuilt."""
    reading = reading or reads
    by_output = producers(graph)
    live: set[int] = set()
    stack = [by_output[o] for o in graph.outputs if o in by_output]
    while stack:
        node = stack.pop()
        if id(node) in live:
            continue
        live.add(id(node))
        stack.extend(by_output[i] for i in reading(node) if i in by_output)
    return [n for n in graph.nodes if id(n) in live]


def producers(graph: Graph) -> dict[str, Node]:
    """Value name -> the node that outputs it (graph inputs and weights have none)."""
    return {out: node for node in graph.nodes for out in node.outputs}


def consumers(graph: Graph) -> dict[str, list[Node]]:
    """Value name -> the nodes that read it, in graph order (a node reading a value
    twice is listed twice, so counts are uses, not readers).  A loop body's reads of
    outer weights are reads by its node (:func:`reads`)."""
    result: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in reads(node):
            result.setdefault(name, []).append(node)
    return result


class UseDef:
    """:func:`producers` and :func:`consumers` of a graph, with queries and edits.

    Built in one linear walk.  Edit the graph either directly and build a new
    index, or -- for a pass that makes many rewrites -- through the edit methods
    below, which keep the index current in O(uses) per edit instead of O(graph):
    a pass rewriting hundreds of Transposes in a big model stays linear.  Removed
    nodes leave ``graph.nodes`` at :meth:`flush` (one filter for all of them).
    Graph outputs are not edited here.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producers = producers(graph)
        self.consumers = consumers(graph)
        self.outputs = set(graph.outputs)
        self.removed: set[int] = set()

    # -- edits -------------------------------------------------------------------------
    def _unlink(self, node: Node, name: str) -> None:
        users = self.consumers.get(name, [])
        for k, user in enumerate(users):
            if user is node:
                del users[k]
                return

    def set_inputs(self, node: Node, inputs: list[str]) -> None:
        """Make ``node`` read ``inputs`` (its bodies' reads are left as they are)."""
        for name in node.inputs:
            if name:
                self._unlink(node, name)
        node.inputs = list(inputs)
        for name in node.inputs:
            if name:
                self.consumers.setdefault(name, []).append(node)

    def set_outputs(self, node: Node, outputs: list[str]) -> None:
        for name in node.outputs:
            if self.producers.get(name) is node:
                del self.producers[name]
        node.outputs = list(outputs)
        for name in node.outputs:
            self.producers[name] = node

    def add_node(self, node: Node) -> Node:
        """Append ``node`` (already checked, output names already claimed)."""
        self.graph.nodes.append(node)
        for name in node.outputs:
            self.producers[name] = node
        for name in reads(node):
            self.consumers.setdefault(name, []).append(node)
        return node

    def remove_node(self, node: Node) -> None:
        """Drop ``node`` from the index now and from ``graph.nodes`` at :meth:`flush`."""
        for name in reads(node):
            self._unlink(node, name)
        for name in node.outputs:
            if self.producers.get(name) is node:
                del self.producers[name]
        self.removed.add(id(node))

    def replace_all_uses(self, old: str, new: str) -> int:
        """:func:`replace_all_uses` (node inputs only), keeping the index current."""
        users = self.consumers.pop(old, [])
        seen: set[int] = set()
        for node in users:
            if id(node) not in seen:  # a node reading ``old`` twice is listed twice
                seen.add(id(node))
                node.inputs = [new if i == old else i for i in node.inputs]
                for body in node.bodies():
                    rename_outer_reads(body, old, new)
        self.consumers.setdefault(new, []).extend(users)
        return len(users)

    def flush(self) -> None:
        """Apply the removals to ``graph.nodes``."""
        if self.removed:
            self.graph.nodes = [n for n in self.graph.nodes if id(n) not in self.removed]
            self.removed.clear()

    # -- queries -----------------------------------------------------------------------
    def is_removed(self, node: Node) -> bool:
        return id(node) in self.removed

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
    changed = _rename_reads(graph.nodes, old, new)
    if outputs and old in graph.outputs:
        changed += graph.outputs.count(old)
        graph.outputs = [new if o == old else o for o in graph.outputs]
    return changed


def rename_outer_reads(body: Graph, old: str, new: str) -> int:
    """Make ``body`` (and the bodies inside it) read outer value ``new`` where it read
    ``old``; a name the body defines itself is left alone.  Returns the reads changed."""
    if old in {v.name for v in body.inputs} or any(old in n.outputs for n in body.nodes):
        return 0
    return _rename_reads(body.nodes, old, new)


def _rename_reads(nodes: list[Node], old: str, new: str) -> int:
    """Inputs of ``nodes`` and their bodies' outer reads: ``old`` -> ``new``."""
    changed = 0
    for node in nodes:
        if old in node.inputs:
            changed += node.inputs.count(old)
            node.inputs = [new if i == old else i for i in node.inputs]
        for body in node.bodies():
            changed += rename_outer_reads(body, old, new)
    return changed
