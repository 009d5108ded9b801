"""What the out-of-process runtimes (CNTK 2.7, MXNet 1.9.1) share.

Both run a worker or generated code in an interpreter of their own, found the
same way (an explicit ``MMCONV_<X>_PYTHON``, else the env a setup script built
under ``MMCONV_<X>_HOME``), and start it the same way: our ``PYTHONPATH`` and
``PYTHONHOME`` removed (the child is another Python), no ``__pycache__`` written
beside the user's files, a timeout and a failure to start each one clear line.
What differs (which warnings are noise, how a failure's stderr reads) stays in
each runtime's module.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from mmconv.errors import MmconvError, RuntimeUnavailableError


def find_interpreter(python_var: str, home_var: str, default_home: Path, relative: str,
                     setup_hint: str) -> str | None:
    """``$python_var`` (an error when it is not executable), else ``$home_var/relative``
    (``default_home`` when the variable is unset) if it exists, else None."""
    explicit = os.environ.get(python_var)
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise RuntimeUnavailableError(f"{python_var}={explicit} is not an executable file; "
                                      f"{setup_hint}")
    home = Path(os.environ.get(home_var) or default_home).expanduser()
    candidate = home / relative
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return None


def run_python(exe: str, script: str | os.PathLike[str], args: Sequence[str], *,
               runtime: str, setup_hint: str, label: str, timeout: float | None,
               cwd: str | os.PathLike[str] | None = None,
               env: Mapping[str, str] | None = None, warnings: str = "ignore",
               isolated: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``exe script args`` and return the finished process (any exit code).

    ``-B`` and ``PYTHONDONTWRITEBYTECODE`` keep bytecode from being written beside
    the script (``-I`` ignores the variable, hence both).  ``isolated`` (``-I``)
    keeps the script's folder off ``sys.path``: a worker beside a module named like
    the framework would otherwise shadow it.
    """
    child_env = dict(os.environ)
    if env:
        child_env.update(env)
    child_env.pop("PYTHONPATH", None)
    child_env.pop("PYTHONHOME", None)
    child_env.setdefault("PYTHONWARNINGS", warnings)
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        return subprocess.run(
            [exe, "-B", *(["-I"] if isolated else []), str(script), *map(str, args)],
            capture_output=True, text=True, timeout=timeout, cwd=cwd, env=child_env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MmconvError(f"{label} timed out after {exc.timeout:g} s") from None
    except OSError as exc:
        raise RuntimeUnavailableError(
            f"cannot start the {runtime} interpreter {exe}: {exc.strerror}; {setup_hint}"
        ) from None
