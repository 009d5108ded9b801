"""The ``tensorflow`` target: the Keras emitter's code, saved as a TF SavedModel.

The SavedModel folder has a ``serving_default`` signature whose inputs are
named like the Keras inputs (the IR names when they are valid identifiers,
else their sanitized form: TF requires identifiers) and whose outputs are
keyed by the IR output names; ``tf.saved_model.load`` needs no mmconv.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from mmconv.emitters.base import Emitter
from mmconv.emitters.keras import HANDLERS, NHWC_IO, emit_code
from mmconv.emitters.keras.builder import build_with_outputs, save_saved_model, write_code
from mmconv.ir.core import Graph

__all__ = ["EMITTER", "HANDLERS", "code_to_model", "emit_code", "emit_model"]


def code_to_model(code_path: Path, weights_path: Path, output_path: Path) -> None:
    """mmtomodel -f tensorflow: build the Keras model from the code, export a SavedModel."""
    model, names = build_with_outputs(Path(code_path), Path(weights_path))
    save_saved_model(model, Path(output_path), names)


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> None:
    """mmconvert -df tensorflow: a SavedModel folder at ``output_path`` (replaced whole)."""
    nhwc_io = EMITTER.check_options(options).get("nhwc_io", False)
    with tempfile.TemporaryDirectory(prefix="mmconv-tf-") as tmp:
        code, weights = Path(tmp) / "model.py", Path(tmp) / "weights.npz"
        write_code(graph, code, weights, nhwc_io)
        model, names = build_with_outputs(code, weights)
        save_saved_model(model, Path(output_path), names)


EMITTER = Emitter(
    name="tensorflow",
    summary="the Keras code, saved as a TF SavedModel folder with a serving_default signature",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    aliases=("tf",),
    model_suffixes=("",),
    code_imports=("keras", "tensorflow"),
    weights_suffix=".npy",
    options=(NHWC_IO,),
)
