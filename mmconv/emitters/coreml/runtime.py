"""coremltools, imported quietly, and the one place a program becomes a Core ML file.

coremltools probes at import time for every framework it converts *from*
(TensorFlow, PyTorch, scikit-learn...), which costs seconds and prints version
warnings; mmconv hands it a MIL program, so those probes are hidden while it
imports.  Off macOS it also logs that its native runtime is missing; that is
expected here (models are built, not run) and silenced.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from mmconv.errors import RuntimeUnavailableError, UnsupportedError, UsageError

#: Frameworks coremltools imports only to offer converting from them.
_PROBED = ("tensorflow", "torch", "torchvision", "torchaudio", "torchao", "executorch",
           "transformers", "sklearn", "xgboost", "libsvm", "scipy")

#: Output suffix -> Core ML model type.
SUFFIXES = {".mlpackage": "mlprogram", ".mlmodel": "neuralnetwork"}


def import_coremltools() -> ModuleType:
    """``coremltools``, or a RuntimeUnavailableError with the one-line fix."""
    loaded = sys.modules.get("coremltools")
    if loaded is not None:
        return loaded
    hidden = [m for m in _PROBED if m not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import name" fail
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        import coremltools
    except ImportError as exc:
        raise RuntimeUnavailableError(
            'the Core ML target needs coremltools; pip install "mmconv[coreml]"') from exc
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return coremltools


def model_type(path: Path) -> str:
    """``mlprogram`` or ``neuralnetwork`` from the output's suffix."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: a Core ML output must end in .mlpackage (ML Program) or "
                         ".mlmodel (NeuralNetwork)")
    return kind


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """coremltools' pass-pipeline progress bars and rename warnings off the terminal
    (mmconv shows its own stages)."""
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def run_code(source: str, filename: str) -> dict[str, Any]:
    """Execute generated code in a fresh namespace (coremltools imported first, quietly)."""
    import_coremltools()
    namespace: dict[str, Any] = {"__name__": "mmconv_coreml_program"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def build(namespace: dict[str, Any], weights: Any, what: str, batch: int | None) -> Any:
    """The program of generated code (``build_program(arrays)`` or ``KitModel(path)``);
    the MIL builder's rejection of an op (shape or type inference) is one UnsupportedError."""
    fn = namespace["build_program"] if isinstance(weights, dict) else namespace["KitModel"]
    try:
        with quiet():
            return fn(weights)
    except (ValueError, TypeError, NotImplementedError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = (f"; the dynamic batch was fixed to {batch}, pass another batch if the model "
                "needs it" if batch is not None else "")
        raise UnsupportedError(f"{what}: coremltools' MIL builder rejects it ({first}){hint}"
                               ) from exc


def save(namespace: dict[str, Any], program: Any, path: Path) -> None:
    """``convert(program, path)`` of the generated code, atomically.

    An ``.mlpackage`` is a folder: it is written into a temporary folder beside
    the target and renamed into place, so a failed build leaves no package
    (and a previous one is replaced only once the new one is complete).
    """
    model_type(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder))
    try:
        tmp = tmp_dir / path.name
        try:
            with quiet():
                namespace["convert"](program, tmp)
        except (ValueError, NotImplementedError, TypeError, AssertionError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            kind = SUFFIXES[path.suffix.lower()]
            raise UnsupportedError(
                f"{path}: coremltools cannot write this program as a {kind} ({first})"
                + ("; try an .mlpackage (ML Program)" if kind == "neuralnetwork" else "")
            ) from exc
        _replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _replace(src: Path, dst: Path) -> None:
    """Move a finished file or folder onto ``dst``; an old folder goes only after."""
    if dst.is_dir() and not dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(old, dst)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
    mask = os.umask(0)
    os.umask(mask)
    if dst.is_file():
        dst.chmod(0o666 & ~mask)
