"""The pass manager: run a list of graph passes until none changes anything.

Passes enable each other (bypassing an Identity exposes an ``Add`` to bias
fusion; cancelling a Transpose pair exposes a constant to folding), so one
fixed order run once misses rewrites.  Running the list to a fixed point makes
each pass simple -- it only handles what it sees -- and the order a matter of
speed, not of correctness.  Iterations are bounded so two passes that undo each
other cannot hang a conversion; hitting the bound is logged, not an error,
because the graph is still valid.

A pass is any ``Callable[[Graph], int]`` that edits the graph in place and
returns how many rewrites it made (0 = nothing to do).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes.bias import fuse_bias
from mmconv.ir.passes.dead import eliminate_dead
from mmconv.ir.passes.fold import fold_constants
from mmconv.ir.passes.identities import remove_identities
from mmconv.ir.passes.layout import optimize_layout
from mmconv.ir.passes.lrn import fuse_lrn
from mmconv.ir.passes.reversal import fold_reversals

log = logging.getLogger(__name__)

#: A graph pass: edits the graph in place, returns the number of rewrites.
Pass = Callable[[Graph], int]


class PassManager:
    """Runs ``passes`` in order, repeatedly, until a whole round changes nothing.

    With ``infer`` (the default) shapes are re-inferred after every pass that
    changed the graph, so each pass may rely on ``graph.values`` being current
    (bias fusion needs the channel axis, the layout pass needs ranks); the graph
    must then be complete (outputs set).  ``max_rounds`` bounds the rounds.
    """

    def __init__(self, passes: Sequence[Pass], *, max_rounds: int = 8,
                 infer: bool = True) -> None:
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.passes = list(passes)
        self.max_rounds = max_rounds
        self.infer = infer

    def run(self, graph: Graph) -> dict[str, int]:
        """Run to a fixed point; returns the rewrites each pass made, by pass name."""
        counts = {_name(p): 0 for p in self.passes}
        for _ in range(self.max_rounds):
            changed = 0
            for p in self.passes:
                n = p(graph)
                if n:
                    counts[_name(p)] += n
                    changed += n
                    if self.infer:
                        infer_shapes(graph)
            if not changed:
                break
        else:
            log.debug("passes did not settle in %d rounds: %s", self.max_rounds, counts)
        return counts


def _name(p: Pass) -> str:
    return getattr(p, "__name__", type(p).__name__)


#: The clean-ups every frontend wants (see each pass's module).  Layout before the
#: fusions: sunk Transposes expose Conv -> Add(bias) pairs to fuse_bias.
DEFAULT_PASSES: tuple[Pass, ...] = (
    remove_identities, fold_constants, optimize_layout, fold_reversals, fuse_lrn, fuse_bias,
    eliminate_dead,
)


def run_default_passes(graph: Graph) -> Graph:
    """Run :data:`DEFAULT_PASSES` to a fixed point (shapes must be inferred); returns the
    graph for chaining."""
    PassManager(DEFAULT_PASSES).run(graph)
    return graph
