"""Running MXNet checkpoints in the real mxnet 1.9.1 env, batched.

Each mxnet process costs about a second to start, so tests hand many
checkpoints to one process (:func:`run_all`); the ``--verify`` runner's own
conventions (:mod:`mmconv.formats.mxnet`) translate inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mmconv.formats.mxnet import as_ir_outputs, feeds
from mmconv.ir import Graph
from mmconv.runtimes.mxnet import RunRequest, run_checkpoints


def run_all(jobs: Iterable[tuple[Path, Graph, dict[str, np.ndarray]]], python: str,
            api: str = "module") -> list[list[np.ndarray]]:
    """(checkpoint prefix, graph, inputs by IR name) each -> outputs in the IR's dtypes."""
    jobs = list(jobs)
    requests = [RunRequest(prefix, feeds(graph, inputs), api=api)
                for prefix, graph, inputs in jobs]
    results = run_checkpoints(requests, python=python)
    return [as_ir_outputs(graph, outs) for (_, graph, _), outs in zip(jobs, results, strict=True)]
