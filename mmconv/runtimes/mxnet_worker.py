"""Worker run by :mod:`mmconv.runtimes.mxnet` inside the MXNet 1.9.1 interpreter.

Why a separate script (Python 3.10+; the env is 3.11): MXNet is retired and
pins numpy < 1.24, so mmconv never depends on it; it runs this file in the
isolated env ``scripts/setup_mxnet_env.sh`` builds.  Constraints that follow:
stdlib + numpy + mxnet only, no mmconv imports; arrays cross the process
boundary as ``.npz`` files read without pickle, everything else as JSON.

Usage::

    python mxnet_worker.py REQUEST.json

``REQUEST.json`` is ``{"jobs": [job, ...]}``, all run in this process (importing
mxnet costs about a second).  Jobs:

- ``{"cmd": "run", "prefix": P, "epoch": E, "api": "module" | "gluon",
  "inputs_npz": PATH, "input_names": [...], "outputs": null | [NAME, ...],
  "out_npz": PATH}``: load the checkpoint ``P-symbol.json`` + ``P-%04d.params``
  (``mx.model.load_checkpoint`` and a bound ``mx.mod.Module``, or
  ``gluon.SymbolBlock.imports``), feed ``in_0, in_1, ...`` to the named inputs,
  and write the heads (or, with ``outputs``, the internal outputs of those
  symbol nodes, ``"skip_missing": true`` leaving out names the symbol lacks and
  listing the found ones as ``names``) as ``out_0, ...``.
- ``{"cmd": "save", "code": PATH, "weights": PATH, "prefix": P, "epoch": E}``:
  import generated code, call ``KitModel(weights)`` -> ``(symbol, arg_params,
  aux_params)`` and ``mx.model.save_checkpoint`` it.

Errors: exit status 2 and a last stderr line ``mmconv-mxnet-worker: <message>``.
"""

import importlib.util
import json
import os
import sys
import warnings

# Python puts a script's folder first on sys.path, and this folder holds the
# bridge module mxnet.py: without this, "import mxnet" would find the bridge.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

ERROR_PREFIX = "mmconv-mxnet-worker: "


class WorkerError(Exception):
    """A problem to report to the user in one line."""


def _first_line(exc):
    """The message of an exception in one line.

    MXNet's errors wrap the C++ message in a traceback of their own
    ("Traceback (most recent call last):", frames, then "MXNetError: <message>"):
    the message is the last line that is not part of that frame list.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    keep = [line for line in lines
            if not line.startswith(("Traceback (most recent", "File ", "[bt]", "Stack trace",
                                    "[CALL STACK]"))
            and not line.startswith(tuple(f"{i}:" for i in range(10)))]
    if not keep:
        return type(exc).__name__
    text = keep[-1] if len(lines) > 1 and lines[0].startswith("Traceback") else keep[0]
    return text[len("MXNetError: "):] if text.startswith("MXNetError: ") else text


def _load_inputs(job):
    import numpy as np

    with np.load(job["inputs_npz"], allow_pickle=False) as data:
        return [data[f"in_{i}"] for i in range(len(job["input_names"]))]


def _select(symbol, outputs, skip_missing=False):
    """(symbol, names): the symbol's heads, or a group of the named internal outputs
    (node name or output name); with ``skip_missing`` names the symbol lacks are left out."""
    import mxnet as mx

    if not outputs:
        return symbol, None
    internals = symbol.get_internals()
    names = internals.list_outputs()
    picked, found = [], []
    for name in outputs:
        key = name if name in names else name + "_output"
        if key not in names:
            if skip_missing:
                continue
            raise WorkerError(f"the symbol has no output {name!r}")
        picked.append(internals[names.index(key)])
        found.append(name)
    if not picked:
        return None, []
    return mx.sym.Group(picked), found


def _run_module(job, arrays):
    import mxnet as mx

    try:
        symbol, args, auxs = mx.model.load_checkpoint(job["prefix"], job["epoch"])
    except Exception as exc:
        raise WorkerError(f"cannot load MXNet checkpoint {job['prefix']}: "
                          f"{_first_line(exc)}") from None
    symbol, found = _select(symbol, job.get("outputs"), job.get("skip_missing", False))
    if symbol is None:
        return [], found
    names = job["input_names"]
    module = mx.mod.Module(symbol, data_names=names, label_names=None, context=mx.cpu())
    # Module slices its inputs along a batch axis and insists they agree; an input
    # whose leading axis is not the batch (ROI boxes) is declared without one.
    batch = arrays[0].shape[0] if arrays and arrays[0].ndim else None
    descs = [mx.io.DataDesc(n, a.shape, a.dtype,
                            layout="N" if a.ndim and a.shape[0] == batch else "")
             for n, a in zip(names, arrays, strict=True)]
    module.bind(data_shapes=descs, for_training=False)
    module.set_params(args, auxs, allow_missing=False, allow_extra=True)
    module.forward(mx.io.DataBatch([mx.nd.array(a, dtype=a.dtype) for a in arrays]),
                   is_train=False)
    return [o.asnumpy() for o in module.get_outputs()], found


def _run_gluon(job, arrays):
    import mxnet as mx

    params = f"{job['prefix']}-{job['epoch']:04d}.params"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = mx.gluon.SymbolBlock.imports(job["prefix"] + "-symbol.json",
                                               job["input_names"], params, ctx=mx.cpu())
    except Exception as exc:
        raise WorkerError(f"cannot load MXNet checkpoint {job['prefix']}: "
                          f"{_first_line(exc)}") from None
    out = net(*[mx.nd.array(a, dtype=a.dtype) for a in arrays])
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [o.asnumpy() for o in outs], None


def _run(job):
    import numpy as np

    arrays = _load_inputs(job)
    if job.get("api", "module") == "gluon":
        outs, found = _run_gluon(job, arrays)
    else:
        outs, found = _run_module(job, arrays)
    extra = {} if found is None else {"names": np.array(found, dtype=str)}
    np.savez(job["out_npz"], **{f"out_{i}": o for i, o in enumerate(outs)}, **extra)


def _save(job):
    import mxnet as mx

    sys.dont_write_bytecode = True  # no __pycache__ beside the user's code

    spec = importlib.util.spec_from_file_location("mmconv_generated_mxnet_model", job["code"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    symbol, args, auxs = module.KitModel(job["weights"])
    mx.model.save_checkpoint(job["prefix"], job["epoch"], symbol, args, auxs)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(ERROR_PREFIX + "usage: mxnet_worker.py REQUEST.json\n")
        return 2
    with open(argv[1]) as f:
        jobs = json.load(f)["jobs"]
    try:
        for job in jobs:
            if job["cmd"] == "run":
                _run(job)
            elif job["cmd"] == "save":
                _save(job)
            else:
                raise WorkerError(f"unknown job {job['cmd']!r}")
    except WorkerError as exc:
        sys.stderr.write(ERROR_PREFIX + str(exc) + "\n")
        return 2
    except Exception as exc:
        sys.stderr.write(f"{ERROR_PREFIX}{type(exc).__name__}: {_first_line(exc)}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
