"""mmverify --layers from ONNX (torch.onnx export) and Keras sources, end to end.

The source models are made at test time by the real frameworks; a converted
model with one convolution's kernel changed must be caught at that convolution.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.test_mmverify import _first_diverging, run

SEED = 7


def _compared(stdout: str) -> int:
    found = re.search(r"layers: (\d+) values compared", stdout)
    assert found, stdout
    return int(found.group(1))


def _corrupt_first_conv(src: Path, dst: Path) -> str:
    """The first Conv's kernel changed by a visible amount in ``dst``; returns the IR
    value (the Conv's output name) that must diverge first."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    (init,) = [i for i in model.graph.initializer if i.name == conv.input[1]]
    kernel = numpy_helper.to_array(init).copy()
    kernel[0, 0, 0, 0] += 0.5
    init.CopyFrom(numpy_helper.from_array(kernel, init.name))
    onnx.save(model, str(dst))
    return conv.output[0]


def _check(sf: str, src: Path, tmp_path: Path, *extra: str) -> None:
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    proc = run("mmconvert", "-sf", sf, "-iw", src, "-df", "onnx", "-om", good, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conv = _corrupt_first_conv(good, bad)

    ok = run("mmverify", "-sf", sf, "-iw", src, "-df", "onnx", "-im", good, "--layers", *extra)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no diverging layer" in ok.stdout
    # intermediate values were compared, not only the output
    assert _compared(ok.stdout) >= 4, ok.stdout

    proc = run("mmverify", "-sf", sf, "-iw", src, "-df", "onnx", "-im", bad, "--layers",
               *extra)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = _first_diverging(proc.stdout)
    assert f"first diverging layer: {conv} (op Conv)" in line, proc.stdout
    assert "> tol" in line


def test_onnx_source_from_torch_export(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    torch.manual_seed(SEED)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))
    net.train()
    with torch.no_grad():  # BatchNorm statistics calibrated on real activations
        for _ in range(5):
            net(torch.randn(16, 3, 16, 16) * 2 + 0.5)
    net.eval()
    src = tmp_path / "torchnet.onnx"
    torch.onnx.export(net, torch.randn(1, 3, 16, 16), str(src), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
                      opset_version=13, do_constant_folding=False, dynamo=False)
    _check("onnx", src, tmp_path)
    # the unchanged conversion to PyTorch agrees per layer too
    pt = tmp_path / "m.pt"
    proc = run("mmconvert", "-sf", "onnx", "-iw", src, "-df", "pytorch", "-om", pt)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok = run("mmverify", "-sf", "onnx", "-iw", src, "-df", "pytorch", "-im", pt, "--layers")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert _compared(ok.stdout) >= 4, ok.stdout


def test_keras_source(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("onnxruntime")
    keras.utils.set_random_seed(SEED)
    inp = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(4, name="dense")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(SEED)
    bn = model.get_layer("bn1")
    gamma = bn.get_weights()[0]
    bn.set_weights([gamma + rng.uniform(-0.3, 0.3, 6).astype("float32"),
                    rng.normal(0, 0.2, 6).astype("float32"),
                    rng.normal(0, 0.5, 6).astype("float32"),
                    rng.uniform(0.5, 2.0, 6).astype("float32")])
    src = tmp_path / "cnn.keras"
    model.save(str(src))
    _check("keras", src, tmp_path)


def test_tensorflow_source_says_outputs_only(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("tf2onnx")
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    saved = tmp_path / "saved"
    model.export(str(saved), verbose=False)
    out = tmp_path / "m.onnx"
    proc = run("mmconvert", "-sf", "tensorflow", "-iw", saved, "-df", "onnx", "-om", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok = run("mmverify", "-sf", "tensorflow", "-iw", saved, "-df", "onnx", "-im", out,
             "--layers")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    notes = [line for line in ok.stdout.splitlines() if line.startswith("layers:")]
    assert notes == ["layers: per-layer values are not available for TensorFlow sources (the "
                     "tf2onnx model they are read through is not kept); outputs only"], ok.stdout


def test_tf2onnx_source_layout_pass_values_are_not_false_divergences(tmp_path: Path) -> None:
    """A channels-last tf2onnx graph: the layout pass sinks the transpose before Flatten,
    so the IR's flatten has the source's shape but another element order; it must be left
    out, not reported as the first diverging layer."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("tf2onnx")
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.ReLU(), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    saved, src, out = tmp_path / "saved", tmp_path / "tf.onnx", tmp_path / "m.onnx"
    model.export(str(saved), verbose=False)
    proc = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved),
                           "--output", str(src), "--opset", "15"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    proc = run("mmconvert", "-sf", "onnx", "-iw", src, "-df", "onnx", "-om", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok = run("mmverify", "-sf", "onnx", "-iw", src, "-df", "onnx", "-im", out, "--layers")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no diverging layer" in ok.stdout
    assert _compared(ok.stdout) >= 2, ok.stdout
