"""Emitters: an IR :class:`~mmconv.ir.Graph` in, code or a native model file out.

Each emitter is a subpackage exposing::

    def emit_code(graph: Graph, code_path: Path, weights_path: Path) -> None
        # mmtocode: readable source defining KitModel(weight_file) + its weights
    def code_to_model(code_path: Path, weights_path: Path, output_path: Path) -> None
        # mmtomodel: run the emitted code and save a native model file
    def emit_model(graph: Graph, output_path: Path, **options) -> None
        # mmconvert: straight to a native model file

An emitter may set ``WEIGHTS_SUFFIX`` (default ``.npy``): the suffix mmtocode
gives the weights file when the user names none.

Emitters never import frontends or each other; the CLI finds them here by name.
"""

from __future__ import annotations

from types import ModuleType

from mmconv.dispatch import import_by_name

#: Emitter name -> module.
EMITTERS = {
    "onnx": "mmconv.emitters.onnx",
    "pytorch": "mmconv.emitters.pytorch",
    "cntk": "mmconv.emitters.cntk",
    "keras": "mmconv.emitters.keras",
    "tensorflow": "mmconv.emitters.keras.tensorflow",
}
ALIASES: dict[str, str] = {"torch": "pytorch", "tf": "tensorflow", "tf.keras": "keras"}


def get_emitter(name: str) -> ModuleType:
    """The emitter module for ``name``, or a UsageError listing the supported ones."""
    return import_by_name("target framework", EMITTERS, ALIASES, name)
