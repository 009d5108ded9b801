"""Graph clean-ups run by frontends after conversion (framework-free).

- :func:`remove_identities`: Identity nodes (Dropout at inference, aliases) are
  bypassed; an Identity that names a graph output hands its name to its
  producer instead, so output names survive.
- :func:`fuse_bias`: ``Conv``/``Dense`` followed by ``Add`` of a constant that is
  one value per output channel becomes the op's ``B`` input (CNTK, Keras and
  others build conv/dense + bias as two ops).
- :func:`fuse_lrn`: LRN spelled out in primitives (what CNTK's v1 files hold:
  ``x / exp(beta * log(bias + conv(x*x over a channel view)))``) becomes one
  ``LRN`` node, so every target emits its native LRN instead of reshaping
  around a one-channel convolution.
- :func:`fold_constants`: a node whose inputs are all weights (a CNTK
  ``sigmoid(parameter)``, ``plus(parameter, constant)``) is computed once with numpy
  (:mod:`mmconv.ir.evaluate`) and replaced by a new weight named like its output.
- :func:`eliminate_dead`: nodes and weights no output depends on are dropped.

Passes edit the graph in place and return the number of changes; shapes must
have been inferred (``graph.values``) for :func:`fuse_bias`.
"""

from __future__ import annotations

import numpy as np

from mmconv.ir.core import Graph, Node, Value, toposort


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
    from mmconv.ir.registry import check_node

    changed = 0
    producers, consumers = graph.producers(), graph.consumers()
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
        producers, consumers = graph.producers(), graph.consumers()
    if changed:
        eliminate_dead(graph)
    return changed


#: Folding may not turn small weights into a much larger one (Add of [N,1] and [1,M],
#: Pad, a broadcast): beyond this many elements, and more than the inputs hold
#: together, the node stays and the target computes it.
FOLD_MAX_GROWTH = 1 << 20


def fold_constants(graph: Graph) -> int:
    """Replace nodes computed from weights only by the weights they compute.

    Semantics: inference-equivalent, which is what a conversion promises. It is *not*
    training-equivalent: ``sigmoid(gate)`` of a trainable CNTK parameter becomes a
    fixed tensor, and retraining the converted model cannot move ``gate`` any more
    (fine-tune the source model instead, or keep such a graph unfolded).

    Only ops :func:`mmconv.ir.evaluate.evaluate` computes exactly are folded (elementwise,
    activations, softmax family, reductions, shape ops); others (Conv of two weights...)
    stay and their emitters compute them.  A node naming a graph output stays too, so
    every output is still produced by a node.  The folded value keeps its name (now a
    weight key); weights only the folded nodes read are dropped by
    :func:`eliminate_dead`.  Nodes are visited in order, so chains fold whole.
    """
    from mmconv.ir.evaluate import evaluate

    changed = 0
    keep: list[Node] = []
    outputs = set(graph.outputs)
    order = toposort(graph.nodes, [*(v.name for v in graph.inputs), *graph.weights])
    for node in order:
        ins = [i for i in node.inputs if i]
        if (not ins or any(i not in graph.weights for i in ins) or outputs & set(node.outputs)
                or len(node.outputs) != 1 or len(ins) != len(node.inputs)):
            keep.append(node)
            continue
        arrays = [graph.weights[i] for i in ins]
        result = evaluate(node, arrays)
        limit = max(FOLD_MAX_GROWTH, sum(a.size for a in arrays))
        if result is None or result[0].size > limit:
            keep.append(node)
            continue
        out = node.outputs[0]
        graph.weights[out] = result[0]
        if graph.values:
            graph.values[out] = Value(out, result[0].dtype.name, tuple(result[0].shape))
        changed += 1
    if changed:
        graph.nodes = keep
        graph.rebuild_names()
    return changed


def folded_for_emit(graph: Graph) -> Graph:
    """``graph`` itself when no node reads weights only, else a folded copy of it.

    For emitters whose targets need static operands (a Keras or CNTK convolution
    kernel) or have no runtime input to compute a weights-only node from (a Keras
    functional model): graphs from other sources than our frontends (an IR file,
    another tool) may still hold such nodes.  The caller's graph is not modified;
    weights only folded nodes read are left out of the copy.
    """
    if not any(n.inputs and all(i in graph.weights for i in n.inputs) for n in graph.nodes):
        return graph
    copy = Graph(graph.name)
    copy.inputs = list(graph.inputs)
    copy.outputs = list(graph.outputs)
    copy.nodes = [Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs))
                  for n in graph.nodes]
    copy.weights = dict(graph.weights)
    copy.metadata = dict(graph.metadata)
    copy.values = dict(graph.values)
    copy.rebuild_names()
    if fold_constants(copy):
        read = {i for n in copy.nodes for i in n.inputs} | set(copy.outputs)
        copy.weights = {k: v for k, v in copy.weights.items() if k in read}
        copy.values = {k: v for k, v in copy.values.items()
                       if k not in graph.weights or k in copy.weights}
        copy.rebuild_names()
    return copy


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
    fold_constants(graph)
    fuse_lrn(graph)
    fuse_bias(graph)
    eliminate_dead(graph)
    return graph
