"""The ONNX emitter: IR graph -> ``.onnx`` model file, or a script that builds it.

``mmconvert -df onnx`` calls :func:`emit_model`; ``mmtocode -f onnx`` calls
:func:`emit_code` and ``mmtomodel -f onnx`` :func:`code_to_model` (see
:mod:`.code`: the script is generated from the same ModelProto).  Each IR op has a handler in
the module of its family (``conv.py``, ``pool.py``, ... mirroring
``mmconv/ir/ops/``), registered in :data:`HANDLERS`; opset differences are
handled inside the handler that knows the op.  See :mod:`.builder` for names,
dynamic dims and opset policy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmconv.emitters.base import Emitter, Option
from mmconv.emitters.onnx.builder import (
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    build_model,
    build_skeleton,
    check_opset,
    check_size,
    check_skeleton,
    checked,
    load_handlers,
    missing_handlers,
    write_model,
)
from mmconv.emitters.onnx.code import code_to_model, emit_code, generate, load_code_model
from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.errors import UsageError
from mmconv.fsutil import atomic_path
from mmconv.ir.core import Graph

__all__ = [
    "DEFAULT_OPSET", "EMITTER", "HANDLERS", "MAX_OPSET", "MIN_OPSET", "EmitContext", "build_model",
    "build_skeleton", "check_opset", "check_size", "check_skeleton", "checked", "code_to_model",
    "emit_code", "emit_model", "generate", "load_code_model", "missing_handlers", "write_model",
]

load_handlers()


def emit_model(
    graph: Graph,
    output_path: str | os.PathLike[str],
    opset: int | None = None,
    *,
    check: bool = True,
    **options: Any,
) -> None:
    """Write ``graph`` as an ONNX model to ``output_path``, atomically.

    The model is checked with ``onnx.checker.check_model(full_check=True)``
    (see :func:`check_skeleton`) before anything is written, and written to a
    temporary file renamed into place, so a failed emit leaves no file.  The
    weights are streamed from the IR's arrays (:func:`write_model`): emitting
    needs little memory beyond the IR.  ``check=False`` skips the check.
    """
    if options:
        raise UsageError(
            f"the ONNX emitter has no option(s) {', '.join(sorted(options))} "
            "(it takes: opset, check)"
        )
    check_size(graph)
    model, weights = build_skeleton(graph, opset)
    if check:
        checked(graph, model, weights)
    with atomic_path(Path(output_path), suffix=".onnx") as tmp, tmp.open("wb") as out:
        write_model(out, model, weights)


EMITTER = Emitter(
    name="onnx",
    summary="an .onnx model file (checked with onnx.checker), or a script that builds it",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    model_suffixes=(".onnx",),
    code_imports=("onnx",),
    weights_suffix=".npy",
    options=(Option("opset", int, f"ONNX opset to write ({MIN_OPSET}..{MAX_OPSET}, default "
                    f"{DEFAULT_OPSET})", flag="--opset", code=True),),
)
