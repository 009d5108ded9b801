"""Worker run by :mod:`mmconv.runtimes.cntk` inside the CNTK 2.7 interpreter (Python 3.6).

Why a separate script: CNTK's last release only exists for CPython 3.6, so
mmconv (3.10+) never imports cntk; it runs this file in a configured CNTK
Python instead.  Constraints that follow from that:

- Python 3.6 syntax only (no ``from __future__ import annotations``, no
  walrus, no dataclasses); stdlib + numpy + cntk only; no mmconv imports.
- Arrays cross the process boundary as ``.npz`` files written and read
  without pickle; everything else as JSON.

Usage::

    python cntk_worker.py REQUEST.json

``REQUEST.json`` is ``{"jobs": [job, ...]}``; all jobs run in this one
process (a CNTK start costs about a second, so callers batch).  Jobs:

- ``{"cmd": "run", "model": PATH, "inputs_npz": PATH, "input_keys": [K, ...],
  "output_names": null | [NAME, ...], "out_npz": PATH}`` evaluates the model.
  ``inputs_npz`` holds ``in_0, in_1, ...``; ``input_keys[i]`` says which model
  argument ``in_i`` feeds: an int (position in ``model.arguments``) or a
  string (argument name or uid).  ``out_npz`` receives ``out_0, ...`` (order
  of ``model.outputs``, or of ``output_names``) and ``output_names``.
  With ``"lenient": true`` (per-layer verification), names the model does not
  have, has twice, or cannot compute from the given inputs are skipped instead
  of failing: ``out_npz`` then holds ``out_<i>`` only for the names found, and
  ``found`` lists their indices into ``output_names``.
- ``{"cmd": "info", "model": PATH, "out_json": PATH}`` describes arguments
  and outputs as CNTK sees them.

Errors: the worker exits with status 2 and the last line of stderr is
``mmconv-cntk-worker: <one-line message>`` which the bridge shows the user.
"""

import json
import os
import sys
import warnings

# This file sits next to mmconv/runtimes/cntk.py, and Python puts a script's
# folder first on sys.path: without this, "import cntk" would find the bridge.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

ERROR_PREFIX = "mmconv-cntk-worker: "


class WorkerError(Exception):
    """A problem to report to the user in one line (bad model, bad input name...)."""


def _first_line(exc):
    """CNTK's native exceptions carry a multi-line C++ call stack; keep the message."""
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("[CALL STACK]"):
            return line
    return type(exc).__name__


def _import_cntk():
    # The GPU/distro warnings CNTK emits on import are noise for our callers.
    warnings.filterwarnings("ignore", category=UserWarning)
    import cntk  # noqa: E402  (imported late so the filter above applies)

    try:
        cntk.device.try_set_default_device(cntk.device.cpu())
    except Exception:  # already set, or CPU-only build: either way CPU is used
        pass
    return cntk


def _load(cntk, path):
    try:
        return cntk.load_model(path)
    except Exception as exc:
        raise WorkerError("cannot load CNTK model %s: %s" % (path, _first_line(exc)))


def _axes_names(var):
    try:
        return [ax.name for ax in var.dynamic_axes]
    except Exception:
        return []


def _dtype_name(np, var):
    try:
        return np.dtype(var.dtype).name
    except Exception:
        return str(var.dtype)


def _describe(np, var):
    return {
        "name": var.name,
        "uid": var.uid,
        "shape": [int(d) for d in var.shape],
        "dtype": _dtype_name(np, var),
        "dynamic_axes": _axes_names(var),
        "is_sparse": bool(getattr(var, "is_sparse", False)),
    }


def _find_argument(model, key):
    args = list(model.arguments)
    if isinstance(key, int):
        if key < 0 or key >= len(args):
            raise WorkerError("input %d given but the model has %d argument(s)" % (key, len(args)))
        return args[key]
    by_uid = [a for a in args if a.uid == key]
    if by_uid:
        return by_uid[0]
    by_name = [a for a in args if a.name == key]
    if len(by_name) == 1:
        return by_name[0]
    names = ", ".join(repr(a.name or a.uid) for a in args)
    if not by_name:
        raise WorkerError("the model has no argument named %r (arguments: %s)" % (key, names))
    raise WorkerError("argument name %r is ambiguous; use a uid (arguments: %s)" % (key, names))


def _find_output(cntk, model, name):
    """An output Variable of ``model`` or of any function in its top-level graph.

    Matches a function name or uid (its first output), or an output variable's
    name or uid (``<function uid>_Output_<i>``).  Functions hidden inside a
    block (a cntk.layers layer) cannot be evaluated from outside the block, so
    the search stays at depth 0.
    """
    for out in model.outputs:
        if name in (out.name, out.uid):
            return out
    found = cntk.logging.graph.depth_first_search(
        model.root_function, lambda f: isinstance(f, cntk.Function), depth=0
    )
    for func in found:
        for out in func.outputs:
            if name in (out.name, out.uid):
                return out
    for func in found:
        if name in (func.name, func.uid):
            return func.outputs[0]
    raise WorkerError("the model has no node or output named %r" % (name,))


def _find_unique(cntk, model, name):
    """Like _find_output, but None when ``name`` is missing or names several functions
    (per-layer verification must not compare a value with the wrong one)."""
    found = cntk.logging.graph.depth_first_search(
        model.root_function, lambda f: isinstance(f, cntk.Function), depth=0
    )
    by_uid = [o for f in found for o in f.outputs if o.uid == name]
    by_uid += [f.outputs[0] for f in found if f.uid == name]
    if by_uid:
        return by_uid[0]
    by_name = [f for f in found if f.name == name]
    if len(by_name) == 1 and len(by_name[0].outputs) == 1:
        return by_name[0].outputs[0]
    return None


def _run(cntk, np, job):
    model = _load(cntk, job["model"])
    lenient = bool(job.get("lenient"))
    found = None
    if lenient:
        pairs = [(i, _find_unique(cntk, model, n)) for i, n in enumerate(job["output_names"])]
        pairs = [(i, o) for i, o in pairs if o is not None]
        found = [i for i, _ in pairs]
        outputs = [o for _, o in pairs]
    elif job.get("output_names"):
        outputs = [_find_output(cntk, model, n) for n in job["output_names"]]
    else:
        outputs = list(model.outputs)
    feeds = _feeds(cntk, np, model, job)
    if lenient:
        # values that need an argument not given (a label) are not comparable: skip them
        keep = [k for k, o in enumerate(outputs)
                if all(a in feeds for a in cntk.combine([o]).arguments)]
        found = [found[k] for k in keep]
        outputs = [outputs[k] for k in keep]
        if not outputs:
            np.savez(job["out_npz"], found=np.array([], dtype=np.int64))
            return
    # Only the arguments the requested outputs depend on are required (a model saved
    # with its loss has a label input that its prediction does not need).
    needed = cntk.combine(outputs).arguments
    missing = [a.name or a.uid for a in needed if a not in feeds]
    if missing:
        raise WorkerError("no value given for model argument(s): %s" % ", ".join(missing))
    feeds = {a: v for a, v in feeds.items() if a in needed}

    func = cntk.combine(outputs)
    try:
        result = func.eval(feeds, outputs=list(func.outputs), as_numpy=True)
    except Exception as exc:
        raise WorkerError("CNTK failed to evaluate %s: %s" % (job["model"], _first_line(exc)))
    if not isinstance(result, dict):
        result = {func.outputs[0]: result}
    arrays = {}
    names = []
    for i, out in enumerate(outputs):
        value = _lookup(result, out)
        if isinstance(value, list):
            try:
                value = np.stack([np.asarray(v) for v in value])
            except ValueError:
                raise WorkerError("output %r has sequences of different lengths; "
                                  "give sequences of equal length" % (out.name or out.uid,))
        arrays["out_%d" % i] = np.ascontiguousarray(np.asarray(value))
        names.append(out.name or out.uid)
    arrays["output_names"] = np.array(names, dtype=np.str_)
    if found is not None:
        arrays["found"] = np.array(found, dtype=np.int64)
    np.savez(job["out_npz"], **arrays)


def _feeds(cntk, np, model, job):
    """Model argument -> input array, from the job's npz and keys."""
    feeds = {}
    with np.load(job["inputs_npz"], allow_pickle=False) as data:
        for i, key in enumerate(job["input_keys"]):
            arg = _find_argument(model, key)
            if arg in feeds:
                raise WorkerError("argument %r is given twice" % (arg.name or arg.uid,))
            value = data["in_%d" % i]
            want = np.dtype(arg.dtype)
            if value.dtype != want:
                value = value.astype(want)
            feeds[arg] = value
    return feeds


def _lookup(result, out):
    """The value CNTK computed for ``out`` (combine() may hand back equal, not identical, vars)."""
    if out in result:
        return result[out]
    for key, value in result.items():
        if key.uid == out.uid:
            return value
    if len(result) == 1:
        return next(iter(result.values()))
    raise WorkerError("CNTK returned no value for output %r" % (out.name or out.uid,))


def _info(cntk, np, job):
    model = _load(cntk, job["model"])
    info = {
        "name": model.name,
        "arguments": [_describe(np, a) for a in model.arguments],
        "outputs": [_describe(np, o) for o in model.outputs],
    }
    with open(job["out_json"], "w") as fh:
        json.dump(info, fh, indent=1)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(ERROR_PREFIX + "usage: cntk_worker.py REQUEST.json\n")
        return 2
    try:
        with open(argv[1]) as fh:
            request = json.load(fh)
        cntk = _import_cntk()
        import numpy as np

        for job in request["jobs"]:
            cmd = job.get("cmd")
            if cmd == "run":
                _run(cntk, np, job)
            elif cmd == "info":
                _info(cntk, np, job)
            else:
                raise WorkerError("unknown job %r" % (cmd,))
    except WorkerError as exc:
        sys.stderr.write(ERROR_PREFIX + str(exc) + "\n")
        return 2
    except Exception as exc:  # still one line for the user; the traceback helps us
        import traceback

        traceback.print_exc()
        sys.stderr.write(ERROR_PREFIX + "%s: %s\n" % (type(exc).__name__, _first_line(exc)))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
