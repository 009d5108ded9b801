"""Build the benchmark models (ResNet-152 and ResNet-50 topology, random weights) with CNTK 2.7.

Why: the performance targets in DESIGN.md are stated for a 240 MB ResNet-152,
which is far too big to check in; ``scripts/bench.py`` needs real files written
by real CNTK, in both formats, so this script makes them at run time into a
cache folder.  The topology is the real one (bottleneck blocks [3, 8, 36, 3]
for ResNet-152, [3, 4, 6, 3] for ResNet-50, 224x224x3 input, 1000 classes);
weights are seeded random values, so only sizes and timings are meaningful.

Run it in the CNTK env (Python 3.6; no mmconv imports)::

    ~/.cache/mmconv/cntk-env/python scripts/make_bench_models.py [--out DIR] [--only NAME]

For every model ``NAME`` it writes ``NAME.v2.model`` (``Function.save``) and
``NAME.v1.model`` (``cntk.cntk_py.save_as_legacy_model``), each through a
temporary name renamed when complete, and prints one JSON line per file.
"""

import argparse
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=UserWarning)

import cntk as C  # noqa: E402
import numpy as np  # noqa: E402

L = C.layers

#: ResNet name -> bottleneck blocks per stage.
RESNETS = {
    "resnet152": (3, 8, 36, 3),
    "resnet50": (3, 4, 6, 3),
    "resnet26": (2, 2, 2, 2),  # --quick: same structure, ~15 M params
}


def _conv_bn(h, k, n, name, strides=1, relu=True):
    h = L.Convolution((k, k), n, pad=True, strides=strides, bias=False, name=name)(h)
    h = L.BatchNormalization(map_rank=1, name=name + "_bn")(h)
    return C.relu(h, name=name + "_relu") if relu else h


def resnet(blocks):
    """ResNet v1 with bottleneck blocks (He et al. 2015; stride on the 3x3 conv, as in
    the CNTK ImageNet examples), 224x224 RGB input, 1000 classes."""
    x = C.input_variable((3, 224, 224), name="features")
    h = _conv_bn(x, 7, 64, "conv1", strides=2)
    h = L.MaxPooling((3, 3), strides=(2, 2), pad=True, name="pool1")(h)
    width = 64
    for stage, count in enumerate(blocks):
        out = width * 4
        for i in range(count):
            name = f"res{stage + 2}_{i}"
            stride = 2 if (i == 0 and stage > 0) else 1
            a = _conv_bn(h, 1, width, name + "_a")
            a = _conv_bn(a, 3, width, name + "_b", strides=stride)
            a = _conv_bn(a, 1, out, name + "_c", relu=False)
            short = h if i > 0 else _conv_bn(h, 1, out, name + "_proj", strides=stride,
                                             relu=False)
            h = C.relu(C.plus(a, short, name=name + "_add"), name=name + "_relu")
        width *= 2
    h = L.GlobalAveragePooling(name="pool5")(h)
    h = L.Dense(1000, name="fc")(h)
    return C.softmax(h, name="prob")


def bilstm2():
    """Two stacked bidirectional LSTM(64) layers over a sequence of 32-vectors (each a
    splice of a forward and a go_backwards Recurrence, as CNTK's examples build them),
    then a Dense(10) per step: the recurrent benchmark's CNTK-made source."""
    x = C.sequence.input_variable(32, name="x")
    h = x
    for layer in (1, 2):
        f = L.Recurrence(L.LSTM(64), name=f"l{layer}_fwd")(h)
        b = L.Recurrence(L.LSTM(64), go_backwards=True, name=f"l{layer}_bwd")(h)
        h = C.splice(f, b, name=f"l{layer}")
    return L.Dense(10, name="fc")(h)


#: model name -> builder.
MODELS = {name: (lambda blocks=blocks: resnet(blocks)) for name, blocks in RESNETS.items()}
MODELS["bilstm2"] = bilstm2


def randomize(model, rng):
    """Seeded random parameters and BN statistics (CNTK's defaults leave mean 0, var 1)."""
    for p in model.parameters:
        shape = tuple(p.shape)
        if len(shape) == 2 and p.name in ("W", "H", "H1"):  # recurrent weights: keep
            v = rng.uniform(-0.2, 0.2, shape)                 # the states off saturation
        elif p.name == "scale":
            v = rng.uniform(0.5, 1.5, shape)
        elif p.name in ("bias", "b"):
            v = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) >= 3 else int(shape[0])
            v = rng.normal(0.0, np.sqrt(2.0 / max(1, fan_in)), shape)
        p.value = np.asarray(v, dtype=np.float32)
    for c in model.constants:
        shape = tuple(c.shape)
        if c.name == "aggregate_mean":
            c.value = np.asarray(rng.normal(0.0, 0.2, shape), dtype=np.float32)
        elif c.name == "aggregate_variance":
            c.value = np.asarray(rng.uniform(0.5, 1.5, shape), dtype=np.float32)


def _save(path, write):
    tmp = path + ".part"
    write(tmp)
    os.replace(tmp, path)


def build(name, out_dir):
    t0 = time.time()
    model = MODELS[name]()
    randomize(model, np.random.RandomState(152))
    n_params = int(sum(np.prod(p.shape) for p in model.parameters))
    paths = {
        "v2": os.path.join(out_dir, name + ".v2.model"),
        "v1": os.path.join(out_dir, name + ".v1.model"),
    }
    _save(paths["v2"], model.save)
    _save(paths["v1"], lambda p: C.cntk_py.save_as_legacy_model(model, p))
    for fmt, path in sorted(paths.items()):
        print(json.dumps({"model": name, "format": fmt, "path": path,
                          "bytes": os.path.getsize(path), "params": n_params,
                          "build_s": round(time.time() - t0, 1)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.expanduser("~/.cache/mmconv/bench"))
    parser.add_argument("--only", action="append", choices=sorted(MODELS),
                        help="build only this model (repeatable; default: all)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.only or sorted(MODELS):
        build(name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
