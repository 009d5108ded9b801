"""Per-step ops on a sequence the IR cannot apply to ``[batch, time, *sample]``: which
units one state-less ``Scan`` computes.

A CNTK Convolution (Pooling, TransposeAxes, ...) on a sequence runs on every step's
sample, ``[C, H, W]``.  In the IR a sequence is ``[N, T, *sample]`` with N and T both
dynamic, so it cannot be reshaped to ``[N*T, *sample]`` (one free dimension per
Reshape), and these ops would read T as a sample axis.  They become a state-less IR
``Scan`` instead, whose body applies them to the step ``[N, *sample]`` -- exactly what
CNTK computes, with time left dynamic.  The Scan takes in the longest run of
consecutive units that can follow the first one per step (``Convolution -> ReLU ->
MaxPooling -> Dense``), so a per-frame feature extractor is one loop, not one per op.
The outside values a run reads are sequences (its scan inputs) and weights (read by
name).

This module picks the run and stands it in the model as one synthetic function (op
:data:`PER_STEP_OP`, like :data:`~.loops.LOOP_OP` for a loop); the builder converts
that function, and :mod:`.per_step_scan` builds the Scan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.loops import LOOP_OP, RECONCILE
from mmconv.frontends.cntk.model import DELAY_OPS, Function
from mmconv.frontends.cntk.recurrence import CELL_OP, STEP_OP

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit

#: The synthetic op a run becomes (attribute ``run``: its units, in order).
PER_STEP_OP = "mmconv.PerStep"
#: Ops that see the sequence axis (recurrences, sequence reductions, broadcasts): never
#: in a per-step body.
SEQUENCE_OPS = frozenset({LOOP_OP, RECONCILE, CELL_OP, STEP_OP, PER_STEP_OP,
                          "UnpackSequence", "Combine", *DELAY_OPS})


def _per_step_op(unit: Unit) -> bool:
    return unit.op not in SEQUENCE_OPS and not unit.op.startswith("Sequence::")


def outside_reads(ctx: Context, run: list[Unit], unit: Unit) -> list[str] | None:
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
    if outside_reads(ctx, [], run[0]) is None:
        return None
    for unit in units[start + 1:]:
        produced = {o for u in run for o in u.outputs}
        if not _per_step_op(unit) or not produced & set(unit.inputs) \
                or outside_reads(ctx, run, unit) is None:
            break
        run.append(unit)
    return run


def per_step_function(run: list[Unit], used_outside: set[str]) -> Function:
    """The synthetic function standing for ``run``: its inputs are what the run reads
    from outside, its outputs the run's values ``used_outside`` (later units or the
    model's outputs read them)."""
    produced = {o for u in run for o in u.outputs}
    inputs = list(dict.fromkeys(i for u in run for i in u.inputs if i not in produced))
    first = run[0].function
    return Function(uid=f"{first.uid}/per_step", name="", op=PER_STEP_OP, inputs=inputs,
                    outputs=[o for u in run for o in u.outputs if o in used_outside],
                    attrs={"run": run}, blocks=first.blocks)
