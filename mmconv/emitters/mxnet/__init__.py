"""The MXNet emitter: IR graph -> ``NAME-symbol.json`` + ``NAME-0000.params``, without MXNet.

- ``mmconvert -df mxnet -om NAME`` (:func:`emit_model`): MXNet's checkpoint
  format, the files ``mx.model.save_checkpoint(NAME, 0, ...)`` writes and
  ``mx.model.load_checkpoint`` / ``gluon.SymbolBlock.imports`` read, written by
  mmconv itself (:mod:`.symbol`, :mod:`.params`): MXNet is retired and pins
  numpy < 1.24, so it is never a dependency.
- ``mmtocode -f mxnet`` (:func:`emit_code`): readable Python building the same
  symbol with ``mx.sym`` calls, ``KitModel(weight_file)`` returning
  ``(symbol, arg_params, aux_params)``; the weights file is the params file.
- ``mmtomodel -f mxnet`` (:func:`code_to_model`): runs that code in MXNet 1.9.1
  (:mod:`mmconv.runtimes.mxnet`) and saves the checkpoint.

Each IR op has a handler in the module of its family (``conv.py``,
``pool.py``, ... mirroring ``mmconv/ir/ops/``), registered in
:data:`HANDLERS`.  Outputs are checked in real mxnet 1.9.1 (tests, ``--verify``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmconv.emitters.base import Emitter, Option
from mmconv.emitters.mxnet import code as _code
from mmconv.emitters.mxnet.builder import (
    Built,
    build,
    load_handlers,
    missing_handlers,
    write_checkpoint,
)
from mmconv.emitters.mxnet.code import code_to_model, generate
from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.emitters.mxnet.probe import probe
from mmconv.errors import UsageError
from mmconv.formats.mxnet import checkpoint_paths, checkpoint_prefix
from mmconv.ir.core import Graph

__all__ = ["EMITTER", "HANDLERS", "Built", "EmitContext", "build", "checkpoint_paths",
           "checkpoint_prefix", "code_to_model", "emit_code", "emit_model", "generate",
           "missing_handlers", "write_checkpoint"]

load_handlers()

OPTIONS = (Option("epoch", int, "the checkpoint's epoch number: PREFIX-%04d.params "
                  "(0..9999, default 0)"),)


def _epoch(options: dict[str, Any]) -> int:
    epoch = int(options.get("epoch", 0))
    if not 0 <= epoch <= 9999:
        raise UsageError(f"MXNet emitter: epoch={epoch} is not in 0..9999")
    return epoch


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> None:
    """Write ``PREFIX-symbol.json`` and ``PREFIX-%04d.params`` (epoch option, default 0).

    ``output_path`` is the prefix (``NAME``), or one of the two file names.
    """
    epoch = _epoch(EMITTER.check_options(options))
    write_checkpoint(build(graph), checkpoint_prefix(output_path), epoch)


def emit_code(graph: Graph, code_path: str | os.PathLike[str],
              weights_path: str | os.PathLike[str], **options: Any) -> None:
    """mmtocode: ``mx.sym`` code and its params file (see :mod:`.code`); no options."""
    EMITTER.check_options(options, code=True)
    _code.emit_code(graph, code_path, weights_path)


def _model_files(path: Path) -> list[Path]:
    return list(checkpoint_paths(checkpoint_prefix(path)))


EMITTER = Emitter(
    name="mxnet",
    summary="NAME-symbol.json + NAME-0000.params, MXNet's checkpoint (written without "
            "MXNet; checked in mxnet 1.9.1); mmtocode writes mx.sym code and the params",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    model_suffixes=("-symbol.json", "-0000.params"),
    weights_suffix=".params",
    options=OPTIONS,
    model_files=_model_files,
    code_imports=("mxnet",),
    probe=probe,
)
