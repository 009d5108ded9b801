"""LRN fusion: LRN spelled out in primitives becomes one ``LRN`` node.

CNTK's v1 files hold LRN as ``x / exp(beta * log(bias + conv(x*x over a channel
view)))``; fused, every target emits its native LRN instead of reshaping around
a one-channel convolution.
"""

from __future__ import annotations

import numpy as np

from mmconv.ir import usedef
from mmconv.ir.core import Graph, Node
from mmconv.ir.passes.dead import eliminate_dead
from mmconv.ir.registry import check_node


def _scalar(graph: Graph, name: str) -> float | None:
    array = graph.weights.get(name)
    return float(array.reshape(-1)[0]) if array is not None and array.size == 1 else None


def _other(node: Node, name: str) -> str | None:
    """The other input of a two-input node that reads ``name``."""
    if len(node.inputs) != 2 or name not in node.inputs:
        return None
    return node.inputs[1] if node.inputs[0] == name else node.inputs[0]


def _match_lrn(graph: Graph, node: Node, producers: dict[str, Node],
               consumers: dict[str, list[Node]]) -> tuple[str, dict[str, float | int]] | None:
    """``(x, LRN attributes)`` when ``node`` ends an LRN written in primitives."""
    def single(value: str, op: str | tuple[str, ...]) -> Node | None:
        prod = producers.get(value)
        ops = (op,) if isinstance(op, str) else op
        if (prod is None or prod.op not in ops or value in graph.outputs
                or len(consumers.get(value, [])) != 1):
            return None
        return prod

    # y = x * reciprocal(den) | x / den
    if node.op == "Div":
        x, den_name = node.inputs[0], node.inputs[1]
    elif node.op == "Mul" and len(node.inputs) == 2:
        rec = next((single(v, "Reciprocal") for v in node.inputs if single(v, "Reciprocal")),
                   None)
        if rec is None:
            return None
        x = _other(node, rec.outputs[0]) or ""
        den_name = rec.inputs[0]
    else:
        return None
    # den = exp(beta * log(a)) | pow(a, beta)
    den = single(den_name, ("Exp", "Pow"))
    if den is None:
        return None
    if den.op == "Pow":
        beta, a_name = _scalar(graph, den.inputs[1]), den.inputs[0]
    else:
        scaled = single(den.inputs[0], "Mul")
        if scaled is None:
            return None
        log = next((single(v, "Log") for v in scaled.inputs if single(v, "Log")), None)
        if log is None:
            return None
        beta, a_name = _scalar(graph, _other(scaled, log.outputs[0]) or ""), log.inputs[0]
    add = single(a_name, "Add")
    if beta is None or add is None:
        return None
    bias = next((_scalar(graph, v) for v in add.inputs if _scalar(graph, v) is not None), None)
    window = next((v for v in add.inputs if v not in graph.weights), None)
    if bias is None or window is None:
        return None
    # window = reshape*(conv(reshape*(x * x))) with a (1, 1, n, 1...) kernel of one value
    value = window
    while (prod := single(value, "Reshape")) is not None:
        value = prod.inputs[0]
    conv = single(value, "Conv")
    if conv is None or conv.input(2) or int(conv.attr("group")) != 1:
        return None
    view, kernel = conv.inputs[0], graph.weights.get(conv.inputs[1])
    value = view
    while (prod := single(value, "Reshape")) is not None:
        value = prod.inputs[0]
    square = single(value, "Mul")
    if square is None or square.inputs != [x, x] or kernel is None:
        return None
    xv, vv, wv = graph.values.get(x), graph.values.get(view), graph.values.get(window)
    if xv is None or vv is None or wv is None or xv.rank < 3 or wv.shape != xv.shape:
        return None
    channels, rest = xv.shape[1], xv.shape[2:]
    spatial = kernel.ndim - 2
    size = int(kernel.shape[2]) if kernel.ndim >= 3 else 0
    if (channels is None or None in rest or size < 1 or vv.shape[1:3] != (1, channels)
            or kernel.shape != (1, 1, size, *([1] * (spatial - 1)))
            or not np.all(kernel == kernel.reshape(-1)[0])
            or int(np.prod(vv.shape[3:], dtype=np.int64)) != int(np.prod(rest, dtype=np.int64))):
        return None
    pads = [int(p) for p in conv.attr("pads")] or [0] * (2 * spatial)
    strides = [int(s) for s in conv.attr("strides")] or [1] * spatial
    dilations = [int(d) for d in conv.attr("dilations")] or [1] * spatial
    before, after = pads[0], pads[spatial]
    if set(strides) != {1} or set(dilations) != {1} \
            or any(pads[1:spatial]) or any(pads[spatial + 1:]) \
            or before != (size - 1) // 2 or after != size - 1 - before:
        return None
    alpha = float(kernel.reshape(-1)[0]) * size
    return x, {"size": size, "alpha": alpha, "beta": beta, "bias": bias}


def fuse_lrn(graph: Graph) -> int:
    """Turn LRN written in primitives into one ``LRN`` node (see the module docstring).

    The pattern: ``y = x * reciprocal(den)`` (or ``x / den``), ``den = exp(beta *
    log(bias + s))`` (or ``pow(bias + s, beta)``), ``s`` the reshape back of a
    convolution of ``x*x`` viewed as ``[N, 1, C, ...]`` with a ``(1, 1, n, 1..)``
    kernel of one value ``alpha/n``, stride 1, padded ``(n-1)//2`` before and the rest
    after along C -- ONNX LRN's window exactly.  Anything else is left alone; the
    replaced primitives become dead (:func:`eliminate_dead` drops them).
    """
    changed = 0
    producers, consumers = usedef.producers(graph), usedef.consumers(graph)
    for node in list(graph.nodes):
        found = _match_lrn(graph, node, producers, consumers)
        if found is None:
            continue
        x, attrs = found
        node.op, node.inputs, node.attrs = "LRN", [x], dict(attrs)
        check_node(node)
        changed += 1
        # the maps change only where a rewrite happened (rare): rebuild just then, so
        # the pass stays linear in the graph size instead of quadratic
        producers, consumers = usedef.producers(graph), usedef.consumers(graph)
    if changed:
        eliminate_dead(graph)
    return changed
