"""Graph clean-ups run by frontends after conversion (framework-free).

- :func:`remove_identities`: Identity nodes (Dropout at inference, aliases) are
  bypassed; an Identity that names a graph output hands its name to its
  producer instead, so output names survive.
- :func:`fuse_bias`: ``Conv``/``Dense`` followed by ``Add`` of a constant that is
  one value per output channel becomes the op's ``B`` input (CNTK, Keras and
  others build conv/dense + bias as two ops).
- :func:`eliminate_dead`: nodes and weights no output depends on are dropped.

Passes edit the graph in place and return the number of changes; shapes must
have been inferred (``graph.values``) for :func:`fuse_bias`.
"""

from __future__ import annotations

import numpy as np

from mmconv.ir.core import Graph, Node


def _rename_input(graph: Graph, old: str, new: str) -> None:
    for node in graph.nodes:
        node.inputs = [new if i == old else i for i in node.inputs]


def remove_identities(graph: Graph) -> int:
    """Bypass Identity nodes (see the module docstring)."""
    changed = 0
    input_names = {v.name for v in graph.inputs}
    for node in list(graph.nodes):
        if node.op != "Identity":
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in graph.outputs:
            producers = graph.producers()
            prod = producers.get(src)
            # Move the name onto the producer when nothing else needs the old name.
            if (prod is None or src in graph.outputs or src in input_names
                    or len(graph.consumers().get(src, [])) > 1):
                continue
            prod.outputs = [dst if o == src else o for o in prod.outputs]
            if prod.name == src:
                prod.name = dst if dst not in {n.name for n in graph.nodes} - {node.name} \
                    else prod.name
            graph.nodes.remove(node)
        else:
            graph.nodes.remove(node)
            _rename_input(graph, dst, src)
        changed += 1
    if changed:
        graph.rebuild_names()
    return changed


def _channel_bias(graph: Graph, node: Node, const: str) -> np.ndarray | None:
    """The bias as a [C] vector when ``const`` adds one value per output channel of ``node``."""
    if const not in graph.weights:
        return None
    bias = graph.weights[const]
    out = graph.values.get(node.outputs[0])
    if out is None or out.rank < 2 or out.shape[1] is None:
        return None
    channels = out.shape[1]
    if bias.size != channels:
        return None
    rank = out.rank
    shape = bias.shape
    # The bias must broadcast along axis 1 only: [C], [C,1,..], [1,C,1,..] (right-aligned).
    if node.op == "Dense":
        ok = shape in ((channels,), (1, channels))
    else:
        ok = (len(shape) <= rank and len(shape) >= rank - 1
              and shape[-(rank - 1)] == channels
              and all(d == 1 for d in shape[len(shape) - rank + 2:])
              and all(d == 1 for d in shape[: len(shape) - rank + 1]))
    return bias.reshape(channels) if ok else None


def fuse_bias(graph: Graph) -> int:
    """Fold ``Add(Conv|Dense(x), bias)`` into the op's B input."""
    changed = 0
    producers = graph.producers()
    consumers = graph.consumers()
    for add in list(graph.nodes):
        if add.op != "Add":
            continue
        for pos in (0, 1):
            src, const = add.inputs[pos], add.inputs[1 - pos]
            prod = producers.get(src)
            if (prod is None or prod.op not in ("Conv", "Dense") or prod.input(2)
                    or src in graph.outputs or len(consumers.get(src, [])) != 1):
                continue
            bias = _channel_bias(graph, prod, const)
            if bias is None or bias.dtype != graph.weights[prod.inputs[1]].dtype:
                continue
            if len(consumers.get(const, [])) == 1:
                graph.weights[const] = np.ascontiguousarray(bias)
                bname = const
            else:
                bname = graph.unique_name(f"{const}/vector")
                graph.weights[bname] = np.ascontiguousarray(bias)
                graph._names.add(bname)
            prod.inputs = [*prod.inputs[:2], bname]
            prod.outputs = [add.outputs[0]]
            # The fused node takes the Add's name when the producer was a helper of it
            # (``conv1/Convolution`` + ``conv1``), else keeps its own.
            if prod.name.startswith(add.name + "/"):
                prod.name = add.name
            graph.nodes.remove(add)
            producers = graph.producers()
            consumers = graph.consumers()
            changed += 1
            break
    if changed:
        graph.rebuild_names()
    return changed


def eliminate_dead(graph: Graph) -> int:
    """Drop nodes no graph output depends on, and weights no node reads."""
    producers = graph.producers()
    live: set[int] = set()
    stack = [producers[o] for o in graph.outputs if o in producers]
    while stack:
        node = stack.pop()
        if id(node) in live:
            continue
        live.add(id(node))
        stack.extend(producers[i] for i in node.inputs if i in producers)
    before = len(graph.nodes) + len(graph.weights)
    graph.nodes = [n for n in graph.nodes if id(n) in live]
    used = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
    graph.weights = {k: v for k, v in graph.weights.items() if k in used}
    graph.values = {k: v for k, v in graph.values.items()
                    if k in used or (k in producers and id(producers[k]) in live)
                    or any(k == i.name for i in graph.inputs)}
    graph.rebuild_names()
    return before - len(graph.nodes) - len(graph.weights)


def run_default_passes(graph: Graph) -> Graph:
    """The clean-ups every frontend wants, in a sensible order."""
    remove_identities(graph)
    fuse_bias(graph)
    eliminate_dead(graph)
    return graph
