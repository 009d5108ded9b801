"""The PyTorch emitter: IR graph -> ``nn.Module`` code, TorchScript model file.

- ``mmtocode -f pytorch`` (:func:`emit_code`) writes a readable ``KitModel``
  (``nn.Module``): layers with parameters are submodules built in ``__init__``,
  stateless ops are ``torch``/``F`` calls in ``forward``, one line per IR node;
  and its weights as a state_dict saved with ``torch.save`` (loads with
  ``torch.load(path, weights_only=True)``).  ``KitModel(weight_file)`` loads it,
  MMdnn's convention.
- ``mmtomodel -f pytorch`` (:func:`code_to_model`) and ``mmconvert -df pytorch``
  (:func:`emit_model`) write a TorchScript file (runs with ``torch.jit.load``,
  no mmconv needed) and the state_dict beside it (``model.pt`` -> ``model.pth``).

Layout stays the IR's channels-first, PyTorch's own: no transposes anywhere.
Each IR op family has a handler module (``conv.py``, ``pool.py``, ...
mirroring ``mmconv/ir/ops/``), registered in :data:`HANDLERS`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmconv.emitters.base import Emitter
from mmconv.emitters.pytorch.builder import Emitted, emit, load_handlers, missing_handlers
from mmconv.emitters.pytorch.context import HANDLERS, EmitContext
from mmconv.emitters.pytorch.probe import probe
from mmconv.fsutil import atomic_path
from mmconv.ir.core import Graph

__all__ = ["EMITTER", "HANDLERS", "EmitContext", "Emitted", "code_to_model", "emit", "emit_code",
           "emit_model", "missing_handlers"]

load_handlers()


def emit_code(graph: Graph, code_path: str | os.PathLike[str],
              weights_path: str | os.PathLike[str]) -> None:
    """Write ``KitModel`` source to ``code_path`` and its state_dict to ``weights_path``.

    Both files are written atomically, the weights first: a failure leaves
    neither a partial file nor code without its weights.
    """
    from mmconv.emitters.pytorch.script import save_state_dict, to_tensors

    emitted = emit(graph)
    with atomic_path(Path(weights_path)) as tmp_w, atomic_path(Path(code_path),
                                                               suffix=".py") as tmp_c:
        save_state_dict(to_tensors(emitted.state), tmp_w)
        tmp_c.write_text(emitted.source, encoding="utf-8")


def code_to_model(code_path: str | os.PathLike[str], weights_path: str | os.PathLike[str],
                  output_path: str | os.PathLike[str]) -> None:
    """Run code from :func:`emit_code` with its weights; save TorchScript + state_dict."""
    from mmconv.emitters.pytorch.script import (
        compile_model,
        import_code,
        instantiate,
        load_weights,
        save_model,
    )

    state = load_weights(weights_path)
    with import_code(Path(code_path)) as module:
        model = instantiate(module, state, f"{weights_path} (for {code_path})")
        scripted = compile_model(module, model)
        save_model(scripted, model.state_dict(), Path(output_path))


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> None:
    """Write ``graph`` as a TorchScript file (and its state_dict beside it), atomically."""
    EMITTER.check_options(options)
    from mmconv.emitters.pytorch.script import (
        code_module,
        compile_model,
        instantiate,
        save_model,
        to_tensors,
    )

    emitted = emit(graph)
    with code_module(emitted.source) as module:
        model = instantiate(module, to_tensors(emitted.state), f"graph {graph.name!r}")
        scripted = compile_model(module, model)
        save_model(scripted, model.state_dict(), Path(output_path))


EMITTER = Emitter(
    name="pytorch",
    summary="nn.Module code + state_dict; a TorchScript .pt (state_dict .pth beside it)",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    aliases=("torch",),
    model_suffixes=(".pt",),
    model_files=lambda path: [path, path.with_suffix(".pth")],
    code_imports=("torch",),
    probe=probe,
    # mmtocode's default weights file: a torch.save state_dict, not npz
    weights_suffix=".pth",
)
