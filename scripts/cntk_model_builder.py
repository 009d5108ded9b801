"""The driver shared by the scripts that build CNTK models with real CNTK 2.7.

Why: ``make_cntk_fixtures.py`` (the checked-in test fixtures) and
``make_zoo_models.py`` (the big zoo, built at run time) do the same work around
their model definitions: seed, randomize every weight and BatchNormalization
statistic, save ``Function.save`` (v2) and ``save_as_legacy_model`` (v1) files
and check them by reloading, write ``NAME.io.npz`` and ``MANIFEST.json``, and
build every model in its own child process.  That work lives here once; each
script keeps its models, its defaults and what its manifest says.

Runs in the CNTK env (Python 3.6: no walrus, no ``f"{x=}"``, no
``from __future__ import annotations``; stdlib + numpy + cntk, no mmconv).
The scripts run as scripts, so this folder is on ``sys.path`` and they import
it as ``cntk_model_builder``.
"""

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import traceback

import cntk as C
import numpy as np

BATCH = 2


# ---------------------------------------------------------------- weights

def seed_for(name):
    """A per-model seed so adding a model never changes the others' numbers."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16)


def seeded_rng(name):
    """Seed CNTK's own random numbers for ``name``; return numpy's generator for it."""
    C.cntk_py.set_fixed_random_seed(seed_for(name) % 100000)
    return np.random.RandomState(seed_for(name))


def fan_in(shape):
    """conv W: (out, in, kh, kw) -> in*kh*kw; dense W: (in, out) -> in."""
    if len(shape) <= 1:
        return max(1, int(shape[0]) if shape else 1)
    if len(shape) >= 3:
        return int(np.prod(shape[1:]))
    return int(shape[0])


def randomize(function, rng, gain):
    """Overwrite every parameter and BN statistic with seeded, non-default values.

    Weights are normal with std ``sqrt(gain / fan_in)``: 2.0 (He) for the small
    fixtures, 1.0 (LeCun) for the zoo, whose deep residual stacks would blow up
    activations otherwise (their BN statistics do not match the data).
    """
    # CNTK's graph order; not sorted by uid, whose numbers depend on what was built before
    for p in function.parameters:
        shape = tuple(p.shape)
        dt = np.dtype(p.dtype)
        name = p.name
        if name == "scale":
            v = rng.uniform(0.5, 1.5, shape)
        elif name in ("bias", "b"):
            v = rng.normal(0.0, 0.1, shape)
        elif name == "alpha":  # param_relu slopes
            v = rng.uniform(0.05, 0.3, shape)
        else:
            v = rng.normal(0.0, np.sqrt(gain / fan_in(shape)), shape)
        p.value = np.asarray(v, dtype=dt)
    for c in function.constants:
        shape = tuple(c.shape)
        dt = np.dtype(c.dtype)
        if c.name == "aggregate_mean":
            c.value = np.asarray(rng.normal(0.0, 0.2, shape), dtype=dt)
        elif c.name == "aggregate_variance":
            c.value = np.asarray(rng.uniform(0.5, 1.5, shape), dtype=dt)
        elif c.name == "aggregate_count":
            # scalar constants refuse some value types; the count is cosmetic at inference
            with contextlib.suppress(Exception):
                c.value = np.asarray(np.full(shape, 100.0), dtype=dt)


# ---------------------------------------------------------------- files

def evaluate(function, feeds):
    """Every output of ``function`` (in ``function.outputs`` order) for ``feeds``."""
    outs = list(function.outputs)
    res = function.eval(feeds, outputs=outs)
    if not isinstance(res, dict):
        res = {outs[0]: res}
    return [np.asarray(res[o]) for o in outs]


def save_v2(function, path):
    """``Function.save`` to ``path``; return the model loaded back from the file."""
    function.save(path)
    return C.load_model(path)


def require_finite(name, outputs):
    for o in outputs:
        if not np.all(np.isfinite(o)):
            raise RuntimeError(f"{name}: non-finite reference output")


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def save_legacy(function, path, check):
    """Write ``function`` with ``save_as_legacy_model`` and run ``check(path)`` on it.

    Returns ``(check's result, None)``, or ``(None, why)`` with the file removed
    when CNTK cannot write, reload or evaluate the legacy model: the v1 reader
    simply has no file to test for that model, and the manifest says why.
    """
    try:
        C.cntk_py.save_as_legacy_model(function, path)
        return check(path), None
    except Exception as exc:
        if os.path.exists(path):
            os.remove(path)
        return None, first_line(exc)


def write_io(path, inputs, outputs, reloaded):
    """``in_<i>``/``out_<i>`` plus ``input_names``/``output_names`` (loadable without pickle)."""
    arrays = {}
    for i, a in enumerate(inputs):
        arrays[f"in_{i}"] = np.ascontiguousarray(a)
    for i, o in enumerate(outputs):
        arrays[f"out_{i}"] = np.ascontiguousarray(o)
    arrays["input_names"] = np.array([a.name for a in reloaded.arguments], dtype=np.str_)
    arrays["output_names"] = np.array([o.name or o.uid for o in reloaded.outputs],
                                      dtype=np.str_)
    np.savez(path, **arrays)


# ---------------------------------------------------------------- processes

def _child(name, builders, build, out_dir, verbose):
    """Build one model in this (fresh) process; print its manifest entry as JSON."""
    with contextlib.suppress(Exception):  # already CPU-only
        C.device.try_set_default_device(C.device.cpu())
    try:
        entry = build(name, builders[name], out_dir)
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        print(json.dumps({"name": name, "failed": first_line(exc)}))
        return 1
    print(json.dumps(entry))
    return 0


def _run_children(script, names, out_dir, jobs, verbose, describe):
    """Each model in its own process (``script --child NAME``), ``jobs`` at a time.

    Why: CNTK numbers uids (``Parameter123``) from process-wide counters, so
    building models in one process would make every model file depend on all
    the models built before it (adding one would rewrite the others), and a
    crash in one model must not take the others down.
    """
    pending = list(names)
    running = []
    results = {}
    while pending or running:
        while pending and len(running) < jobs:
            name = pending.pop(0)
            cmd = [sys.executable, "-W", "ignore", script, "--child", name,
                   "--out", out_dir] + (["--verbose"] if verbose else [])
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                    stderr=None if verbose else subprocess.DEVNULL,
                                    universal_newlines=True)
            running.append((name, proc))
        name, proc = running.pop(0)
        out, _ = proc.communicate()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        entry = (json.loads(lines[-1]) if lines
                 else {"name": name, "failed": f"child exited with {proc.returncode}"})
        results[name] = entry
        sys.stderr.write("{:<28} {}\n".format(
            name, "FAILED: " + entry["failed"] if "failed" in entry else describe(entry)))
    return results


def main(argv, *, doc, script, builders, build, default_out, noun, manifest_key, describe):
    """The command line both scripts share.

    ``builders``: ``[(name, func)]`` in build order; ``build(name, func, out_dir)``
    makes the files and returns the manifest entry; ``describe(entry)`` is the
    progress line's text; ``manifest_key`` names the list in ``MANIFEST.json``.
    ``--only`` keeps the other entries of an existing manifest.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", default=default_out, help="output folder")
    parser.add_argument("--only", nargs="*", help=f"build only these {noun}s")
    parser.add_argument("--list", action="store_true", help=f"list {noun} names and exit")
    parser.add_argument("--jobs", type=int, default=2, help=f"{noun}s built in parallel")
    parser.add_argument("--verbose", action="store_true", help="show CNTK output and tracebacks")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        for name, _ in builders:
            print(name)
        return 0
    os.makedirs(args.out, exist_ok=True)
    if args.child:
        return _child(args.child, dict(builders), build, args.out, args.verbose)
    known = [n for n, _ in builders]
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        parser.error(f"unknown {noun}(s): " + ", ".join(unknown))
    manifest_path = os.path.join(args.out, "MANIFEST.json")
    entries = {}
    if args.only and os.path.exists(manifest_path):  # keep the others' entries
        with open(manifest_path) as fh:
            entries = {e["name"]: e for e in json.load(fh)[manifest_key]}
    names = [n for n in known if not args.only or n in args.only]
    results = _run_children(os.path.abspath(script), names, args.out, max(1, args.jobs),
                            args.verbose, describe)
    failed = []
    for name in names:
        entry = results[name]
        if "failed" in entry:
            failed.append(name)
            entries.pop(name, None)
        else:
            entries[name] = entry
    manifest = {
        "generator": "scripts/" + os.path.basename(script),
        "cntk_version": C.__version__,
        "batch": BATCH,
        manifest_key: sorted(entries.values(),
                             key=lambda e: known.index(e["name"]) if e["name"] in known else 1e9),
    }
    with open(manifest_path, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")
    if failed:
        sys.stderr.write("FAILED: {}\n".format(", ".join(failed)))
        return 1
    return 0
