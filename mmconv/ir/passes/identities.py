"""Identity removal: Identity nodes (Dropout at inference, aliases) are bypassed.

An Identity that names a graph output hands its name to its producer instead,
so output names users know (and verifiers fetch) survive.
"""

from __future__ import annotations

from mmconv.ir.core import Graph
from mmconv.ir.usedef import UseDef, replace_all_uses


def remove_identities(graph: Graph) -> int:
    """Bypass Identity nodes (see the module docstring)."""
    changed = 0
    input_names = {v.name for v in graph.inputs}
    for node in list(graph.nodes):
        if node.op != "Identity":
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in graph.outputs:
            uses = UseDef(graph)
            prod = uses.producer(src)
            # Move the name onto the producer when nothing else needs the old name.
            if (prod is None or src in graph.outputs or src in input_names
                    or len(uses.users(src)) > 1):
                continue
            prod.outputs = [dst if o == src else o for o in prod.outputs]
            if prod.name == src:
                prod.name = dst if dst not in {n.name for n in graph.nodes} - {node.name} \
                    else prod.name
            graph.nodes.remove(node)
        else:
            graph.nodes.remove(node)
            replace_all_uses(graph, dst, src)
        changed += 1
    if changed:
        graph.rebuild_names()
    return changed
