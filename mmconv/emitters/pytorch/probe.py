"""Intermediate values of a TorchScript file this emitter wrote (``mmverify --layers``).

TorchScript does not let anyone read a forward pass' locals; the KitModel code
does: it holds every IR value in one local variable.  So the ``.pt`` file's
own state_dict (the weights the user is checking) goes into the code
re-emitted from the same IR, which runs once with its ``forward`` locals
captured when it returns.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from mmconv.ir.core import Graph


class _LocalsRecorder:
    """A trace function keeping the locals of one code object's call when it returns."""

    def __init__(self, code: Any) -> None:
        self.code = code
        self.locals: dict[str, Any] = {}

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code is self.code:
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "return":
            self.locals = dict(frame.f_locals)
        return self._local


def probe(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
          names: Sequence[str]) -> dict[str, np.ndarray]:
    """The values of ``names`` (IR value names) the model computes on ``inputs``."""
    from mmconv.emitters.pytorch.builder import emit
    from mmconv.emitters.pytorch.script import code_module, instantiate
    from mmconv.frameworks import import_framework

    torch = import_framework("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, works
        scripted = torch.jit.load(str(path), map_location="cpu")
    emitted = emit(graph)
    with code_module(emitted.source) as module:
        model = instantiate(module, dict(scripted.state_dict()), str(path))
        model.eval()
        args = [torch.from_numpy(np.ascontiguousarray(inputs[v.name])) for v in graph.inputs]
        recorder = _LocalsRecorder(type(model).forward.__code__)
        previous = sys.gettrace()
        sys.settrace(recorder)
        try:
            with torch.no_grad():
                model(*args)
        finally:
            sys.settrace(previous)
    found = {}
    for name in names:
        value = recorder.locals.get(emitted.locals.get(name, ""))
        if isinstance(value, torch.Tensor):
            found[name] = value.detach().numpy()
    return found
