"""Loops that are no recognised cell (:mod:`..loops`): one IR ``Scan`` each.

The work is :func:`mmconv.frontends.cntk.body.convert_loop` (it drives the other
converters over the loop's body, so it lives beside the builder, not among them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmconv.frontends.cntk.converters import CONVERTERS
from mmconv.frontends.cntk.loops import LOOP_OP

if TYPE_CHECKING:
    from mmconv.frontends.cntk.builder import Context, Unit


@CONVERTERS.register(LOOP_OP)
def convert_loop(ctx: Context, unit: Unit) -> None:
    from mmconv.frontends.cntk.body import convert_loop as build  # imports the builder

    build(ctx, unit)
