"""The layout pass: Transposes cancelled, merged and sunk so only model boundaries keep one.

The IR is channels-first.  A channels-last source arrives full of Transposes:
tf2onnx writes ``Transpose(NHWC->NCHW) -> Conv -> Transpose(NCHW->NHWC)`` around
each convolution (and leaves some its own optimizer cannot move), a layer-wise
Keras import wraps each spatial layer the same way.  Emitted as they are, those
Transposes cost time in every target and make the generated code unreadable.
This pass removes them the way tf2onnx's and onnxruntime's transpose optimizers
do, by moving each Transpose *down* through ops that do not care about layout
until it meets its inverse:

- **compose**: ``Transpose(Transpose(x, p0), p)`` is one ``Transpose(x, p0[p])``;
  when that is the identity the pair vanishes (``x`` is used directly).
- **sink**: an op whose layout-carrying inputs are all ``Transpose(., p)`` (or
  weights, which are permuted instead, or single values) is computed on the
  untransposed inputs, with its axis attributes remapped, and one Transpose
  follows it: unary elementwise ops and activations, broadcasting binary ops,
  Softmax-like and reduce ops (``axis``/``axes``), Concat, Pad, Slice, Tile,
  Reshapes that only split/merge axes contiguous in the untransposed tensor
  (tf2onnx's NHWC upsampling), and BatchNormalization/LRN when the channel axis
  stays in place.  A sink is done
  only when it removes at least one Transpose, so it never adds one.  A Transpose
  read by several such ops is split into one per reader first, but only when a
  copy can cancel (a reader is a Transpose, or a binary op or Concat where the
  copies meet again, as in swish's ``x * sigmoid(x)``, or the readers start chains
  of one-input ops that all end in one such op, as tf2onnx's per-direction
  ``Slice -> Squeeze -> Concat`` after a bidirectional LSTM): splitting for readers
  that would only carry a copy to a model output would add Transposes.
- **flatten into Dense**: ``Transpose -> Flatten (or a [N, -1] Reshape) -> Dense``
  (or ``MatMul`` by a constant) flattens the untransposed tensor and permutes the
  weight's rows instead -- the NHWC flatten before a classifier.

What is left are Transposes next to model inputs and outputs (the source's
layout is kept at the boundary) and before ops the pass cannot move through.
Inference-equivalent by construction; numbers are unchanged but for the order
of nothing (no arithmetic is reassociated).

:func:`channels_first_boundaries` (not a default pass: it changes the model's
interface, so a frontend runs it when the user asks, ``--channelsFirstIO``) then
removes those boundary Transposes by re-declaring inputs and outputs
channels-first, and says per value what changed so verifiers can feed the source
in its own layout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mmconv.ir.core import Graph, Node, Value
from mmconv.ir.registry import check_node, get_schema
from mmconv.ir.usedef import UseDef

log = logging.getLogger(__name__)

#: One input, elementwise, no axis: layout does not matter to them.
UNARY = frozenset({
    "Abs", "Cast", "Ceil", "Clip", "Cos", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid",
    "HardSwish", "Identity", "LeakyRelu", "Log", "Mish", "Neg", "Not", "Reciprocal", "Relu",
    "Round", "Selu", "Sigmoid", "Sign", "Sin", "Softplus", "Softsign", "Sqrt", "Tanh",
})
#: Elementwise with numpy broadcasting over all inputs.
BROADCAST = frozenset({
    "Add", "And", "Div", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Max",
    "Min", "Mod", "Mul", "Or", "PRelu", "Pow", "Sub", "Where", "Xor",
})
#: One ``axis`` attribute, output shaped like the input.
AXIS = frozenset({"CumSum", "Hardmax", "LogSoftmax", "Softmax"})
#: ``axis`` + ``keepdims``.
ARG = frozenset({"ArgMax", "ArgMin"})
#: ``axes`` (empty = all) + ``keepdims``.
REDUCE = frozenset({
    "ReduceL2", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd",
    "ReduceSum",
})
#: Per-channel ops on axis 1: movable when the permutation leaves axis 1 where it is.
CHANNEL = frozenset({"BatchNormalization", "LRN"})
SINKABLE = UNARY | BROADCAST | AXIS | ARG | REDUCE | CHANNEL | {
    "Concat", "Pad", "Reshape", "Slice", "Tile"}

Perm = tuple[int, ...]


def optimize_layout(graph: Graph) -> int:
    """Cancel, merge and sink Transposes (see the module docstring); returns the rewrites.

    Needs inferred shapes; the pass manager re-infers them after it.
    """
    if not any(n.op == "Transpose" for n in graph.nodes):
        return 0  # the common case (channels-first sources): one cheap look
    changed = 0
    uses = UseDef(graph)
    for node in list(graph.nodes):
        if uses.is_removed(node):  # by an earlier rewrite of this sweep
            continue
        if node.op == "Transpose":
            done = _compose(graph, node, uses) or _split(graph, node, uses)
        elif node.op in SINKABLE:
            done = _sink(graph, node, uses)
        elif node.op in ("Dense", "MatMul"):
            done = _flatten_into_dense(graph, node, uses)
        else:
            done = False
        changed += done
    # every edit went through ``uses`` (index kept current, O(uses) per edit): the
    # graph is made whole once here, not after each rewrite
    uses.flush()
    if changed:
        graph.rebuild_names()
    return changed


# -- helpers ---------------------------------------------------------------------------
def _perm(node: Node) -> Perm:
    return tuple(int(p) for p in node.attr("perm"))


def _inverse(perm: Perm) -> Perm:
    return tuple(int(i) for i in np.argsort(perm))


def _rank(graph: Graph, name: str) -> int | None:
    value = graph.values.get(name)
    return None if value is None else value.rank


def _infer(graph: Graph, node: Node) -> None:
    """Shapes of ``node``'s outputs from its inputs' (nodes are rewritten one at a time,
    so later rewrites of the same sweep see current shapes)."""
    schema = get_schema(node.op)
    ins = [graph.values[i] if i else None for i in node.inputs]
    assert schema.infer is not None
    for out, (dtype, shape) in zip(node.outputs, schema.infer(node, ins), strict=False):
        graph.values[out] = Value(out, dtype, tuple(shape))


def _add_transpose(graph: Graph, uses: UseDef, source: str, perm: Perm, output: str) -> Node:
    """A Transpose node producing ``output`` (a name already reserved)."""
    node = Node(output, "Transpose", [source], [output], {"perm": tuple(perm)})
    check_node(node)
    uses.add_node(node)
    _infer(graph, node)
    return node


def _new_weight(graph: Graph, base: str, array: np.ndarray) -> str:
    name = graph.unique_name(base)
    graph.add_weight(name, np.ascontiguousarray(array))
    return name


# -- compose ---------------------------------------------------------------------------
def _compose(graph: Graph, node: Node, uses: UseDef) -> bool:
    """``Transpose(Transpose(x))`` -> one Transpose, or nothing when it is the identity."""
    inner = uses.producer(node.inputs[0])
    if inner is None or inner.op != "Transpose":
        return False
    p0, p = _perm(inner), _perm(node)
    if len(p0) != len(p):
        return False
    composed = tuple(p0[i] for i in p)
    source, out = inner.inputs[0], node.outputs[0]
    if composed == tuple(range(len(p))):
        if out in uses.outputs:
            # the output's name must stay; remove_identities hands it to x's producer
            node.op, node.attrs = "Identity", {}
            uses.set_inputs(node, [source])
        else:
            uses.remove_node(node)
            uses.replace_all_uses(out, source)
    else:
        uses.set_inputs(node, [source])
        node.attrs = {"perm": composed}
    _drop_if_unused(uses, inner)
    return True


def _drop_if_unused(uses: UseDef, node: Node) -> None:
    """Remove ``node`` when nothing reads its outputs any more (a Transpose whose readers
    were all rewired)."""
    if not uses.is_removed(node) and not any(
            uses.users(o) or o in uses.outputs for o in node.outputs):
        uses.remove_node(node)


# -- split -----------------------------------------------------------------------------
def _split(graph: Graph, node: Node, uses: UseDef) -> bool:
    """A Transpose read by several ops that could all absorb it becomes one per reader,
    so each can sink on its own (they meet again below, or cancel)."""
    out = node.outputs[0]
    users = uses.users(out)
    if out in uses.outputs or len(users) < 2 or len({id(u) for u in users}) < 2:
        return False
    p = _perm(node)
    if not all(u.op == "Transpose" or _merge_point(graph, u, out, uses)
               or (_plan(graph, u, uses, p, check_single=False) is not None
                   and _remap_attrs(graph, u, p) is not None)
               for u in users):
        return False
    # Copies pay off where one cancels: against a reader that is a Transpose, or merged
    # with another copy at a binary op or Concat reading two runtime values (swish's
    # ``x * sigmoid(x)``, a residual Add).  Readers that would only carry their copy
    # down to an output are left alone.
    if not any(u.op == "Transpose" or _merge_point(graph, u, out, uses) for u in users) \
            and not _chains_meet(graph, users, p, out, uses):
        return False
    seen: set[int] = {id(users[0])}
    for user in list(users[1:]):
        if id(user) in seen:
            continue
        seen.add(id(user))
        copy = _add_transpose(graph, uses, node.inputs[0], p, graph.new_name(f"{out}_copy"))
        uses.set_inputs(user, [copy.outputs[0] if i == out else i for i in user.inputs])
    return True


#: How far back :func:`_merge_point` looks for the split value (nodes visited).
MERGE_SEARCH = 64
#: How many one-input ops :func:`_chains_meet` follows down from each reader.
CHAIN_SEARCH = 8


def _chains_meet(graph: Graph, users: list[Node], p: Perm, value: str, uses: UseDef) -> bool:
    """True when every reader starts a chain of one-input sinkable ops (each the only
    reader of the one before) that all end in the same merge point, arriving with the
    same permutation: copies sunk down each chain meet and sink on together.  What
    tf2onnx writes after a bidirectional LSTM: ``Transpose -> Slice -> Squeeze`` per
    direction, then ``Concat``."""
    ends = set()
    for user in users:
        node, perm = user, p
        for _ in range(CHAIN_SEARCH):
            if _merge_point(graph, node, value, uses):
                break
            if node.op not in SINKABLE or len(_data_inputs(node)) != 1 or \
                    node.outputs[0] in uses.outputs:
                return False
            remapped = _remap_attrs(graph, node, perm)
            nxt = uses.only_user(node.outputs[0])
            if remapped is None or nxt is None:
                return False
            node, perm = nxt, remapped[1]
        else:
            return False
        ends.add((id(node), perm))
    return len(ends) == 1


def _merge_point(graph: Graph, node: Node, value: str, uses: UseDef) -> bool:
    """True when ``node`` is a binary op or Concat whose runtime inputs all derive from
    ``value``: copies of a Transpose of ``value`` sent down each branch meet there again
    (swish's ``x * sigmoid(x)``, a residual ``x + f(x)``).  An input from elsewhere (a
    model input in the source layout) would leave a copy stuck, so that is no merge."""
    if node.op not in BROADCAST and node.op != "Concat":
        return False
    others = [i for i in node.inputs if i and i not in graph.weights and i != value]
    if not others:
        return False
    for start in others:
        stack, seen, found = [start], set(), False
        while stack and len(seen) < MERGE_SEARCH:
            name = stack.pop()
            if name == value:
                found = True
                break
            if name in seen:
                continue
            seen.add(name)
            prod = uses.producer(name)
            if prod is not None:
                stack.extend(i for i in prod.inputs if i and i not in graph.weights)
        if not found:
            return False
    return True


# -- sink ------------------------------------------------------------------------------
def _plan(graph: Graph, node: Node, uses: UseDef, perm: Perm | None = None,
          check_single: bool = True) -> tuple[Perm, list[str | np.ndarray | None]] | None:
    """How ``node``'s inputs are rewritten to sink the Transposes feeding it, or None.

    Returns the permutation and, per input, the new input name, an array to add as a
    permuted weight, or None to keep the input as it is.
    """
    if node.op not in SINKABLE:
        return None
    data = _data_inputs(node)
    transposes = [uses.producer(node.inputs[i]) for i in data]
    perms = {_perm(t) for t in transposes if t is not None and t.op == "Transpose"}
    if perm is not None:
        perms.add(perm)
    if len(perms) != 1:
        return None
    p = perms.pop()
    r = len(p)
    out_rank = _rank(graph, node.outputs[0])
    if out_rank is None:
        return None
    if node.op not in REDUCE | ARG | {"Reshape"} and out_rank != r:
        return None
    if node.op in CHANNEL and (r < 2 or p[1] != 1 or p[0] != 0):
        return None
    inv = _inverse(p)
    plan: list[str | np.ndarray | None] = [None] * len(node.inputs)
    single = 0
    for i in data:
        name = node.inputs[i]
        if not name:
            continue
        prod = uses.producer(name)
        if prod is not None and prod.op == "Transpose" and _perm(prod) == p:
            plan[i] = prod.inputs[0]
            if uses.only_user(name) is node:
                single += 1
            continue
        if name in graph.weights:
            array = graph.weights[name]
            if array.size == 1:
                continue  # a single value broadcasts the same in any layout
            if array.ndim > r or node.op not in BROADCAST | {"Concat"}:
                return None
            full = array.reshape((1,) * (r - array.ndim) + array.shape)
            plan[i] = full.transpose(inv)
            continue
        return None  # a runtime value in another layout: would need a Transpose of its own
    if perm is not None and not check_single:
        # called by _split: the split Transpose is an input of ``node`` by construction
        return p, plan
    if single == 0:  # would add a Transpose after node without removing one before it
        return None
    return p, plan


def _data_inputs(node: Node) -> list[int]:
    """Positions of the inputs whose layout follows the output's (the rest, like
    BatchNormalization's per-channel parameters, are layout-free)."""
    if node.op in BROADCAST or node.op == "Concat":
        return list(range(len(node.inputs)))
    return [0]


def _sink(graph: Graph, node: Node, uses: UseDef) -> bool:
    planned = _plan(graph, node, uses)
    if planned is None:
        return False
    p, plan = planned
    attrs = _remap_attrs(graph, node, p)
    if attrs is None:
        return False
    new_attrs, out_perm = attrs
    before = [uses.producer(node.inputs[i]) for i, item in enumerate(plan) if isinstance(item, str)]
    inputs = list(node.inputs)
    for i, item in enumerate(plan):
        if isinstance(item, np.ndarray):
            inputs[i] = _new_weight(graph, f"{node.inputs[i]}/transposed", item)
        elif item is not None:
            inputs[i] = item
    uses.set_inputs(node, inputs)
    node.attrs = new_attrs
    check_node(node)
    out = node.outputs[0]
    if out_perm == tuple(range(len(out_perm))):
        _infer(graph, node)
    elif out in uses.outputs:
        uses.set_outputs(node, [graph.new_name(f"{out}_untransposed")])
        _infer(graph, node)
        _add_transpose(graph, uses, node.outputs[0], out_perm, out)
    else:
        moved = graph.new_name(f"{out}_transposed")
        uses.replace_all_uses(out, moved)
        _infer(graph, node)
        _add_transpose(graph, uses, out, out_perm, moved)
    for transpose in before:
        if transpose is not None:
            _drop_if_unused(uses, transpose)
    return True


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _remap_attrs(graph: Graph, node: Node, p: Perm) -> tuple[dict, Perm] | None:
    """``node``'s attributes for the untransposed input, and the Transpose after it."""
    r = len(p)
    attrs = dict(node.attrs)
    op = node.op
    if op in UNARY or op in BROADCAST or op in CHANNEL:
        return attrs, p
    if op in AXIS or op == "Concat":
        attrs["axis"] = p[_axis(int(node.attr("axis")), r)]
        return attrs, p
    if op == "Pad":
        pads = [int(x) for x in node.attr("pads")]
        if len(pads) != 2 * r:
            return None
        new = [0] * (2 * r)
        for i in range(r):
            new[p[i]], new[r + p[i]] = pads[i], pads[r + i]
        attrs["pads"] = tuple(new)
        return attrs, p
    if op == "Tile":
        repeats = [int(x) for x in node.attr("repeats")]
        if len(repeats) != r:
            return None
        new = [1] * r
        for i in range(r):
            new[p[i]] = repeats[i]
        attrs["repeats"] = tuple(new)
        return attrs, p
    if op == "Reshape":
        return _remap_reshape(graph, node, p)
    if op == "Slice":
        starts = node.attr("starts")
        axes = node.attr("axes") or tuple(range(len(starts)))
        attrs["axes"] = tuple(p[_axis(int(a), r)] for a in axes)
        return attrs, p
    if op in ARG or op in REDUCE:
        if op in ARG:
            reduced = {_axis(int(node.attr("axis")), r)}
            attrs["axis"] = p[next(iter(reduced))]
        else:
            axes = node.attr("axes")
            reduced = {_axis(int(a), r) for a in axes} if axes else set(range(r))
            if axes:
                attrs["axes"] = tuple(sorted(p[a] for a in reduced))
        if bool(node.attr("keepdims")):
            return attrs, p
        kept = [i for i in range(r) if i not in reduced]
        order = sorted(p[i] for i in kept)
        return attrs, tuple(order.index(p[i]) for i in kept)
    return None


def _reshape_groups(src: Sequence[int | None], dst: Sequence[int | None]
                    ) -> list[tuple[list[int], list[int]]] | None:
    """Pair runs of ``src`` axes with the runs of ``dst`` axes a row-major reshape maps
    them to (equal products); size-1 axes may pair with nothing (squeeze/unsqueeze).
    None when the reshape mixes axes otherwise or a dynamic axis is not kept alone."""
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(src) or j < len(dst):
        a = src[i] if i < len(src) else -1
        b = dst[j] if j < len(dst) else -1
        if a is None and b is None:
            groups.append(([i], [j]))
            i, j = i + 1, j + 1
        elif a == 1 and b is None:  # a squeezed size-1 axis before a dynamic one
            groups.append(([i], []))
            i += 1
        elif b == 1 and a is None:
            groups.append(([], [j]))
            j += 1
        elif a is None or b is None:
            return None
        elif a == 1 and b == 1:
            groups.append(([i], [j]))
            i, j = i + 1, j + 1
        elif a == 1:
            groups.append(([i], []))
            i += 1
        elif b == 1:
            groups.append(([], [j]))
            j += 1
        elif a == -1 or b == -1:
            return None
        else:
            gi, gj, pa, pb = [i], [j], a, b
            i, j = i + 1, j + 1
            while pa != pb:
                if pa < pb and i < len(src) and src[i] is not None:
                    pa *= src[i]  # type: ignore[operator]
                    gi.append(i)
                    i += 1
                elif pb < pa and j < len(dst) and dst[j] is not None:
                    pb *= dst[j]  # type: ignore[operator]
                    gj.append(j)
                    j += 1
                else:
                    return None
            groups.append((gi, gj))
    return groups


def _remap_reshape(graph: Graph, node: Node, p: Perm) -> tuple[dict, Perm] | None:
    """A Reshape after ``Transpose(z, p)`` that only splits and merges axes which stay
    contiguous (in order) in ``z`` is the same reshape of ``z`` (runs in z's order) and a
    Transpose of whole runs after it: how tf2onnx's NHWC Unsqueeze/Tile/Reshape
    upsampling and space-to-depth patterns move out of the way."""
    y = graph.values.get(node.inputs[0])
    o = graph.values.get(node.outputs[0])
    if y is None or o is None or len(y.shape) != len(p):
        return None
    groups = _reshape_groups(y.shape, o.shape)
    if groups is None:
        return None
    n_dynamic = sum(d is None for d in o.shape)
    keys: list[tuple[int, int]] = []
    for k, (gi, _) in enumerate(groups):
        if gi:
            run = [p[i] for i in gi]
            if run != list(range(run[0], run[0] + len(run))):
                return None
            keys.append((run[0], 0))
        else:  # an inserted size-1 axis rides after the run before it
            keys.append((keys[-1][0], keys[-1][1] + 1) if keys else (-1, k))
    order = sorted(range(len(groups)), key=lambda k: keys[k])
    new_shape: list[int] = []
    position: dict[int, int] = {}
    for k in order:
        for j in groups[k][1]:
            position[j] = len(new_shape)
            d = o.shape[j]
            if d is not None:
                new_shape.append(int(d))
            elif n_dynamic == 1:
                new_shape.append(-1)
            elif len(groups[k][0]) == 1 and p[groups[k][0][0]] == len(new_shape):
                new_shape.append(0)  # several dynamic axes (batch, time), each kept in place
            else:
                return None
    attrs = dict(node.attrs)
    attrs["shape"] = tuple(new_shape)
    return attrs, tuple(position[j] for j in range(len(o.shape)))


# -- flatten into Dense ----------------------------------------------------------------
def _flatten_into_dense(graph: Graph, node: Node, uses: UseDef) -> bool:
    """``Dense(Flatten(Transpose(z, p)), W)`` -> ``Dense(Flatten(z), W with permuted
    rows)``: the classifier of a channels-last CNN flattens NHWC; flattening NCHW and
    reordering the weight once is the same function without the Transpose."""
    flat = uses.producer(node.inputs[0])
    weight = node.inputs[1] if len(node.inputs) > 1 else ""
    if flat is None or flat.op not in ("Flatten", "Reshape") or weight not in graph.weights:
        return False
    readers = uses.users(weight)
    if uses.only_user(flat.outputs[0]) is not node or len(readers) != 1 or readers[0] is not node:
        return False
    trans = uses.producer(flat.inputs[0])
    if trans is None or trans.op != "Transpose" or uses.only_user(trans.outputs[0]) is not flat:
        return False
    p = _perm(trans)
    z = graph.values.get(trans.inputs[0])
    y = graph.values.get(flat.outputs[0])
    if z is None or y is None or p[0] != 0 or y.rank != 2 or None in z.shape[1:]:
        return False
    if flat.op == "Flatten" and _axis(int(flat.attr("axis")), z.rank) != 1:
        return False
    features = int(np.prod(z.shape[1:], dtype=np.int64))
    if y.shape[1] != features or y.shape[0] != z.shape[0]:
        return False
    w = graph.weights[weight]
    # position k of the NHWC-flattened vector holds element order[k] of the NCHW-flattened one
    order = np.arange(features).reshape(z.shape[1:]).transpose(
        [i - 1 for i in p[1:]]).reshape(-1)
    if node.op == "Dense" and w.ndim == 2 and w.shape[1] == features:
        new = np.empty_like(w)
        new[:, order] = w
    elif node.op == "MatMul" and w.ndim == 2 and w.shape[0] == features:
        new = np.empty_like(w)
        new[order, :] = w
    else:
        return False
    graph.weights[weight] = new
    uses.set_inputs(flat, [trans.inputs[0]])
    _drop_if_unused(uses, trans)
    return True


def count_transposes(graph: Graph) -> int:
    """How many Transpose nodes ``graph`` has (what the pass minimizes)."""
    return sum(1 for n in graph.nodes if n.op == "Transpose")


# -- channels-first model boundaries -----------------------------------------------------
def channels_first(rank: int) -> Perm:
    """NHWC -> NCHW for any rank: ``(0, r-1, 1, ..., r-2)``."""
    return (0, rank - 1, *range(1, rank - 1))


def channels_first_boundaries(graph: Graph) -> tuple[dict[str, Perm], dict[str, Perm]]:
    """Make a channels-last model's inputs and outputs channels-first (``--channelsFirstIO``).

    After :func:`optimize_layout` a channels-last source keeps one Transpose per
    feature-map input (NHWC -> NCHW, perm ``(0, r-1, 1, ..., r-2)``) and, on a
    feature-map output, one back.  Here an input of rank >= 3 whose every reader is
    such a Transpose is re-declared in the transposed shape and the Transposes go
    (their readers read the input); an output produced by the inverse Transpose is
    given to that Transpose's input (the output keeps its name).  A rank >= 3 input
    read otherwise is kept as it is, with one warning naming it (the model then has
    that input in the source's layout).

    Returns ``(inputs, outputs)``: the changed values by name with the permutation
    from the source's layout to the IR's (``ir = source.transpose(perm)``).  Leaves
    Identity nodes only where an output name must survive; shapes are re-inferred by
    the caller (the pass manager, :func:`mmconv.frontends.base.finish_graph`).
    """
    from mmconv.ir.passes.identities import remove_identities  # sibling pass, no cycle

    uses = UseDef(graph)
    inputs: dict[str, Perm] = {}
    outputs: dict[str, Perm] = {}
    kept: list[str] = []
    for k, value in enumerate(graph.inputs):
        if value.rank < 3:
            continue
        perm = channels_first(value.rank)
        readers = uses.users(value.name)
        if (not readers or value.name in uses.outputs
                or not all(r.op == "Transpose" and _perm(r) == perm for r in readers)):
            kept.append(value.name)
            continue
        new = Value(value.name, value.dtype, tuple(value.shape[p] for p in perm))
        graph.inputs[k] = new
        graph.values[value.name] = new
        for reader in {id(r): r for r in readers}.values():
            out = reader.outputs[0]
            if out in uses.outputs:  # the name must stay: an Identity carries it
                reader.op, reader.attrs = "Identity", {}
            else:
                uses.remove_node(reader)
                uses.replace_all_uses(out, value.name)
        inputs[value.name] = perm
    for name in graph.outputs:
        node = uses.producer(name)
        if node is None or node.op != "Transpose" or uses.is_removed(node):
            continue
        p = _perm(node)
        if len(p) < 3 or p != _inverse(channels_first(len(p))) or uses.users(name):
            continue  # (a value also read inside the model stays as those readers want it)
        # the Transpose's input is the output now: remove_identities moves the name
        # onto its producer (or keeps the Identity where the value is read elsewhere)
        node.op, node.attrs = "Identity", {}
        outputs[name] = channels_first(len(p))
    uses.flush()
    if kept:
        log.warning("--channelsFirstIO: input%s %s kept in the source's layout (not read "
                    "only through a channels-last to channels-first Transpose)",
                    "s" if len(kept) > 1 else "", ", ".join(map(repr, kept)))
    if inputs or outputs:
        remove_identities(graph)
        graph.rebuild_names()
    return inputs, outputs
