"""Graph passes (framework-free), one module per pass, and the manager that runs them.

- :mod:`.identities` -- :func:`remove_identities`: Identity nodes are bypassed,
  output names kept.
- :mod:`.fold` -- :func:`fold_constants`, :func:`folded_for_emit`: nodes computed from
  weights only become weights.
- :mod:`.lrn` -- :func:`fuse_lrn`: LRN written in primitives becomes one ``LRN``.
- :mod:`.bias` -- :func:`fuse_bias`: ``Add`` of a per-channel constant after
  ``Conv``/``Dense`` becomes their ``B`` input.
- :mod:`.dead` -- :func:`eliminate_dead`: unreachable nodes and unread weights go.
- :mod:`.layout` -- :func:`optimize_layout`: Transposes cancelled, merged and sunk, so a
  channels-last source keeps them only at model inputs/outputs;
  :func:`channels_first_boundaries` (not a default pass; ``--channelsFirstIO``) then
  makes those inputs/outputs channels-first.
- :mod:`.reversal` -- :func:`fold_reversals`: time-axis reversals (Slices with step -1)
  around a Scan become its ``reverse``, before an LSTM/GRU/RNN its direction; two in a
  row cancel; a reversal moves through per-step ops.
- :mod:`.manager` -- :class:`PassManager` (passes to a fixed point) and
  :func:`run_default_passes`.

A pass edits the graph in place and returns its number of rewrites.  Use-def
queries and ``replace_all_uses`` are in :mod:`mmconv.ir.usedef`.  The names below
are this package's public API (import them from here or from their module).
"""

from mmconv.ir.passes.bias import fuse_bias
from mmconv.ir.passes.dead import eliminate_dead
from mmconv.ir.passes.fold import FOLD_MAX_GROWTH, fold_constants, folded_for_emit
from mmconv.ir.passes.identities import remove_identities
from mmconv.ir.passes.layout import channels_first_boundaries, optimize_layout
from mmconv.ir.passes.lrn import fuse_lrn
from mmconv.ir.passes.manager import DEFAULT_PASSES, Pass, PassManager, run_default_passes
from mmconv.ir.passes.reversal import fold_reversals

__all__ = [
    "DEFAULT_PASSES", "FOLD_MAX_GROWTH", "Pass", "PassManager", "channels_first_boundaries",
    "eliminate_dead", "fold_constants", "fold_reversals", "folded_for_emit", "fuse_bias",
    "fuse_lrn", "optimize_layout",
    "remove_identities", "run_default_passes",
]
