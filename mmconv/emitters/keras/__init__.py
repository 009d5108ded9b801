"""The Keras 3 / TensorFlow emitter: IR graph -> Keras functional-model code, ``.keras``
files and TF SavedModels.

``mmtocode -f keras`` writes readable code defining ``KitModel(weight_file)``
plus an ``.npz`` weights file; ``mmtomodel -f keras`` runs it and saves a
``.keras`` file; ``mmconvert -df keras`` does both.  The ``tensorflow`` target
(:mod:`.tensorflow`) shares everything and saves a SavedModel instead.

Layout: channels-last inside the model with kernels transposed once at emit
time; a model keeps the source's NCHW inputs/outputs with at most one
transpose per input and per feature-map output, unless ``nhwc_io=True``
(``mmconvert --channelsLastIO``) asks for NHWC ones.  See :mod:`.context`.
Each IR op's handler lives in the module of its family, registered in
:data:`HANDLERS`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from mmconv.emitters.base import Emitter, Option
from mmconv.emitters.keras.builder import (
    Generated,
    build_from_code,
    build_model,
    generate,
    load_handlers,
    missing_handlers,
    save_keras,
    write_code,
)
from mmconv.emitters.keras.context import HANDLERS
from mmconv.emitters.keras.probe import probe
from mmconv.ir.core import Graph

__all__ = ["EMITTER", "HANDLERS", "NHWC_IO", "Generated", "build_model", "code_to_model",
           "emit_code", "emit_model", "generate", "missing_handlers"]

load_handlers()

#: The Keras and TensorFlow targets' one option.
NHWC_IO = Option("nhwc_io", bool, "NHWC model inputs and outputs instead of the source's NCHW "
                 "ones (no boundary transposes)", flag="--channelsLastIO")


def emit_code(graph: Graph, code_path: Path, weights_path: Path) -> None:
    """mmtocode: the Keras code and its .npz weights (NCHW boundary, as the source)."""
    write_code(graph, Path(code_path), Path(weights_path))


def code_to_model(code_path: Path, weights_path: Path, output_path: Path) -> None:
    """mmtomodel: build the model from the code and save it as a ``.keras`` file."""
    save_keras(build_from_code(Path(code_path), Path(weights_path)), Path(output_path))


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> None:
    """mmconvert: code in a temporary folder, built and saved as a ``.keras`` file that
    ``keras.models.load_model`` loads without mmconv (no custom layers; a recurrent layer
    no stock layer computes uses the custom cell of :mod:`.cells`, registered by
    importing the generated code)."""
    nhwc_io = EMITTER.check_options(options).get("nhwc_io", False)
    with tempfile.TemporaryDirectory(prefix="mmconv-keras-") as tmp:
        code, weights = Path(tmp) / "model.py", Path(tmp) / "weights.npz"
        write_code(graph, code, weights, nhwc_io)
        save_keras(build_from_code(code, weights), Path(output_path))


def register_cells() -> None:
    """Register mmconv's custom recurrent cells with Keras, so a ``.keras`` file holding
    one (peepholes, a Scan's loop...) loads in this process."""
    from mmconv.emitters.keras import cells  # noqa: F401  (registration is the import)


EMITTER = Emitter(
    name="keras",
    summary="Keras 3 functional-model code + npz weights; a .keras file",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    aliases=("tf.keras",),
    model_suffixes=(".keras",),
    code_imports=("keras", "tensorflow"),
    probe=probe,
    weights_suffix=".npy",
    options=(NHWC_IO,),
    runtime_setup=register_cells,
)
