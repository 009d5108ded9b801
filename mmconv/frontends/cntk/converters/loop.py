"""Loops that are no recognised cell (:mod:`..loops`): one IR ``Scan`` each; and
``sequence.broadcast_as`` (a per-sequence value repeated at every step, a small Scan);
runs of per-step ops on a sequence (:mod:`..per_step`, a state-less Scan).

The work is :func:`mmconv.frontends.cntk.body.convert_loop` (it drives the other
converters over the loop's body, so it lives beside the builder, not among them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.loops import LOOP_OP, RECONCILE
from mmconv.frontends.cntk.per_step import PER_STEP_OP

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


@CONVERTERS.register(LOOP_OP)
def convert_loop(ctx: Context, unit: Unit) -> None:
    from mmconv.frontends.cntk.body import convert_loop as build  # imports the builder

    build(ctx, unit)


@CONVERTERS.register(PER_STEP_OP)
def convert_per_step(ctx: Context, unit: Unit) -> None:
    """A run of per-step ops on a sequence (Convolution ...): a state-less Scan."""
    from mmconv.frontends.cntk.per_step_scan import convert_per_step as build

    build(ctx, unit)


@CONVERTERS.register(RECONCILE)
def convert_reconcile(ctx: Context, unit: Unit) -> None:
    """Outside a loop: ``sequence.broadcast_as`` and the identities CNTK inserts."""
    from mmconv.frontends.cntk.body import convert_broadcast

    convert_broadcast(ctx, unit)
