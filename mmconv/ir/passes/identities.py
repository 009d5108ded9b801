"""Identity removal: Identity nodes (Dropout at inference, aliases) are bypassed.

An Identity that names a graph output hands its name to its producer instead,
so output names users know (and verifiers fetch) survive.
"""

from __future__ import annotations

from mmconv.ir.core import Graph
from mmconv.ir.usedef import UseDef


def remove_identities(graph: Graph) -> int:
    """Bypass Identity nodes (see the module docstring)."""
    changed = 0
    input_names = {v.name for v in graph.inputs}
    uses = UseDef(graph)  # edited in place: O(uses) per Identity, not O(graph)
    for node in list(graph.nodes):
        if node.op != "Identity":
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in uses.outputs:
            prod = uses.producer(src)
            # Move the name onto the producer when nothing else needs the old name.
            if (prod is None or src in uses.outputs or src in input_names
                    or len(uses.users(src)) > 1):
                continue
            uses.set_outputs(prod, [dst if o == src else o for o in prod.outputs])
            if prod.name == src:
                taken = {n.name for n in graph.nodes
                         if n is not node and not uses.is_removed(n)}
                prod.name = dst if dst not in taken else prod.name
            uses.remove_node(node)
        else:
            uses.remove_node(node)
            uses.replace_all_uses(dst, src)
        changed += 1
    uses.flush()
    if changed:
        graph.rebuild_names()
    return changed
