"""Per-step ops on a sequence the IR cannot apply to ``[batch, time, *sample]``: a Scan.

A CNTK Convolution (Pooling, TransposeAxes, ...) on a sequence runs on every step's
sample, ``[C, H, W]``.  In the IR a sequence is ``[N, T, *sample]`` with N and T both
dynamic, so it cannot be reshaped to ``[N*T, *sample]`` (one free dimension per
Reshape), and these ops would read T as a sample axis.  They become a state-less IR
``Scan`` instead: its body applies them to the step ``[N, *sample]``, exactly what
CNTK computes, with time left dynamic.  The body is built by the same per-op
converters as the rest of the model (:class:`~.body.BodyContext`: nodes in the body,
weights outside), and takes in the longest run of consecutive units that can follow
the first one per step (``Convolution -> ReLU -> MaxPooling -> Dense``), so a
per-frame feature extractor is one loop, not one per op.  The outside values a run
reads are sequences (its scan inputs) and weights (read by name).
"""

from __future__ import annotations

from mmconv.frontends.cntk.body import BodyContext, _fresh
from mmconv.frontends.cntk.builder import Context, Unit, run_unit
from mmconv.frontends.cntk.loops import LOOP_OP, RECONCILE
from mmconv.frontends.cntk.model import DELAY_OPS
from mmconv.frontends.cntk.recurrence import CELL_OP, STEP_OP

#: Ops that see the sequence axis (recurrences, sequence reductions, broadcasts): never
#: in a per-step body.
SEQUENCE_OPS = frozenset({LOOP_OP, RECONCILE, CELL_OP, STEP_OP, "UnpackSequence",
                          "Combine", *DELAY_OPS})


def _per_step_op(unit: Unit) -> bool:
    return unit.op not in SEQUENCE_OPS and not unit.op.startswith("Sequence::")


def _outside(ctx: Context, run: list[Unit], unit: Unit) -> list[str] | None:
    """The sequences ``unit`` reads from before the run (the scan inputs); None if it
    reads another outside value (CNTK cannot combine a sequence with a per-sequence
    value without ``sequence.broadcast_as``, which ends a run, so that is a value
    without a batch axis computed at run time)."""
    produced = {o for u in run for o in u.outputs}
    out = []
    for uid in unit.inputs:
        if uid in produced or ctx.is_weight(uid):
            continue
        v = ctx.values.get(uid)
        if v is None or not ctx.is_sequence(v):
            return None
        out.append(uid)
    return out


def run_of(ctx: Context, units: list[Unit], start: int) -> list[Unit] | None:
    """The units from ``units[start]`` on that one per-step Scan computes: the first,
    then each next unit that is a per-step op reading a value of the run; None when
    the first one reads something a body cannot take."""
    run = [units[start]]
    if _outside(ctx, run[:0], run[0]) is None:
        return None
    for unit in units[start + 1:]:
        produced = {o for u in run for o in u.outputs}
        if not _per_step_op(unit) or not produced & set(unit.inputs) \
                or _outside(ctx, run, unit) is None:
            break
        run.append(unit)
    return run


def convert_per_step(ctx: Context, run: list[Unit], used_outside: set[str]) -> None:
    """``run`` (see :func:`run_of`) as one state-less IR ``Scan`` over the sequences it
    reads; its values that later units or the model's outputs read are the scan
    outputs."""
    first = run[0]
    label = ctx.layer_name(first, ctx.node_name(first))
    steps: list[str] = []
    for u in run:
        for uid in _outside(ctx, run, u) or []:
            if uid not in steps:
                steps.append(uid)
    outputs = [o for u in run for o in u.outputs if o in used_outside]
    taken: set[str] = set()
    ys = [_fresh(ctx.graph, _name_of(run, uid, label), taken) for uid in outputs]
    node_name = _fresh(ctx.graph, f"{label}/per_step", taken)

    body = BodyContext(ctx, f"{label}/body", taken)
    g = body.graph
    for uid in steps:
        v = ctx.values[uid]
        b = g.unique_name(f"{v}/t")
        g.add_input(b, ctx.dtype(v), (None, *ctx.shape(v)[2:]))
        body.batched_values.add(b)
        body.values[uid] = b
    for u in run:
        run_unit(body, u)
    ctx.add_node("Scan", [ctx.values[u] for u in steps], node_name, outputs=ys,
                 body=body.graph_of([body.values[o] for o in outputs]), num_states=0,
                 reverse=0)
    ctx.batched_values.update(ys)
    ctx.sequence_values.update(ys)
    for uid, y in zip(outputs, ys, strict=True):
        ctx.values[uid] = y


def _name_of(run: list[Unit], uid: str, label: str) -> str:
    """The name the user gave the unit computing ``uid`` (``conv``), else the run's."""
    for u in run:
        if uid in u.outputs:
            blocks = [b.name for b in reversed(u.function.blocks) if uid in b.outputs]
            for name in (u.block.name if u.block is not None else "", u.function.name,
                         *blocks):
                if name and not name.startswith("_"):
                    return name
    return f"{label}/y"
