"""The ONNX emitter: IR graph -> ``.onnx`` model file.

``mmconvert -df onnx`` calls :func:`emit_model`.  Each IR op has a handler in
the module of its family (``conv.py``, ``pool.py``, ... mirroring
``mmconv/ir/ops/``), registered in :data:`HANDLERS`; opset differences are
handled inside the handler that knows the op.  See :mod:`.builder` for names,
dynamic dims and opset policy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx

from mmconv.emitters.onnx.builder import (
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    build_model,
    build_skeleton,
    check_opset,
    check_skeleton,
    load_handlers,
    missing_handlers,
    write_model,
)
from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.errors import UnsupportedError, UsageError
from mmconv.fsutil import atomic_path
from mmconv.ir.core import Graph

__all__ = [
    "DEFAULT_OPSET", "HANDLERS", "MAX_OPSET", "MIN_OPSET", "EmitContext", "build_model",
    "build_skeleton", "check_opset", "check_skeleton", "code_to_model", "emit_code",
    "emit_model", "missing_handlers", "write_model",
]

load_handlers()

#: protobuf readers (onnx.load, onnxruntime) refuse a message of 2 GiB or more.
_PROTOBUF_LIMIT = 2**31 - 2**20

_NO_CODE = "ONNX code output (mmtocode -f onnx) is not supported yet; use mmconvert -df onnx"


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
    size = sum(int(a.nbytes) for a in graph.weights.values())
    if size >= _PROTOBUF_LIMIT:
        raise UnsupportedError(
            f"graph {graph.name!r} has {size / 2**30:.1f} GiB of weights; ONNX files over 2 GiB "
            "need external data, which mmconv does not write yet"
        )
    model, weights = build_skeleton(graph, opset)
    if check:
        try:
            check_skeleton(model, weights)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsupportedError(
                f"the ONNX model emitted for graph {graph.name!r} at opset "
                f"{model.opset_import[0].version} fails onnx.checker ({first}); this is "
                "likely an mmconv bug, please report it with the model"
            ) from exc
    with atomic_path(Path(output_path), suffix=".onnx") as tmp, tmp.open("wb") as out:
        write_model(out, model, weights)


def emit_code(graph: Graph, code_path: Path, weights_path: Path) -> None:
    """Not yet: there is no ONNX-building code output; the model file is the product."""
    raise UnsupportedError(_NO_CODE)


def code_to_model(code_path: Path, weights_path: Path, output_path: Path) -> None:
    """Not yet: see :func:`emit_code`."""
    raise UnsupportedError(_NO_CODE)
