"""Emitters: an IR :class:`~mmconv.ir.Graph` in, code or a native model file out.

Each emitter is a subpackage exposing::

    def emit_code(graph: Graph, code_path: Path, weights_path: Path) -> None
        # mmtocode: readable source defining KitModel(weight_file) + its weights
    def code_to_model(code_path: Path, weights_path: Path, output_path: Path) -> None
        # mmtomodel: run the emitted code and save a native model file
    def emit_model(graph: Graph, output_path: Path, **options) -> None
        # mmconvert: straight to a native model file

Emitters never import frontends or each other; the CLI finds them here by name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mmconv.errors import UsageError

#: Emitter name -> module.
EMITTERS = {
    "onnx": "mmconv.emitters.onnx",
}
ALIASES: dict[str, str] = {}


def get_emitter(name: str) -> ModuleType:
    """The emitter module for ``name``, or a UsageError listing the supported ones."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in EMITTERS:
        raise UsageError(
            f"target framework {name!r} is not supported yet (supported: {', '.join(EMITTERS)})"
        )
    return importlib.import_module(EMITTERS[key])
