"""MXNet conventions shared by the MXNet emitter and whatever runs its output (verify, tests).

- A checkpoint is two files named from a prefix: ``PREFIX-symbol.json`` and
  ``PREFIX-%04d.params`` (epoch), as ``mx.model.save_checkpoint`` names them.
- MXNet's legacy operators have no bool tensors and no 0-d arrays: an IR bool
  is carried as 0/1 in float32 (the model takes and returns floats there), and
  a 0-d IR value comes out of MXNet with shape ``(1,)``.  :func:`feeds` and
  :func:`as_ir_outputs` translate at the model's boundary.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mmconv.errors import UsageError
from mmconv.ir.core import Graph

#: The dtype IR bools travel in.
BOOL_AS = "float32"


def checkpoint_prefix(output: str | os.PathLike[str]) -> str:
    """The prefix a user's ``-om`` names: ``NAME`` itself, or ``NAME`` when given one of
    the two files (``NAME-symbol.json``, ``NAME-0000.params``)."""
    text = str(output)
    if text.endswith("-symbol.json"):
        text = text[: -len("-symbol.json")]
    elif text.endswith(".params"):
        stem = text[: -len(".params")]
        if len(stem) > 5 and stem[-5] == "-" and stem[-4:].isdigit():
            text = stem[:-5]
    if not text or text.endswith(("/", os.sep)) or Path(text).name in (".", ".."):
        raise UsageError(f"{output}: give the MXNet checkpoint a name, e.g. -om model "
                         "(for model-symbol.json + model-0000.params)")
    return text


def checkpoint_paths(prefix: str | os.PathLike[str], epoch: int = 0) -> tuple[Path, Path]:
    """``PREFIX-symbol.json`` and ``PREFIX-EPOCH.params`` (epoch as %04d)."""
    return Path(f"{prefix}-symbol.json"), Path(f"{prefix}-{int(epoch):04d}.params")


def feeds(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs as the MXNet model takes them, by IR input name (bools as floats)."""
    out = {}
    for value in graph.inputs:
        array = np.asarray(inputs[value.name])
        out[value.name] = array.astype(BOOL_AS) if array.dtype == np.bool_ else array
    return out


def as_ir_outputs(graph: Graph, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """MXNet's outputs in the IR's dtypes and (for 0-d values) shapes."""
    result = []
    for name, array in zip(graph.outputs, outputs, strict=True):
        value = graph.value(name)
        if value.dtype == "bool":
            array = array != 0
        elif array.dtype.name != value.dtype:
            array = array.astype(value.dtype)
        if value.rank == 0 and array.shape == (1,):
            array = array.reshape(())
        result.append(array)
    return result
