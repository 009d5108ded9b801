"""--channelsFirstIO with an ONNX source: a tf2onnx export of a channels-last Keras CNN
(NHWC input, one NHWC feature-map output) converted with NCHW inputs/outputs and no
boundary Transposes, checked against onnxruntime on the source file fed the same data
in NHWC, through the console script as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

pytest.importorskip("tf2onnx")

from mmconv.verify.compare import compare
from mmconv.verify.onnx_runner import run_onnx
from tests.frontends.onnx import keras_nets
from tests.frontends.onnx._common import model, save

ROOT = Path(__file__).resolve().parents[3]


def mmconvert(*args: object, script: str = "mmconvert") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "mmconv", script, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def _two_output_cnn():
    """Conv/BN/ReLU/depthwise/pool with the pooled NHWC feature map as an output too."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 12, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    fmap = layers.MaxPooling2D(2, name="fmap")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(fmap)
    model = keras.Model(inp, [fmap, layers.Dense(4, name="logits")(x)], name="two_out")
    keras_nets._calibrate_bn(model, (12, 12, 3), np.random.default_rng(1))
    return model


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cfio")
    return {
        "two_out": keras_nets.to_onnx(_two_output_cnn(), folder / "two_out.onnx"),
        "small_cnn": keras_nets.to_onnx(keras_nets.small_cnn(upsample=False),
                                        folder / "small_cnn.onnx"),
    }


def _run_target(target: str, path: Path, x: np.ndarray) -> list[np.ndarray]:
    if target == "onnx":
        return run_onnx(path.read_bytes(), {"image": x})
    import torch

    net = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        out = net(torch.from_numpy(x))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("net", ["two_out", "small_cnn"])
@pytest.mark.parametrize("target", ["onnx", "pytorch"])
def test_channels_first_io_from_tf2onnx(sources: dict[str, Path], tmp_path: Path,
                                        net: str, target: str) -> None:
    src = sources[net]
    out = tmp_path / ("model.onnx" if target == "onnx" else "model.pt")
    proc = mmconvert("-sf", "onnx", "-iw", src, "-df", target, "-om", out,
                     "--channelsFirstIO", "--verify")
    assert proc.returncode == 0, proc.stderr
    assert "kept in the source's layout" not in proc.stderr, proc.stderr
    x_nhwc = np.random.default_rng(5).standard_normal((2, *{"two_out": (12, 12, 3),
                                                           "small_cnn": (15, 15, 3)}[net]))
    x_nhwc = x_nhwc.astype(np.float32)
    ref = run_onnx(src.read_bytes(), {"image": x_nhwc})
    got = _run_target(target, out, np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
    assert len(got) == len(ref)
    for k, (r, g) in enumerate(zip(ref, got, strict=True)):
        want = r.transpose(0, 3, 1, 2) if r.ndim == 4 else r  # NHWC feature map -> NCHW
        result = compare(f"output {k}", want, g)
        assert result.passed, str(result)
    if target == "pytorch" and net == "two_out":  # mmverify, per layer too
        proc = mmconvert("-sf", "onnx", "-iw", src, "-df", target, "-om", out,
                         "--channelsFirstIO", "--layers", script="mmverify")
        assert proc.returncode == 0, proc.stderr
        assert "no diverging layer" in proc.stdout and "verify fmap: ok" in proc.stdout, \
            proc.stdout
    if target == "onnx":
        written = onnx.load(str(out))
        assert [n.op_type for n in written.graph.node].count("Transpose") == 0
        dims = [d.dim_value for d in written.graph.input[0].type.tensor_type.shape.dim]
        assert dims[1:] == [3, *x_nhwc.shape[1:3]]


def test_channels_first_io_warns_about_an_input_it_cannot_move(tmp_path: Path) -> None:
    """An NCHW model's input is read by a Conv directly: kept, with one warning naming it."""
    w = np.random.default_rng(2).standard_normal((4, 3, 3, 3)).astype(np.float32)
    src = save(model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                     [("x", ["N", 3, 8, 8])], ["y"], {"w": w}), tmp_path / "nchw.onnx")
    out = tmp_path / "out.onnx"
    proc = mmconvert("-sf", "onnx", "-iw", src, "-df", "onnx", "-om", out,
                     "--channelsFirstIO", "--verify")
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "--channelsFirstIO" in ln]
    assert len(warnings) == 1 and "'x'" in warnings[0], proc.stderr
    assert warnings[0].startswith("mmconvert: ")
    assert [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape
            .dim][1:] == [3, 8, 8]
