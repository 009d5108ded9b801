"""Optional frameworks: importing them quietly, and what to install when one is missing.

mmconv's core needs numpy, protobuf and onnx; the other frameworks are extras
(``pip install "mmconv[torch]"``).  A missing one is a user error with a
one-line fix, never an internal error: :func:`import_framework` raises
:class:`RuntimeUnavailableError` naming the extra, and the CLI turns any
other ``ImportError`` of a framework listed here into the same line.

TensorFlow prints absl and oneDNN banners on stderr when it is imported
unless its logging variables are set first; :func:`quiet_tensorflow` is the
one place that sets them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from mmconv.errors import RuntimeUnavailableError

#: top-level module -> the mmconv extra that installs it
EXTRAS = {
    "torch": "torch",
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "tf2onnx": "tensorflow",
    "onnxruntime": "onnxruntime",
}
_TENSORFLOW = ("tensorflow", "keras", "tf2onnx")


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ log banners (absl, oneDNN, CPU features) and pick Keras'
    TensorFlow backend; must run before TensorFlow is first imported.  A user's own
    settings of these variables win.

    ``TF_CPP_MIN_LOG_LEVEL`` does not reach TensorFlow 2.21's "oneDNN custom operations
    are on" line (it is printed before absl's logging starts), so oneDNN's custom ops are
    turned off too: TensorFlow then runs its standard kernels, which also makes results
    repeatable across CPUs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def install_hint(module: str) -> str | None:
    """``pip install "mmconv[EXTRA]"`` for a framework module, None for other modules."""
    extra = EXTRAS.get(module.split(".", 1)[0])
    return None if extra is None else f'pip install "mmconv[{extra}]"'


def missing(module: str) -> RuntimeUnavailableError:
    """The error for a framework that cannot be imported."""
    top = module.split(".", 1)[0]
    return RuntimeUnavailableError(
        f"{top} is not installed (needed for this step); install it with: "
        f"{install_hint(top) or f'pip install {top}'}")


def import_framework(module: str) -> ModuleType:
    """Import a framework module, quietly; a missing one is a RuntimeUnavailableError."""
    if module.split(".", 1)[0] in _TENSORFLOW:
        quiet_tensorflow()
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing(module) from exc
