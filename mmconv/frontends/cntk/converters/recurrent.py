"""Recurrences and sequence ends: the synthetic functions :mod:`..recurrence` makes.

A recognised ``Recurrence(LSTM/GRU/RNNStep)`` loop arrives as one function holding
the ONNX-ordered weights (:class:`~mmconv.frontends.cntk.recurrence.Cell`); it
becomes one IR ``LSTM``/``GRU``/``RNN`` node on the ``[batch, time, features]``
sequence, its ``Y`` ``[batch, time, 1, H]`` reshaped to CNTK's ``[batch, time, H]``.
``sequence.first``/``last`` become a Slice of one step on the time axis and a
Reshape dropping that axis; ``sequence.reduce_sum``/``reduce_max`` (and the other
reductions CNTK saves as a ``Sequence::ReduceElements`` block) an IR reduction over
the time axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.converters import BLOCK_CONVERTERS, CONVERTERS
from mmconv.frontends.cntk.converters._util import finish, sample_shape, unsupported
from mmconv.frontends.cntk.model import Axis
from mmconv.frontends.cntk.recurrence import CELL_OP, STEP_OP, Cell

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit

#: Slice end meaning "to the end" (ONNX clamps it).
_END = 2**31 - 1


@CONVERTERS.register(CELL_OP)
def convert_cell(ctx: Context, unit: Unit) -> None:
    cell: Cell = unit.attrs["cell"]
    name = ctx.graph.unique_name(f"{unit.attrs.get('label') or cell.kind.lower()}/{cell.kind}")
    x = ctx.input(unit.inputs[0], unit, name)
    if not ctx.is_sequence(x):
        raise unsupported(ctx, unit, "a recurrence over a value without a sequence axis")
    sample = sample_shape(ctx, x)
    if len(sample) != 1 or sample[0] != cell.W.shape[2]:
        raise unsupported(ctx, unit, f"a recurrence over samples of shape {list(sample)} "
                          f"(the cell takes {cell.W.shape[2]} features)")
    weights = [ctx.constant(ctx.graph.unique_name(f"{name}/{p}"), a)
               for p, a in (("W", cell.W), ("R", cell.R), ("B", cell.B))]
    attrs: dict[str, object] = {"hidden_size": cell.hidden, "direction": cell.direction}
    states = [_state(ctx, unit, name, uid, cell) if uid else "" for uid in cell.initial]
    if any(states):  # RecurrenceFrom: initial_h (and initial_c) [N, 1, H]
        weights += ["", *states]
    if cell.kind == "LSTM" and cell.P is not None:
        weights += [""] * (6 - len(weights)) + [
            ctx.constant(ctx.graph.unique_name(f"{name}/P"), cell.P)]
    # activations are listed once per direction (a merged pair's directions are alike)
    nd = 2 if cell.direction == "bidirectional" else 1
    if cell.kind == "RNN":
        attrs["activations"] = (cell.activation,) * nd
    elif cell.activation != "Tanh":
        g = cell.activation
        attrs["activations"] = (("Sigmoid", g, g) if cell.kind == "LSTM" else ("Sigmoid", g)) * nd
    y = ctx.add(cell.kind, [x, *weights], name, **attrs)
    # Y [N, T, 1, H] -> CNTK's [N, T, H]; a merged bidirectional pair's [N, T, 2, H] is
    # the splice of the forward and the backward output, [N, T, 2H], named as the Splice
    out = ctx.node_name(unit) if unit.function.name else ctx.graph.unique_name(f"{name}_out")
    finish(ctx, unit, ctx.add("Reshape", [y], out, shape=(0, 0, nd * cell.hidden)))


def _state(ctx: Context, unit: Unit, name: str, uid: str, cell: Cell) -> str:
    """A computed initial state [N, H] (one per sequence) as ONNX's [N, 1, H]."""
    value = ctx.input(uid, unit, name)
    if ctx.is_sequence(value) or not ctx.batched(value) or \
            tuple(sample_shape(ctx, value)) != (cell.hidden,):
        raise unsupported(ctx, unit, f"an initial state of shape {list(ctx.shape(value))} "
                          f"(needs [batch, {cell.hidden}], no sequence axis)")
    return ctx.add("Reshape", [value], ctx.graph.unique_name(f"{name}/initial"),
                   shape=(0, 1, cell.hidden))


@CONVERTERS.register(STEP_OP)
def convert_sequence_step(ctx: Context, unit: Unit) -> None:
    """``sequence.first`` (index 0) / ``last`` (index -1): one time step, time axis dropped."""
    name = ctx.node_name(unit)
    x = ctx.input(unit.inputs[0], unit, name)
    if not ctx.is_sequence(x):
        raise unsupported(ctx, unit, "sequence.first/last of a value without a sequence axis")
    index = int(unit.attrs["index"])
    step = ctx.add("Slice", [x], ctx.graph.unique_name(f"{name}/step"), starts=(index,),
                   ends=(index + 1 if index != -1 else _END,), axes=(1,))
    out = ctx.add("Reshape", [step], name, sequence=False,
                  shape=(0, *sample_shape(ctx, x)))
    finish(ctx, unit, out)


#: ReduceElements reductions -> IR ops, over the sequence axis.
_SEQUENCE_REDUCE = {"Sum": "ReduceSum", "Max": "ReduceMax", "Min": "ReduceMin",
                    "Mean": "ReduceMean", "Prod": "ReduceProd", "LogSum": "ReduceLogSumExp"}


@BLOCK_CONVERTERS.register("Sequence::ReduceElements")
def convert_sequence_reduce(ctx: Context, unit: Unit) -> None:
    """``sequence.reduce_sum/max`` (CNTK 2.7 saves a block: ``UnpackSequence`` padded with
    0 or -inf, then a ReduceElements over the unpacked time axis): one IR reduction over
    axis 1.  Sequences are equally long here, so the padding never counts."""
    root = unit.function
    kind = str(root.attrs.get("reductionOpName", ""))
    name = ctx.node_name(unit)
    x = ctx.input(unit.inputs[0], unit, name) if len(unit.inputs) == 1 else ""
    if root.op != "ReduceElements" or kind not in _SEQUENCE_REDUCE:
        raise unsupported(ctx, unit, f"a sequence reduction by {root.op} {kind!r}")
    if not ctx.is_sequence(x):
        raise unsupported(ctx, unit, "a sequence reduction of a value without a sequence axis")
    axis = root.attrs.get("axis")
    if not isinstance(axis, Axis) or axis.static_index != len(sample_shape(ctx, x)):
        raise unsupported(ctx, unit, f"a reduction of the unpacked sequence over {axis!r}")
    keep = bool(root.attrs.get("reductionKeepDimensions", False))
    finish(ctx, unit, ctx.add(_SEQUENCE_REDUCE[kind], [x], name, sequence=False, axes=(1,),
                              keepdims=keep))


@CONVERTERS.register("UnpackSequence")
def convert_unpack(ctx: Context, unit: Unit) -> None:
    """``sequence.unpack(x, padding, suppress_mask_output=True)``: the same
    ``[batch, time, *sample]`` array, the time axis now a static one (equal lengths: no
    padding).  The mask output is not supported."""
    name = ctx.node_name(unit)
    if len(unit.inputs) != 1 or len(unit.outputs) != 1:
        raise unsupported(ctx, unit, "sequence.unpack with its mask output")
    x = ctx.input(unit.inputs[0], unit, name)
    if not ctx.is_sequence(x):
        raise unsupported(ctx, unit, "sequence.unpack of a value without a sequence axis")
    finish(ctx, unit, ctx.add("Identity", [x], name, sequence=False, batched=True))
