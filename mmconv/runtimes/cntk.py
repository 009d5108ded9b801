"""Bridge to a real CNTK 2.7, run out of process.

Why out of process: CNTK's last release (2.7) only ships for CPython 3.6 and
mmconv runs on 3.10+, so mmconv never imports cntk.  Instead it runs
:mod:`mmconv.runtimes.cntk_worker` (or a generated script) in a configured CNTK
interpreter, built by ``scripts/setup_cntk_env.sh``.  Arrays cross the
boundary as ``.npz`` files read with ``allow_pickle=False``; requests and
descriptions as JSON.  Nothing here unpickles anything.

Each subprocess start costs about a second (importing cntk), so batch:
:func:`run_models` evaluates several models (or several input sets) in one
CNTK process.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.errors import MmconvError, ModelFormatError, RuntimeUnavailableError
from mmconv.runtimes.bridge import find_interpreter, run_python

#: Where scripts/setup_cntk_env.sh builds the env unless MMCONV_CNTK_HOME says otherwise.
DEFAULT_HOME = Path("~/.cache/mmconv/cntk-env")
#: Seconds a CNTK subprocess may take before we give up (models here are small).
DEFAULT_TIMEOUT = 300.0
WORKER = Path(__file__).with_name("cntk_worker.py")
_WORKER_ERROR_PREFIX = "mmconv-cntk-worker: "
_SETUP_HINT = ("run scripts/setup_cntk_env.sh and set MMCONV_CNTK_PYTHON to the path it "
               "prints")

Inputs = Sequence[np.ndarray] | Mapping[str, np.ndarray]


def find_cntk_python() -> str:
    """The CNTK 2.7 interpreter to run: ``$MMCONV_CNTK_PYTHON``, else the default env.

    The default is the wrapper ``$MMCONV_CNTK_HOME/python`` (``~/.cache/mmconv/
    cntk-env/python``), which puts the MPI soname shims on ``LD_LIBRARY_PATH``;
    the bare venv python would fail to import cntk.
    """
    found = find_interpreter("MMCONV_CNTK_PYTHON", "MMCONV_CNTK_HOME", DEFAULT_HOME, "python",
                             _SETUP_HINT)
    if found is None:
        raise RuntimeUnavailableError(f"no CNTK 2.7 runtime found; {_SETUP_HINT}")
    return found


def _is_noise(line: str) -> bool:
    """CNTK's import-time GPU/distro warnings, which say nothing about the failure."""
    low = line.lower()
    return (
        not line.strip()
        or line.lstrip().startswith(("#", "warnings.warn("))
        or "userwarning" in low
        or "gpu" in low
        or "cuda" in low
        or "cnn library" in low
        or "optional dependency" in low
        or "may crash if the component" in low
        or "cognitive-toolkit/setup-linux-python" in low
    )


def _error_line(stderr: str) -> str:
    """One line for the user from a failed child's stderr.

    In order of preference: the worker's own message; the exception line of
    the last Python traceback (CNTK appends a native ``[CALL STACK]`` to its
    exception text, so the literal last line is a stack address); the last
    line that is neither CNTK's import-time warning noise nor a stack frame.
    """
    lines = stderr.splitlines()
    for line in reversed(lines):
        if line.startswith(_WORKER_ERROR_PREFIX):
            return line[len(_WORKER_ERROR_PREFIX):].strip()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if starts:
        for line in lines[starts[-1] + 1:]:
            if line and not line[0].isspace():
                return line.strip()
    for line in reversed(lines):
        if not _is_noise(line) and not line.lstrip().startswith(("[0x", "[CALL STACK]")):
            return line.strip()
    return "no error message"


def run_script(script_path: str | os.PathLike[str], args: Sequence[str] = (), *,
               python: str | None = None, timeout: float | None = DEFAULT_TIMEOUT,
               cwd: str | os.PathLike[str] | None = None,
               env: Mapping[str, str] | None = None, what: str | None = None,
               isolated: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a Python 3.6 script in the CNTK env; its stdout/stderr come back as text.

    Emitters use this to run generated CNTK code (e.g. to save a ``.model``).
    A non-zero exit or a timeout becomes one :class:`MmconvError` line: the
    last line of the child's stderr with CNTK's GPU warnings filtered out.
    ``what`` names the step in that message (default: the script's name).
    ``isolated`` runs ``python -I`` (script folder not on ``sys.path``, no
    ``PYTHON*`` variables), which the worker needs: it sits beside this
    module, whose name would shadow the ``cntk`` package.
    """
    exe = python or find_cntk_python()
    script = Path(script_path)
    label = what or f"CNTK script {script.name}"
    proc = run_python(exe, script, args, runtime="CNTK", setup_hint=_SETUP_HINT, label=label,
                      timeout=timeout, cwd=cwd, env=env, warnings="ignore::UserWarning",
                      isolated=isolated)
    if proc.returncode != 0:
        raise MmconvError(f"{label} failed: {_error_line(proc.stderr)}")
    return proc


@dataclass(frozen=True)
class RunRequest:
    """One evaluation for :func:`run_models`: a model file, its inputs, the outputs wanted.

    ``inputs`` is a list in the order of the model's ``arguments`` or a dict by
    argument name (or uid).  Arrays carry the batch axis first (and the
    sequence axis second for sequence inputs), as ``Function.eval`` wants.
    ``output_names`` picks functions/outputs by name or uid instead of
    ``model.outputs`` (to localize where two models start to diverge).
    """

    model_path: str | os.PathLike[str]
    inputs: Inputs
    output_names: Sequence[str] | None = None
    #: skip names the model lacks (or has twice) instead of failing: per-layer probing
    lenient: bool = False


def _check_model_path(model_path: str | os.PathLike[str]) -> str:
    path = Path(model_path)
    if not path.exists():
        raise MmconvError(f"CNTK model file {path} does not exist")
    if not path.is_file():
        raise MmconvError(f"CNTK model path {path} is not a file")
    return str(path.resolve())


def _run_worker(jobs: list[dict[str, Any]], tmp: Path, python: str | None,
                timeout: float | None, what: str) -> None:
    request = tmp / "request.json"
    request.write_text(json.dumps({"jobs": jobs}))
    try:
        run_script(WORKER, [str(request)], python=python, timeout=timeout, cwd=tmp, what=what,
                   isolated=True)
    except MmconvError as exc:
        msg = str(exc)
        if "cannot load CNTK model" in msg:
            raise ModelFormatError(msg) from None
        raise


def _job(req: RunRequest, path: str, tmp: Path, i: int) -> dict[str, Any]:
    """The worker's "run" job for one request, its inputs written to ``tmp/in_<i>.npz``."""
    if isinstance(req.inputs, Mapping):
        keys: list[Any] = [str(k) for k in req.inputs]
        arrays = list(req.inputs.values())
    else:
        keys = list(range(len(req.inputs)))
        arrays = list(req.inputs)
    in_npz = tmp / f"in_{i}.npz"
    np.savez(in_npz, **{f"in_{j}": np.asarray(a) for j, a in enumerate(arrays)})
    return {
        "cmd": "run", "model": path, "inputs_npz": str(in_npz), "input_keys": keys,
        "output_names": list(req.output_names) if req.output_names else None,
        "out_npz": str(tmp / f"out_{i}.npz"), "lenient": req.lenient,
    }


def run_models(requests: Sequence[RunRequest], *, python: str | None = None,
               timeout: float | None = DEFAULT_TIMEOUT) -> list[list[np.ndarray]]:
    """Evaluate several models/input sets in ONE CNTK process; outputs per request, in order."""
    requests = list(requests)
    if not requests:
        return []
    paths = [_check_model_path(r.model_path) for r in requests]
    with tempfile.TemporaryDirectory(prefix="mmconv-cntk-") as tmpdir:
        tmp = Path(tmpdir)
        jobs = [_job(req, path, tmp, i)
                for i, (req, path) in enumerate(zip(requests, paths, strict=True))]
        what = f"CNTK evaluation of {Path(paths[0]).name}" + (
            f" (and {len(paths) - 1} more)" if len(paths) > 1 else "")
        _run_worker(jobs, tmp, python, timeout, what)
        results = []
        for job in jobs:
            with np.load(job["out_npz"], allow_pickle=False) as data:
                n = sum(1 for k in data.files if k.startswith("out_"))
                results.append([data[f"out_{j}"] for j in range(n)])
        return results


def probe_model(model_path: str | os.PathLike[str], inputs: Inputs, names: Sequence[str], *,
                python: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
                ) -> dict[str, np.ndarray]:
    """The values of the functions called ``names`` (name or uid) that the model has once
    and can compute from ``inputs``; the others are left out (per-layer verification)."""
    if not names:
        return {}
    path = _check_model_path(model_path)
    with tempfile.TemporaryDirectory(prefix="mmconv-cntk-") as tmpdir:
        tmp = Path(tmpdir)
        job = _job(RunRequest(path, inputs, list(names), lenient=True), path, tmp, 0)
        _run_worker([job], tmp, python, timeout, f"CNTK evaluation of {Path(path).name}")
        with np.load(job["out_npz"], allow_pickle=False) as data:
            found = [int(i) for i in data["found"]]
            return {names[i]: data[f"out_{j}"] for j, i in enumerate(found)}


def run_model(model_path: str | os.PathLike[str], inputs: Inputs,
              output_names: Sequence[str] | None = None, *, python: str | None = None,
              timeout: float | None = DEFAULT_TIMEOUT) -> list[np.ndarray]:
    """Evaluate a CNTK model file (v2 or legacy v1) with real CNTK.

    ``inputs``: list in ``model.arguments`` order, or dict by argument name.
    Returns the outputs in ``model.outputs`` order (or ``output_names`` order).
    """
    return run_models([RunRequest(model_path, inputs, output_names)], python=python,
                      timeout=timeout)[0]


def model_info(model_path: str | os.PathLike[str], *, python: str | None = None,
               timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Arguments and outputs of a model as CNTK sees them.

    ``{"name", "arguments": [{"name", "uid", "shape", "dtype", "dynamic_axes",
    "is_sparse"}...], "outputs": [same keys]}``; shapes are in Python order
    (static axes only), dynamic axes by name (e.g. ``defaultBatchAxis``).
    """
    path = _check_model_path(model_path)
    with tempfile.TemporaryDirectory(prefix="mmconv-cntk-") as tmpdir:
        tmp = Path(tmpdir)
        out = tmp / "info.json"
        _run_worker([{"cmd": "info", "model": path, "out_json": str(out)}], tmp, python,
                    timeout, f"CNTK model_info of {Path(path).name}")
        info: dict[str, Any] = json.loads(out.read_text())
        return info
