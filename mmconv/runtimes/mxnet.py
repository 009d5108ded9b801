"""Bridge to a real MXNet 1.9.1, run out of process.

Why out of process: MXNet is retired and its last release pins numpy < 1.24,
so it can never be a dependency of mmconv (whose numpy is newer).  mmconv runs
:mod:`mmconv.runtimes.mxnet_worker` in an isolated interpreter instead, built
by ``scripts/setup_mxnet_env.sh`` (Python 3.11, mxnet 1.9.1, numpy 1.23.5).
Arrays cross the boundary as ``.npz`` files read with ``allow_pickle=False``;
requests as JSON.  Nothing here unpickles anything.

The interpreter: ``$MMCONV_MXNET_PYTHON``, else ``$MMCONV_MXNET_HOME/bin/python``
(default ``~/.cache/mmconv/mxnet-env``), else this interpreter when mxnet
happens to import here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.errors import MmconvError, ModelFormatError, RuntimeUnavailableError
from mmconv.runtimes.bridge import find_interpreter, run_python

DEFAULT_HOME = Path("~/.cache/mmconv/mxnet-env")
#: Seconds an MXNet subprocess may take (models here are small).
DEFAULT_TIMEOUT = 300.0
WORKER = Path(__file__).with_name("mxnet_worker.py")
_ERROR_PREFIX = "mmconv-mxnet-worker: "
_SETUP_HINT = ("run scripts/setup_mxnet_env.sh and set MMCONV_MXNET_PYTHON to the path it "
               "prints")


def find_mxnet_python() -> str:
    """The interpreter that has mxnet 1.9.1 (see the module docstring for the order)."""
    found = find_interpreter("MMCONV_MXNET_PYTHON", "MMCONV_MXNET_HOME", DEFAULT_HOME,
                             "bin/python", _SETUP_HINT)
    if found is not None:
        return found
    if importlib.util.find_spec("mxnet") is not None:
        return sys.executable
    raise RuntimeUnavailableError(f"no MXNet 1.9.1 runtime found; {_SETUP_HINT}")


def _error_line(stderr: str) -> str:
    """The worker's own message, else the last non-blank line of the child's stderr."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(_ERROR_PREFIX):
            return line[len(_ERROR_PREFIX):].strip()
    return lines[-1].strip() if lines else "no error message"


def _run_jobs(jobs: list[dict[str, Any]], tmp: Path, what: str, python: str | None,
              timeout: float | None) -> None:
    exe = python or find_mxnet_python()
    request = tmp / "request.json"
    request.write_text(json.dumps({"jobs": jobs}))
    proc = run_python(exe, WORKER, [str(request)], runtime="MXNet", setup_hint=_SETUP_HINT,
                      label=what, timeout=timeout, cwd=tmp, isolated=True)
    if proc.returncode != 0:
        line = _error_line(proc.stderr)
        if "cannot load MXNet checkpoint" in line:
            raise ModelFormatError(line)
        raise MmconvError(f"{what} failed: {line}")


@dataclass(frozen=True)
class RunRequest:
    """One forward pass: checkpoint ``prefix`` (+ ``epoch``), inputs by symbol input name.

    ``api`` is ``"module"`` (``load_checkpoint`` + ``Module``) or ``"gluon"``
    (``SymbolBlock.imports``); ``outputs`` names internal nodes to return instead of
    the heads (to find where two models diverge).
    """

    prefix: str | os.PathLike[str]
    inputs: Mapping[str, np.ndarray]
    epoch: int = 0
    api: str = "module"
    outputs: Sequence[str] | None = None


def run_checkpoints(requests: Sequence[RunRequest], *, python: str | None = None,
                    timeout: float | None = DEFAULT_TIMEOUT) -> list[list[np.ndarray]]:
    """Run several checkpoints in ONE MXNet process; outputs per request, in order."""
    requests = list(requests)
    if not requests:
        return []
    with tempfile.TemporaryDirectory(prefix="mmconv-mxnet-") as tmpdir:
        tmp = Path(tmpdir)
        jobs = []
        for i, req in enumerate(requests):
            if req.api not in ("module", "gluon"):
                raise ValueError(f"api must be 'module' or 'gluon', not {req.api!r}")
            prefix = str(Path(req.prefix).resolve())
            symbol = Path(f"{prefix}-symbol.json")
            if not symbol.is_file():
                raise MmconvError(f"MXNet symbol file {symbol} does not exist")
            names = list(req.inputs)
            np.savez(tmp / f"in_{i}.npz",
                     **{f"in_{j}": np.asarray(req.inputs[n]) for j, n in enumerate(names)})
            jobs.append({"cmd": "run", "prefix": prefix, "epoch": int(req.epoch),
                         "api": req.api, "inputs_npz": str(tmp / f"in_{i}.npz"),
                         "input_names": names,
                         "outputs": list(req.outputs) if req.outputs else None,
                         "out_npz": str(tmp / f"out_{i}.npz")})
        _run_jobs(jobs, tmp, f"MXNet evaluation of {Path(requests[0].prefix).name}", python,
                  timeout)
        results = []
        for job in jobs:
            with np.load(job["out_npz"], allow_pickle=False) as data:
                n = sum(1 for k in data.files if k.startswith("out_"))
                results.append([data[f"out_{j}"] for j in range(n)])
        return results


def run_checkpoint(prefix: str | os.PathLike[str], inputs: Mapping[str, np.ndarray], *,
                   epoch: int = 0, api: str = "module", outputs: Sequence[str] | None = None,
                   python: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
                   ) -> list[np.ndarray]:
    """Forward one checkpoint with real MXNet; the symbol's heads (or ``outputs``) in order."""
    return run_checkpoints([RunRequest(prefix, inputs, epoch, api, outputs)], python=python,
                           timeout=timeout)[0]


def probe_checkpoint(prefix: str | os.PathLike[str], inputs: Mapping[str, np.ndarray],
                     names: Sequence[str], *, epoch: int = 0, python: str | None = None,
                     timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, np.ndarray]:
    """The values of the symbol nodes called ``names`` (``get_internals``) for ``inputs``;
    names the symbol does not have are left out (``--layers`` compares what both sides
    have)."""
    with tempfile.TemporaryDirectory(prefix="mmconv-mxnet-") as tmpdir:
        tmp = Path(tmpdir)
        order = list(inputs)
        np.savez(tmp / "in.npz", **{f"in_{j}": np.asarray(inputs[n]) for j, n in
                                    enumerate(order)})
        job = {"cmd": "run", "prefix": str(Path(prefix).resolve()), "epoch": int(epoch),
               "api": "module", "inputs_npz": str(tmp / "in.npz"), "input_names": order,
               "outputs": list(names), "skip_missing": True, "out_npz": str(tmp / "out.npz")}
        _run_jobs([job], tmp, f"MXNet probe of {Path(prefix).name}", python, timeout)
        with np.load(tmp / "out.npz", allow_pickle=False) as data:
            found = [str(n) for n in data["names"]]
            return {name: data[f"out_{i}"] for i, name in enumerate(found)}


def save_from_code(code_path: str | os.PathLike[str], weights_path: str | os.PathLike[str],
                   prefix: str | os.PathLike[str], epoch: int = 0, *,
                   python: str | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """Run generated MXNet code (``KitModel(weights)``) and ``save_checkpoint`` it to ``prefix``."""
    save_many_from_code([(code_path, weights_path, prefix, epoch)], python=python,
                        timeout=timeout)


def save_many_from_code(jobs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str],
                                             str | os.PathLike[str], int]], *,
                        python: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
                        ) -> None:
    """:func:`save_from_code` for several (code, weights, prefix, epoch) in ONE MXNet process."""
    if not jobs:
        return
    with tempfile.TemporaryDirectory(prefix="mmconv-mxnet-") as tmpdir:
        requests = [{"cmd": "save", "code": str(Path(code).resolve()),
                     "weights": str(Path(weights).resolve()),
                     "prefix": str(Path(prefix).resolve()), "epoch": int(epoch)}
                    for code, weights, prefix, epoch in jobs]
        _run_jobs(requests, Path(tmpdir), f"building {Path(jobs[0][2]).name} in MXNet",
                  python, timeout)
