"""Files the Keras frontend must refuse with one clear line (exit 1, no output file):
fuzzed .keras zips, an .h5 whose weights lie about their shape, Lambda and custom layers."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.frontends.keras._common import keras, randomize

L = keras.layers


def _small(name: str = "small") -> keras.Model:
    inp = keras.Input((6, 6, 2), name="x")
    y = L.Conv2D(3, 3, name="conv")(inp)
    y = L.Dense(2, name="dense")(L.Flatten(name="flat")(y))
    return randomize(keras.Model(inp, y, name=name))


def _mmconvert(path: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmconv", "mmconvert", "-sf", "keras", "-iw",
                           str(path), "-df", "onnx", "-om", str(out)],
                          capture_output=True, text=True, timeout=300)


def _refused(result: subprocess.CompletedProcess, out: Path, *needles: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def test_fuzzed_keras_zip_is_one_line(tmp_path: Path) -> None:
    """Bytes flipped all over a .keras file (zip directory, JSON, HDF5 superblock and
    data): every variant converts or fails with one line, never a traceback or hang."""
    from mmconv.cli import mmconvert
    from mmconv.errors import MmconvError
    from mmconv.frontends import keras as frontend

    src = tmp_path / "small.keras"
    _small().save(str(src))
    data = bytearray(src.read_bytes())
    rng = random.Random(0)
    outcomes = {"ok": 0, "refused": 0}
    for i in range(16):
        bad = bytearray(data)
        if i % 4 == 0:
            bad = bad[: rng.randrange(len(bad))]  # truncated
        else:
            for _ in range(rng.randrange(1, 30)):
                bad[rng.randrange(len(bad))] = rng.randrange(256)
        path = tmp_path / f"fuzz{i}.keras"
        path.write_bytes(bytes(bad))
        try:
            frontend.convert(None, str(path))
            outcomes["ok"] += 1
        except MmconvError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0
    # and through the CLI: one line, exit 1, no output
    path = tmp_path / "fuzz_cli.keras"
    path.write_bytes(bytes(data[: len(data) // 2]))
    out = tmp_path / "fuzz.onnx"
    assert mmconvert.main(["-sf", "keras", "-iw", str(path), "-df", "onnx", "-om", str(out)]) == 1
    assert not out.exists()


def test_damaged_config_json(tmp_path: Path) -> None:
    src = tmp_path / "small.keras"
    _small().save(str(src))
    bad = tmp_path / "badjson.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename == "config.json":
                cfg = json.loads(body)
                cfg["config"]["layers"][1]["inbound_nodes"] = "nonsense"
                body = json.dumps(cfg).encode()
            zout.writestr(info, body)
    out = tmp_path / "o.onnx"
    _refused(_mmconvert(bad, out), out, "badjson.keras", "inbound_nodes")


def test_h5_with_a_lying_shape(tmp_path: Path) -> None:
    """The config says 3 filters; the file's kernel has 5: refused, naming layer and shapes."""
    src = tmp_path / "liar.h5"
    _small("liar").save(str(src))
    with h5py.File(src, "r+") as f:
        group = f["model_weights/conv/conv"]
        del group["kernel"]
        group.create_dataset("kernel", data=np.zeros((3, 3, 2, 5), np.float32))
    out = tmp_path / "o.onnx"
    _refused(_mmconvert(src, out), out, "liar.h5", "'conv'", "[3, 3, 2, 5]", "[3, 3, 2, 3]")


def test_h5_without_a_model_config(tmp_path: Path) -> None:
    src = tmp_path / "weights_only.weights.h5"
    _small().save_weights(str(src))
    out = tmp_path / "o.onnx"
    _refused(_mmconvert(src, out), out, "without a model config")


def test_lambda_and_custom_layers_all_named(tmp_path: Path) -> None:
    @keras.saving.register_keras_serializable(package="mytests")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inp = keras.Input((4,), name="x")
    a = L.Lambda(lambda t: t + 1, name="plus_one")(inp)
    b = Doubler(name="doubler")(a)
    c = L.Lambda(lambda t: t * 3, name="times_three")(b)
    model = keras.Model(inp, L.Dense(2, name="d")(c), name="customs")
    path = tmp_path / "customs.keras"
    model.save(str(path))
    out = tmp_path / "o.onnx"
    line = _refused(_mmconvert(path, out), out, "Lambda x2", "plus_one", "times_three",
                    "Doubler", "doubler")
    assert "stock layers" in line


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"PK\x03\x04garbage"])
def test_not_a_keras_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.keras"
    path.write_bytes(content)
    out = tmp_path / "o.onnx"
    _refused(_mmconvert(path, out), out, "junk.keras")
