"""Shared helpers of the PyTorch emitter tests: emit a graph, run it eagerly and scripted."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch

from mmconv.emitters.pytorch import emit
from mmconv.emitters.pytorch.script import code_module, to_tensors
from mmconv.ir import Graph


def _numpy(out: object) -> list[np.ndarray]:
    outs = out if isinstance(out, tuple) else (out,)
    return [o.detach().numpy() for o in outs]  # type: ignore[union-attr]


def run_both(graph: Graph, feeds: Mapping[str, np.ndarray]
             ) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """(eager outputs, TorchScript outputs, source) of ``graph`` on ``feeds``.

    The state_dict must load strictly and ``torch.jit.script`` must succeed (no
    trace fallback: scripting keeps every dynamic axis dynamic).
    """
    emitted = emit(graph)
    args = [torch.from_numpy(np.ascontiguousarray(feeds[v.name])) for v in graph.inputs]
    with code_module(emitted.source) as module:
        model = module.KitModel()
        model.load_state_dict(to_tensors(emitted.state), strict=True)
        with torch.no_grad():
            eager = _numpy(model(*args))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted = torch.jit.script(model)
            script = _numpy(scripted(*args))
    return eager, script, emitted.source


def assert_runs_as(graph: Graph, feeds: Mapping[str, np.ndarray],
                   expected: list[np.ndarray], name: str) -> str:
    """Eager and TorchScript outputs of ``graph`` equal ``expected`` (shape, and values
    within the project's tolerance); returns the generated source."""
    from mmconv.verify.compare import assert_close

    eager, script, source = run_both(graph, feeds)
    assert len(eager) == len(script) == len(expected)
    for i, want in enumerate(expected):
        want = np.asarray(want, eager[i].dtype)
        assert eager[i].shape == want.shape, (name, i, eager[i].shape, want.shape)
        assert_close(want, eager[i], name=f"{name} output {i} (eager)")
        assert_close(want, script[i], name=f"{name} output {i} (TorchScript)")
    return source
