"""Bias fusion: ``Add(Conv|Dense(x), bias)`` becomes the op's ``B`` input.

CNTK, Keras and others build conv/dense + bias as two ops; every target has a
biased convolution, so one node is both faster and what a reader expects.
Needs inferred shapes (``graph.values``) to know the output channel axis.
"""

from __future__ import annotations

import numpy as np

from mmconv.ir import usedef
from mmconv.ir.core import Graph, Node


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
    uses = usedef.UseDef(graph)  # edited in place: O(uses) per fusion, not O(graph)
    for add in list(graph.nodes):
        if add.op != "Add":
            continue
        for pos in (0, 1):
            src, const = add.inputs[pos], add.inputs[1 - pos]
            prod = uses.producer(src)
            if (prod is None or prod.op not in ("Conv", "Dense") or prod.input(2)
                    or src in uses.outputs or len(uses.users(src)) != 1):
                continue
            bias = _channel_bias(graph, prod, const)
            if bias is None or bias.dtype != graph.weights[prod.inputs[1]].dtype:
                continue
            if len(uses.users(const)) == 1:
                graph.weights[const] = np.ascontiguousarray(bias)
                bname = const
            else:
                bname = graph.new_name(f"{const}/vector")
                graph.weights[bname] = np.ascontiguousarray(bias)
            uses.remove_node(add)
            uses.set_inputs(prod, [*prod.inputs[:2], bname])
            uses.set_outputs(prod, [add.outputs[0]])
            # The fused node takes the Add's name when the producer was a helper of it
            # (``conv1/Convolution`` + ``conv1``), else keeps its own.
            if prod.name.startswith(add.name + "/"):
                prod.name = add.name
            changed += 1
            break
    uses.flush()
    if changed:
        graph.rebuild_names()
    return changed
