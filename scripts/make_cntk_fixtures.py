"""Build the CNTK fixture models mmconv's tests convert, with real CNTK 2.7.

Why: the CNTK frontend reads model files without CNTK, so its tests need real
files written by real CNTK, in both formats, with reference outputs that CNTK
itself computed.  This script is the only place those come from.

Run it in the CNTK env (Python 3.6; no mmconv imports)::

    $(scripts/setup_cntk_env.sh) scripts/make_cntk_fixtures.py --out tests/fixtures/cntk

For every fixture ``NAME`` it writes

- ``NAME.v2.model``  ``Function.save`` (protobuf Dictionary format)
- ``NAME.v1.model``  ``cntk.cntk_py.save_as_legacy_model`` (legacy binary), when
  CNTK can write the model in that format (else recorded in the manifest)
- ``NAME.io.npz``    ``in_0, in_1 ...`` (order of ``model.arguments``, batch of 2),
  ``out_0 ...`` (order of ``model.outputs``) computed by CNTK from the v2 model,
  and ``input_names`` / ``output_names`` (unicode arrays, loadable without pickle)

and ``MANIFEST.json`` describing them all.  Everything is deterministic (fixed
seeds; every parameter and BatchNormalization statistic is overwritten with
seeded random values, so a converter that ignores one of them fails).
"""

# ruff: noqa: B905  (zip(strict=) does not exist on Python 3.6, where this runs)

import argparse
import contextlib
import hashlib
import json
import os
import sys
import traceback
import warnings

warnings.filterwarnings("ignore", category=UserWarning)

import cntk as C  # noqa: E402
import numpy as np  # noqa: E402

BATCH = 2
MAX_BYTES = 2 * 1024 * 1024
FIXTURES = []  # (name, function) in priority order


def fixture(func):
    """Register a fixture builder; its name (minus ``fx_``) names the files."""
    FIXTURES.append((func.__name__[3:], func))
    return func


class Spec:
    """What a builder returns: the model plus what the manifest says about it."""

    def __init__(self, model, families, ops, inputs=None, notes=""):
        self.model = model
        self.families = list(families)
        self.ops = list(ops)
        self.inputs = inputs  # optional list of arrays (order of model.arguments)
        self.notes = notes


# ---------------------------------------------------------------- weights

def _seed(name):
    """A per-fixture seed so adding a fixture never changes the others' numbers."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16)


def _fan_in(shape):
    if len(shape) <= 1:
        return max(1, int(shape[0]) if shape else 1)
    # conv W: (out, in, kh, kw) -> in*kh*kw; dense W: (in..., out) -> in
    if len(shape) >= 3:
        return int(np.prod(shape[1:]))
    return int(shape[0])


def randomize(model, rng):
    """Overwrite every parameter and BN statistic with seeded, non-default values."""
    for p in sorted(model.parameters, key=lambda v: v.uid):
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
            v = rng.normal(0.0, np.sqrt(2.0 / _fan_in(shape)), shape)
        p.value = np.asarray(v, dtype=dt)
    for c in sorted(model.constants, key=lambda v: v.uid):
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


def default_inputs(model, rng):
    arrays = []
    for a in model.arguments:
        shape = (BATCH, *a.shape)
        if len(a.dynamic_axes) == 0:
            shape = tuple(a.shape)
        elif len(a.dynamic_axes) > 1:
            shape = (BATCH, 1, *a.shape)
        arrays.append(np.asarray(rng.normal(0.0, 1.0, shape), dtype=np.dtype(a.dtype)))
    return arrays


# ---------------------------------------------------------------- families

L = C.layers


@fixture
def fx_convnet():
    """The foundation acceptance case: a small LeNet-like CNN with BN and dropout."""
    x = C.input_variable((3, 32, 32), name="features")
    h = L.Convolution((3, 3), 8, pad=True, bias=True, name="conv1")(x)
    h = L.BatchNormalization(map_rank=1, name="bn1")(h)
    h = C.relu(h, name="relu1")
    h = L.MaxPooling((2, 2), strides=(2, 2), name="pool1")(h)
    h = L.Convolution((3, 3), 16, pad=True, bias=False, name="conv2")(h)
    h = L.BatchNormalization(map_rank=1, name="bn2")(h)
    h = C.relu(h, name="relu2")
    h = L.AveragePooling((2, 2), strides=(2, 2), name="pool2")(h)
    h = L.Dropout(0.5, name="drop")(h)
    h = L.Dense(10, name="fc")(h)
    z = C.softmax(h, name="prob")
    return Spec(z, ["conv", "batchnorm", "pool", "dense", "activation", "dropout"],
                ["Convolution", "BatchNormalization(spatial)", "ReLU", "MaxPooling",
                 "AveragePooling", "Dropout", "Dense(Times+Plus)", "Softmax"])


# ---------------------------------------------------------------- driver

def evaluate(model, inputs):
    feeds = dict(zip(model.arguments, inputs))
    outs = list(model.outputs)
    res = model.eval(feeds, outputs=outs)
    if not isinstance(res, dict):
        res = {outs[0]: res}
    return [np.asarray(res[o]) for o in outs]


def _max_diff(a_list, b_list):
    return max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
               if a.size else 0.0 for a, b in zip(a_list, b_list))


def build(name, func, out_dir):
    rng = np.random.RandomState(_seed(name))
    C.cntk_py.set_fixed_random_seed(_seed(name) % 100000)
    spec = func()
    model = spec.model
    randomize(model, rng)
    inputs = spec.inputs if spec.inputs is not None else default_inputs(model, rng)

    v2 = os.path.join(out_dir, name + ".v2.model")
    model.save(v2)
    reloaded = C.load_model(v2)
    outputs = evaluate(reloaded, inputs)
    direct = evaluate(model, inputs)
    if _max_diff(direct, outputs) > 0:
        raise RuntimeError(f"{name}: reloaded v2 model disagrees with the built one")
    for o in outputs:
        if not np.all(np.isfinite(o)):
            raise RuntimeError(f"{name}: non-finite reference output")

    formats = ["v2"]
    v1_error = None
    v1 = os.path.join(out_dir, name + ".v1.model")
    try:
        C.cntk_py.save_as_legacy_model(model, v1)
        legacy = C.load_model(v1)
        by_name = {a.name: a for a in legacy.arguments}
        names = [a.name for a in reloaded.arguments]
        if sorted(by_name) != sorted(names) or len(by_name) != len(names):
            raise RuntimeError(f"legacy model arguments {sorted(by_name)} differ from {names}")
        feeds = {by_name[n]: v for n, v in zip(names, inputs)}
        louts = list(legacy.outputs)
        res = legacy.eval(feeds, outputs=louts)
        if not isinstance(res, dict):
            res = {louts[0]: res}
        legacy_outputs = [np.asarray(res[o]) for o in louts]
        if len(legacy_outputs) != len(outputs):
            raise RuntimeError(f"legacy model has {len(legacy_outputs)} outputs, "
                               f"v2 has {len(outputs)}")
        diff = _max_diff(outputs, legacy_outputs)
        scale = max([1.0] + [float(np.max(np.abs(o))) for o in outputs if o.size])
        if diff > 1e-5 * scale:
            raise RuntimeError(f"legacy model outputs differ by {diff:g}")
        formats.append("v1")
    except Exception as exc:  # record it: the v1 reader simply has no file to test here
        v1_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if os.path.exists(v1):
            os.remove(v1)

    io_path = os.path.join(out_dir, name + ".io.npz")
    arrays = {}
    for i, a in enumerate(inputs):
        arrays[f"in_{i}"] = np.ascontiguousarray(a)
    for i, o in enumerate(outputs):
        arrays[f"out_{i}"] = np.ascontiguousarray(o)
    arrays["input_names"] = np.array([a.name for a in reloaded.arguments], dtype=np.str_)
    arrays["output_names"] = np.array([o.name or o.uid for o in reloaded.outputs],
                                      dtype=np.str_)
    np.savez(io_path, **arrays)

    files = [v2, io_path] + ([v1] if "v1" in formats else [])
    for f in files:
        size = os.path.getsize(f)
        if size > MAX_BYTES:
            raise RuntimeError(f"{f} is {size} bytes (limit {MAX_BYTES}): make the model smaller")

    entry = {
        "name": name,
        "families": spec.families,
        "ops": spec.ops,
        "formats": formats,
        "files": sorted(os.path.basename(f) for f in files),
        "inputs": [{"name": a.name, "shape": list(a.shape), "dtype": np.dtype(a.dtype).name,
                    "dynamic_axes": [ax.name for ax in a.dynamic_axes]}
                   for a in reloaded.arguments],
        "outputs": [{"name": o.name or o.uid, "shape": list(o.shape),
                     "dtype": np.dtype(o.dtype).name} for o in reloaded.outputs],
        "batch": BATCH,
    }
    if v1_error:
        entry["v1_error"] = v1_error
    if spec.notes:
        entry["notes"] = spec.notes
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/cntk", help="output folder")
    parser.add_argument("--only", nargs="*", help="build only these fixtures")
    parser.add_argument("--list", action="store_true", help="list fixture names and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, _ in FIXTURES:
            print(name)
        return 0
    with contextlib.suppress(Exception):  # already CPU-only
        C.device.try_set_default_device(C.device.cpu())
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "MANIFEST.json")
    entries = {}
    if args.only and os.path.exists(manifest_path):  # keep the others' entries
        with open(manifest_path) as fh:
            entries = {e["name"]: e for e in json.load(fh)["fixtures"]}
    failed = []
    for name, func in FIXTURES:
        if args.only and name not in args.only:
            continue
        try:
            entry = build(name, func, args.out)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        entries[name] = entry
        note = "  (v1: {})".format(entry["v1_error"]) if "v1_error" in entry else ""
        sys.stderr.write("{:<24} {}{}\n".format(name, "+".join(entry["formats"]), note))
    order = [n for n, _ in FIXTURES]
    manifest = {
        "generator": "scripts/make_cntk_fixtures.py",
        "cntk_version": C.__version__,
        "batch": BATCH,
        "fixtures": sorted(entries.values(),
                           key=lambda e: order.index(e["name"]) if e["name"] in order else 1e9),
    }
    with open(manifest_path, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")
    if failed:
        sys.stderr.write("FAILED: {}\n".format(", ".join(failed)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
