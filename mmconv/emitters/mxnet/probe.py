"""Intermediate values of a checkpoint from this emitter, by IR value name (``--layers``).

The node computing IR value ``v`` is named ``v`` (see :mod:`.context`), so MXNet's
``get_internals()`` finds it as ``v_output``; IR nodes the emitter wrote as several
MXNet nodes still end in a node named after their output.  Values come back in the
IR's dtypes (bools travel as floats, see :mod:`mmconv.formats.mxnet`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mmconv.formats.mxnet import checkpoint_prefix, feeds
from mmconv.ir.core import Graph


def probe(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray], names: Sequence[str]
          ) -> dict[str, np.ndarray]:
    """``{IR name: value}`` for the ``names`` the checkpoint at ``path`` computes."""
    from mmconv.runtimes.mxnet import probe_checkpoint

    got = probe_checkpoint(checkpoint_prefix(path), feeds(graph, inputs), names)
    out = {}
    for name, array in got.items():
        dtype = graph.value(name).dtype if name in graph.values else array.dtype.name
        out[name] = (array != 0) if dtype == "bool" else array.astype(dtype, copy=False)
    return out
