"""Sequence reversals folded away: into a Scan's direction, into each other, into a pick.

A backward recurrence reaches the IR from TensorFlow as ``reverse(x) -> forward loop
-> reverse(y)`` (tf2onnx's ``ReverseSequence`` around a ``while_loop`` for
``go_backwards`` and ``Bidirectional``), the reversals being Slices with step -1 on
the time axis.  Targets whose time axis is a dynamic sequence axis (CNTK) cannot
reverse it, and every target runs a backward loop natively, so:

- a **Scan** whose scan inputs are all reversed on the time axis (axis 1) reads
  them unreversed with its ``reverse`` flipped, and each scan output is reversed
  after it instead (the same values: step t of the forward loop over the reversed
  sequence is step T-1-t of the backward loop); done only when that removes at
  least as many reversals as it adds;
- two reversals of the same axis in a row cancel;
- the first (last) element of a reversed axis is the last (first) element of the
  original: ``reverse(y)[:, -1:]`` is ``y[:, :1]`` (a go_backwards layer's output);
- an **LSTM/GRU/RNN** (one direction, no ``sequence_lens``) reading a time-reversed X
  reads it unreversed with its direction swapped, and its Y is reversed after it
  instead (its final states are the same); done when the reversal goes (this node its
  only reader), Y being reversed only if read: a Keras ``go_backwards`` sequence
  feeding a layer that returns its last output loses its reversal, one feeding
  another ``go_backwards`` layer cancels with that one's;
- a reversal read only by a **per-step** node (elementwise, a Dense-like MatMul by a
  2-d weight, an elementwise op with a weight constant along the axis, a softmax over
  another axis, a Reshape keeping the axes up to it) moves after that node, where it
  may meet one of the above: ``op(reverse(x)) = reverse(op(x))``.

A rewrite never adds reversals, and each moves one downstream, so the pass settles.
Exact (no arithmetic changes).  The body of a Scan is not touched.
"""

from __future__ import annotations

from mmconv.ir.core import Graph, Node, Value
from mmconv.ir.ops.loop import scan_layout
from mmconv.ir.registry import check_node
from mmconv.ir.usedef import UseDef

#: A Slice bound at or beyond this (either sign) reaches the end of any axis.
FAR = 2**31 - 1

#: Ops acting on each element alone: a reversal of any axis commutes with them.
ELEMENTWISE = frozenset({
    "Identity", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round",
    "Sign", "Erf", "Sin", "Cos", "Clip", "Cast", "Relu", "Sigmoid", "Tanh", "Softplus",
    "Elu", "Selu", "LeakyRelu", "HardSigmoid", "HardSwish", "Softsign", "Mish", "Gelu"})
#: Elementwise ops of two operands (with numpy broadcasting).
BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"})
#: Ops normalising along their ``axis`` attribute only.
ALONG_AXIS = frozenset({"Softmax", "LogSoftmax", "Hardmax"})
#: The batch-major recurrent ops ([N, T, ...] X, Y [N, T, num_directions, H]).
RECURRENT = frozenset({"LSTM", "GRU", "RNN"})


def _one_axis(graph: Graph, node: Node) -> tuple[int, int, int, int] | None:
    """(axis, start, end, step) of a Slice along one axis, or None."""
    value = graph.values.get(node.inputs[0])
    if node.op != "Slice" or len(node.attr("starts")) != 1 or value is None:
        return None  # no shape yet: a Slice this sweep made, seen on the next one
    rank = len(value.shape)
    axes = node.attr("axes") or (0,)
    steps = node.attr("steps") or (1,)
    axis = int(axes[0]) + rank if int(axes[0]) < 0 else int(axes[0])
    return axis, int(node.attr("starts")[0]), int(node.attr("ends")[0]), int(steps[0])


def whole_reversal(start: int, end: int, step: int) -> bool:
    """Whether a Slice ``start:end:step`` of one axis takes all of it back to front
    whatever its length (``[-1::-1]``, the end past the start of any axis)."""
    return step == -1 and (start == -1 or start >= FAR) and end <= -FAR


def reversed_axis(graph: Graph, node: Node | None) -> int | None:
    """The axis ``node`` reverses whole (a Slice ``[-1::-1]``), or None."""
    if node is None:
        return None
    one = _one_axis(graph, node)
    if one is None:
        return None
    axis, start, end, step = one
    return axis if whole_reversal(start, end, step) else None


def fold_reversals(graph: Graph) -> int:
    """Apply the rules of the module docstring once over the graph; returns the rewrites."""
    if not any(n.op == "Slice" for n in graph.nodes):
        return 0
    uses = UseDef(graph)
    changed = 0
    for node in list(graph.nodes):
        if uses.is_removed(node):
            continue
        if node.op == "Scan":
            changed += _into_scan(graph, node, uses)
        elif node.op in RECURRENT:
            changed += _into_recurrent(graph, node, uses)
        elif node.op == "Slice":
            changed += _cancel(graph, node, uses)
        else:
            changed += _sink(graph, node, uses)
    uses.flush()
    if changed:
        graph.rebuild_names()  # the pass manager re-infers shapes (and the node order)
    return changed


def _into_scan(graph: Graph, node: Node, uses: UseDef) -> int:
    s, _, k = scan_layout(node)
    flips = [uses.producer(x) for x in node.inputs[s:]]
    if any(reversed_axis(graph, f) != 1 for f in flips):
        return 0
    removed = sum(uses.only_user(f.outputs[0]) is node for f in flips if f is not None)
    outs = node.outputs[s:]
    if any(o in uses.outputs for o in outs) or k > removed:
        return 0
    uses.set_inputs(node, [*node.inputs[:s], *(f.inputs[0] for f in flips if f is not None)])
    node.attrs["reverse"] = 1 - int(node.attr("reverse"))
    for y in outs:
        if uses.users(y):
            _reverse_after(graph, y, 1, uses)
    for f in flips:
        if f is not None and not uses.users(f.outputs[0]):
            uses.remove_node(f)
    return 1


def _reverse_after(graph: Graph, y: str, axis: int, uses: UseDef) -> None:
    """Every reader of ``y`` reads it reversed along ``axis`` instead (a new Slice, its
    value's shape known at once, so a reader later in this sweep can move it on)."""
    flipped = graph.new_name(f"{y}/reversed")
    uses.replace_all_uses(y, flipped)
    flip = Node(flipped, "Slice", [y], [flipped], {
        "starts": (-1,), "ends": (-(2**63),), "axes": (axis,), "steps": (-1,)})
    check_node(flip)
    uses.add_node(flip)
    value = graph.values.get(y)
    if value is not None:
        graph.values[flipped] = Value(flipped, value.dtype, value.shape)


def _into_recurrent(graph: Graph, node: Node, uses: UseDef) -> int:
    """reverse(X) -> forward LSTM is X -> reverse LSTM with Y reversed after, and back."""
    flip = uses.producer(node.inputs[0])
    if reversed_axis(graph, flip) != 1 or uses.only_user(flip.outputs[0]) is not node:
        return 0
    direction = node.attr("direction")
    y = node.outputs[0] if node.outputs else ""
    if direction == "bidirectional" or node.input(4) or (y and y in uses.outputs):
        return 0
    uses.set_inputs(node, [flip.inputs[0], *node.inputs[1:]])
    node.attrs["direction"] = "reverse" if direction == "forward" else "forward"
    if y and uses.users(y):
        _reverse_after(graph, y, 1, uses)
    uses.remove_node(flip)
    return 1


def _sink(graph: Graph, node: Node, uses: UseDef) -> int:
    """A reversal read only by the per-step ``node`` moves after it."""
    inputs = [x for x in node.inputs if x]
    found = [(i, uses.producer(x)) for i, x in enumerate(node.inputs) if x]
    flips = [(i, f) for i, f in found if f is not None and reversed_axis(graph, f) is not None]
    if len(flips) != 1 or len(node.outputs) != 1 or node.outputs[0] in uses.outputs:
        return 0
    i, flip = flips[0]
    axis = reversed_axis(graph, flip)
    if uses.only_user(flip.outputs[0]) is not node or inputs.count(flip.outputs[0]) != 1 \
            or axis is None or not _per_step(graph, node, i, axis):
        return 0
    uses.set_inputs(node, [flip.inputs[0] if k == i else x for k, x in enumerate(node.inputs)])
    _reverse_after(graph, node.outputs[0], axis, uses)
    uses.remove_node(flip)
    return 1


def _per_step(graph: Graph, node: Node, i: int, axis: int) -> bool:
    """Whether ``node`` computes each position of ``axis`` of its output from the same
    position of its input ``i`` alone, the same way at every position."""
    x = graph.values.get(node.inputs[i])
    if x is None:
        return False
    rank = len(x.shape)
    if node.op in ELEMENTWISE:
        return len(node.inputs) == 1
    if node.op in ALONG_AXIS:
        return int(node.attr("axis")) % rank != axis
    if node.op in BINARY:
        other = graph.weights.get(node.inputs[1 - i])
        if other is None or other.ndim > rank:
            return False
        at = axis - (rank - other.ndim)
        return at < 0 or other.shape[at] == 1
    if node.op == "MatMul":
        w = graph.weights.get(node.inputs[1])
        return i == 0 and w is not None and w.ndim == 2 and axis <= rank - 2
    if node.op == "Reshape":
        shape = list(node.attr("shape"))
        return len(shape) > axis and all(
            shape[k] == 0 or (x.shape[k] is not None and shape[k] == x.shape[k])
            for k in range(axis + 1))
    return False


def _cancel(graph: Graph, node: Node, uses: UseDef) -> int:
    """A Slice reading a reversal of the same axis: both go, or the pick moves."""
    src = uses.producer(node.inputs[0])
    axis = reversed_axis(graph, src)
    one = _one_axis(graph, node)
    if src is None or axis is None or one is None or one[0] != axis:
        return 0
    out = node.outputs[0]
    if reversed_axis(graph, node) == axis:
        if out in uses.outputs:  # keeps its name: an Identity, which hands it upstream
            uses.set_inputs(node, [src.inputs[0]])
            node.op, node.attrs = "Identity", {}
            check_node(node)
        else:
            uses.replace_all_uses(out, src.inputs[0])
            uses.remove_node(node)
    elif one[1:] in ((-1, FAR, 1), (-1, 2**63 - 1, 1), (0, 1, 1)):
        # the last element of the reversed axis is the first of the original, and back
        first = one[1] == -1
        uses.set_inputs(node, [src.inputs[0]])
        node.attrs["starts"], node.attrs["ends"] = ((0,), (1,)) if first else ((-1,), (FAR,))
    else:
        return 0
    if not uses.users(src.outputs[0]) and src.outputs[0] not in uses.outputs:
        uses.remove_node(src)
    return 1
