"""A run of per-step ops on a sequence (:mod:`.per_step`) as one state-less IR ``Scan``.

The body is built by the same per-op converters as the rest of the model, on a
:class:`~.body.BodyContext` (nodes in the body, weights outside, read by name): at
step t the body sees each sequence the run reads as ``[N, *sample]``, which the
converters handle as CNTK's plain batched values.  Lives beside the builder (it
drives the converters), reached through the :data:`~.per_step.PER_STEP_OP` converter.
"""

from __future__ import annotations

from mmconv.frontends.cntk.body import BodyContext, fresh_name
from mmconv.frontends.cntk.builder import Context, Unit, run_unit
from mmconv.frontends.cntk.per_step import outside_reads


def convert_per_step(ctx: Context, unit: Unit) -> None:
    """The :data:`~.per_step.PER_STEP_OP` function: its run as one Scan over the
    sequences it reads; its outputs (the run's values read later) are the step outputs,
    named after their layer (``feat``)."""
    run: list[Unit] = unit.attrs["run"]
    first = run[0]
    label = ctx.layer_name(first, ctx.node_name(first))
    steps: list[str] = []
    for u in run:
        for uid in outside_reads(ctx, run, u) or []:
            if uid not in steps:
                steps.append(uid)
    outputs = list(unit.outputs)
    taken: set[str] = set()
    ys = [fresh_name(ctx.graph, _name_of(run, uid, label), taken) for uid in outputs]
    node_name = fresh_name(ctx.graph, f"{label}/per_step", taken)

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
    """The name the user gave the layer computing ``uid`` (``feat``), else the run's."""
    for u in run:
        if uid in u.outputs:
            blocks = [b.name for b in reversed(u.function.blocks) if uid in b.outputs]
            for name in (u.block.name if u.block is not None else "", u.function.name,
                         *blocks):
                if name and not name.startswith("_"):
                    return name
    return f"{label}/y"
