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
from typing import Any

from mmconv.emitters.mxnet.builder import (
    Built,
    build,
    load_handlers,
    missing_handlers,
    write_checkpoint,
)
from mmconv.emitters.mxnet.code import code_to_model, emit_code, generate
from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.errors import UsageError
from mmconv.formats.mxnet import checkpoint_paths, checkpoint_prefix
from mmconv.ir.core import Graph

__all__ = ["HANDLERS", "WEIGHTS_SUFFIX", "Built", "EmitContext", "build", "checkpoint_paths",
           "checkpoint_prefix", "code_to_model", "emit_code", "emit_model", "generate",
           "missing_handlers", "write_checkpoint"]

load_handlers()

#: mmtocode's weights file is an MXNet params file (``mx.nd.load`` reads it).
WEIGHTS_SUFFIX = ".params"


def _epoch(options: dict[str, Any]) -> int:
    epoch = options.pop("epoch", 0)
    try:
        value = int(epoch)
    except (TypeError, ValueError):
        raise UsageError(f"MXNet emitter: epoch={epoch!r} is not an integer") from None
    if not 0 <= value <= 9999:
        raise UsageError(f"MXNet emitter: epoch={value} is not in 0..9999")
    return value


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> None:
    """Write ``PREFIX-symbol.json`` and ``PREFIX-%04d.params`` (epoch option, default 0).

    ``output_path`` is the prefix (``NAME``), or one of the two file names.
    """
    options = dict(options)
    epoch = _epoch(options)
    if options:
        raise UsageError(f"the MXNet emitter has no option(s) {', '.join(sorted(options))} "
                         "(it takes: epoch)")
    write_checkpoint(build(graph), checkpoint_prefix(output_path), epoch)


