"""The CNTK 2.7 emitter: IR graph -> CNTK Python code (+ weights) -> ``.model`` file.

- ``mmtocode -f cntk`` (:func:`emit_code`): a Python 3.6 module defining
  ``KitModel(weight_file)`` from CNTK primitives, and its weights (npz).
- ``mmtomodel -f cntk`` (:func:`code_to_model`) and ``mmconvert -df cntk``
  (:func:`emit_model`): run that code in a CNTK 2.7 interpreter (cntk only
  exists for Python 3.6, so through :mod:`mmconv.runtimes.cntk` unless cntk
  imports here) and save the Function: CNTK v2 format (``Function.save``), or
  the legacy v1 format with ``format="v1"`` (the default for a ``.dnn`` file).

Each IR op has a handler in the module of its family (``conv.py``,
``pool.py``, ... mirroring ``mmconv/ir/ops/``), registered in
:data:`HANDLERS`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mmconv.emitters.base import Emitter, Option
from mmconv.emitters.cntk.builder import build_code, load_handlers, missing_handlers, weights_bytes
from mmconv.emitters.cntk.context import HANDLERS, EmitContext
from mmconv.errors import MmconvError, UsageError
from mmconv.fsutil import atomic_path
from mmconv.ir.core import Graph

__all__ = ["EMITTER", "FORMATS", "HANDLERS", "EmitContext", "build_code", "code_to_model",
           "emit_code", "emit_model", "missing_handlers"]

load_handlers()

#: Model file formats: v2 (protobuf, ``Function.save``), v1 (legacy, BrainScript's).
FORMATS = ("v2", "v1")
#: How dilated convolutions are written (CNTK 2.7 runs dilation on GPU only).
DILATION_MODES = ("native", "expand")
SAVER = Path(__file__).with_name("save_model.py")


#: The options; ``dilation`` is also taken by :func:`emit_code`.
OPTIONS = (
    Option("format", str, "model file format: v2 (Function.save) or v1 (legacy; default for "
           ".dnn)", flag="--cntkFormat", choices=FORMATS),
    Option("dilation", str, "how dilated convolutions are written: native (CNTK runs them on "
           "GPU only) or expand (zeros between kernel taps; runs on CPU)",
           choices=DILATION_MODES, code=True),
)


def emit_code(graph: Graph, code_path: Path, weights_path: Path, **options: Any) -> None:
    """Write the CNTK module and its weights, each atomically (both or a clear error).

    ``dilation="expand"`` writes dilated kernels with zeros between taps so the
    model runs on CPU (see :mod:`.conv`).
    """
    options = EMITTER.check_options(options, code=True)
    text, weights = build_code(graph, dilation=options.get("dilation", "native"))
    data = weights_bytes(weights)
    with atomic_path(Path(weights_path)) as tmp_w:
        tmp_w.write_bytes(data)
        with atomic_path(Path(code_path), suffix=".py") as tmp_c:
            tmp_c.write_text(text, encoding="utf-8")


def _format_for(output_path: Path, fmt: str | None) -> str:
    if fmt is None:
        return "v1" if output_path.suffix.lower() == ".dnn" else "v2"
    if fmt not in FORMATS:
        raise UsageError(f"CNTK model format {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def _save(code_path: Path, weights_path: Path, output_path: Path, fmt: str) -> None:
    """Run the code in CNTK and save the model to a temp file renamed onto ``output_path``."""
    from mmconv.runtimes.cntk import run_script

    output_path = Path(output_path)
    with atomic_path(output_path, suffix=".model") as tmp:
        tmp.unlink()  # CNTK writes the file itself
        try:
            run_script(SAVER, [str(Path(code_path).resolve()),
                               str(Path(weights_path).resolve()), str(tmp.resolve()), fmt],
                       isolated=True, what=f"building {output_path.name} in CNTK")
        except MmconvError as exc:
            marker = "weights do not fit the code: "
            if marker not in str(exc):
                raise
            # the same exit code as every other target for a mismatched code/weights pair
            raise UsageError(f"{weights_path}: does not fit the code {code_path} "
                             f"({str(exc).split(marker, 1)[1]}); give the weights file "
                             "mmtocode wrote with it") from None
        if not tmp.is_file():
            raise MmconvError(f"CNTK did not write {output_path}")


def code_to_model(code_path: Path, weights_path: Path, output_path: Path,
                  format: str | None = None) -> None:
    """mmtomodel: run code from :func:`emit_code` in CNTK 2.7 and save the model file."""
    _save(Path(code_path), Path(weights_path), Path(output_path),
          _format_for(Path(output_path), format))


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> None:
    """mmconvert: the model file straight from the IR (code written to a temp folder).

    Options: ``format`` ("v2" or "v1"; default v1 for ``.dnn``, else v2) and
    ``dilation`` (see :func:`emit_code`).  Unknown options are a UsageError.
    """
    options = EMITTER.check_options(options)
    fmt = _format_for(Path(output_path), options.get("format"))
    text, weights = build_code(graph, dilation=options.get("dilation", "native"))
    tmpdir = tempfile.mkdtemp(prefix="mmconv-cntk-emit-")
    try:
        code, npz = Path(tmpdir) / "kit_model.py", Path(tmpdir) / "weights.npy"
        code.write_text(text, encoding="utf-8")
        npz.write_bytes(weights_bytes(weights))
        _save(code, npz, Path(output_path), fmt)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


EMITTER = Emitter(
    name="cntk",
    summary="CNTK 2.7 Python code + npz weights; a .model file (v2, or v1 for .dnn)",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    model_suffixes=(".model", ".dnn"),
    code_imports=("cntk",),
    options=OPTIONS,
)
