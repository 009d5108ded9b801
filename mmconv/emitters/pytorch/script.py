"""Running generated code: import it, load weights, compile to TorchScript, save files.

The generated module is our own output, imported from its path with
importlib.  TorchScript (``torch.jit.script``) reads the source of
``forward`` from that file, so it is compiled while the file exists.  When
scripting fails, ``torch.jit.trace`` records the model on a batch of 2 and the
trace is checked on a batch of 3 so the dynamic batch axis survives.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from mmconv.emitters.codegen import imported_code
from mmconv.errors import UnsupportedError, UsageError
from mmconv.fsutil import atomic_path


def import_code(path: Path) -> contextlib.AbstractContextManager[ModuleType]:
    """Import the generated file at ``path`` for the block's duration (see codegen)."""
    return imported_code(path, "pytorch")


@contextlib.contextmanager
def code_module(source: str) -> Iterator[ModuleType]:
    """Import generated ``source`` from a temporary file (kept until the block ends)."""
    with tempfile.TemporaryDirectory(prefix="mmconv-torch-") as tmp:
        path = Path(tmp) / "kitmodel.py"
        path.write_text(source, encoding="utf-8")
        with import_code(path) as module:
            yield module


def to_tensors(state: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """numpy arrays -> tensors (native byte order, C-contiguous, 0-d kept)."""
    out = {}
    for key, array in state.items():
        array = np.asarray(array)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if not array.flags.c_contiguous or not array.flags.writeable:
            array = array.copy(order="C")
        out[key] = torch.from_numpy(array)
    return out


def instantiate(module: ModuleType, state: Mapping[str, torch.Tensor], source: str) -> Any:
    """``KitModel()`` holding ``state``: built on the meta device (no random initialisation
    of weights that are replaced at once, which costs seconds for big models), then the
    state_dict's tensors are assigned; a mismatch is a UsageError naming ``source``."""
    with torch.device("meta"):
        model = module.KitModel()
    try:
        model.load_state_dict(dict(state), strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(f"{source}: does not fit the model ({first})") from exc
    left = [k for k, v in itertools.chain(model.named_parameters(), model.named_buffers())
            if v.is_meta]
    if left:
        raise UsageError(f"{source}: holds no values for {', '.join(left[:5])}")
    return model.eval()


def _sample(specs: list[tuple[str, str, tuple[int | None, ...]]], batch: int
            ) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(0)
    tensors = []
    for _, dtype, shape in specs:
        dims = tuple(batch if d is None else d for d in shape)
        if dtype == "bool":
            tensors.append(torch.from_numpy(rng.random(dims) < 0.5))
        elif dtype.startswith("float"):
            tensors.append(torch.from_numpy(rng.standard_normal(dims).astype(dtype)))
        else:
            tensors.append(torch.from_numpy(rng.integers(0, 2, dims).astype(dtype)))
    return tuple(tensors)


def compile_model(module: ModuleType, model: torch.nn.Module) -> Any:
    """TorchScript of ``model``: scripted, or traced (dynamic batch checked) if scripting
    fails; UnsupportedError when neither works."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return torch.jit.script(model)
        except Exception as script_error:
            specs = list(getattr(module, "INPUTS", []))
            try:
                with torch.no_grad():
                    traced = torch.jit.trace(model, _sample(specs, 2), check_trace=False)
                    traced(*_sample(specs, 3))
                return traced
            except Exception as trace_error:
                first = str(script_error).strip().splitlines()[0] if str(script_error) else ""
                raise UnsupportedError(
                    f"the generated PyTorch model compiles neither with torch.jit.script "
                    f"({type(script_error).__name__}: {first}) nor with torch.jit.trace "
                    f"({type(trace_error).__name__}); please report it with the model"
                ) from trace_error


def state_dict_path(output_path: Path) -> Path:
    """Where the state_dict goes beside a TorchScript file: ``model.pt`` -> ``model.pth``
    (``x.pth`` -> ``x.state_dict.pth``, never the model file itself)."""
    path = output_path.with_suffix(".pth")
    return path if path != output_path else output_path.with_suffix(".state_dict.pth")


def save_state_dict(state: Mapping[str, torch.Tensor], path: Path | io.BufferedWriter) -> None:
    """torch.save to an open file: the archive's inner folder name then does not depend
    on the (temporary) file name, so the same weights give the same bytes."""
    if isinstance(path, Path):
        with path.open("wb") as f:
            torch.save(dict(state), f)
    else:
        torch.save(dict(state), path)


def save_model(scripted: Any, state: Mapping[str, torch.Tensor], output_path: Path) -> Path:
    """Write the TorchScript file and the state_dict beside it, each atomically."""
    output_path = Path(output_path)
    sd_path = state_dict_path(output_path)
    with atomic_path(output_path, suffix=".pt") as tmp_pt, \
            atomic_path(sd_path, suffix=".pth") as tmp_sd:
        with tmp_pt.open("wb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what we write
            torch.jit.save(scripted, f)
        save_state_dict(state, tmp_sd)
    return sd_path


def load_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state_dict file, loaded safely (weights_only=True: never unpickles code)."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise UsageError(f"{path}: not a PyTorch state_dict ({type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise UsageError(f"{path}: holds a {type(state).__name__}, not a state_dict")
    return state
