"""Convert keras.applications architectures (random weights, random BatchNorm statistics)
with mmconvert -sf keras and compare each target's output with Keras' own.

Not a test (minutes per model); the results go to docs/keras-source.md.

    python scripts/keras_apps_check.py --targets onnx [--models ResNet50 MobileNetV2 ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

MODELS = ["ResNet50", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0",
          "EfficientNetV2B0", "DenseNet121", "Xception", "ConvNeXtTiny", "NASNetMobile",
          "InceptionV3", "InceptionResNetV2", "VGG16", "MobileNet", "ResNet50V2"]
EXT = {"onnx": ".onnx", "pytorch": ".pt", "keras": ".keras", "cntk": ".model"}


def build(name: str, seed: int = 0):
    import keras

    kwargs = {"weights": None, "classifier_activation": None, "input_shape": (224, 224, 3)}
    model = getattr(keras.applications, name)(**kwargs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            new = []
            for var, w in zip(layer.weights, layer.get_weights(), strict=True):
                tag = var.path.split("/")[-1]
                if tag == "moving_variance":
                    new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
                elif tag == "moving_mean":
                    new.append(rng.normal(0, 0.1, w.shape).astype(w.dtype))
                elif tag == "gamma":
                    new.append(rng.uniform(0.8, 1.2, w.shape).astype(w.dtype))
                else:
                    new.append(rng.normal(0, 0.1, w.shape).astype(w.dtype))
            layer.set_weights(new)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--targets", nargs="+", default=["onnx"])
    parser.add_argument("--keep", metavar="DIR", help="keep the files here")
    args = parser.parse_args()
    from mmconv.frontends import keras as frontend
    from mmconv.verify.compare import compare
    from mmconv.verify.runners import RUNNERS, TARGET_RUNNERS

    folder = Path(args.keep or tempfile.mkdtemp(prefix="keras-apps-"))
    folder.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name in args.models:
        model = build(name)
        path = folder / f"{name}.keras"
        model.save(str(path))
        x = np.random.default_rng(1).standard_normal((2, *model.inputs[0].shape[1:]))
        x = x.astype("float32")
        ref = np.asarray(model(x, training=False))
        graph = frontend.convert(None, str(path))
        transposes = sum(n.op == "Transpose" for n in graph.nodes)
        for target in args.targets:
            out = folder / f"{name}-{target}{EXT[target]}"
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "mmconv", "mmconvert", "-sf", "keras",
                                   "-iw", str(path), "-df", target, "-om", str(out)],
                                  capture_output=True, text=True)
            took = time.perf_counter() - start
            if proc.returncode != 0:
                failures += 1
                print(f"| {name} | {target} | FAILED: {proc.stderr.strip()[:300]} |", flush=True)
                continue
            runner = TARGET_RUNNERS.get(target) or RUNNERS.get(target)
            got = runner(out, graph, {graph.inputs[0].name: x})[0]
            result = compare(name, ref, np.asarray(got))
            failures += not result.passed
            print(f"| {name} | {target} | {'pass' if result.passed else 'FAIL'} | "
                  f"{result.max_abs:.2e} | {np.abs(ref).max():.3g} | {len(graph.nodes)} | "
                  f"{transposes} | {took:.1f} s |", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
