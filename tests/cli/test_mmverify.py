"""mmverify and mmconvert --verify --layers end to end, against real CNTK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def run(script: str, *args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmconv", script, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def _first_diverging(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("first diverging layer:")]
    assert len(lines) == 1, stdout
    return lines[0]


def _corrupt_onnx_conv(src: Path, dst: Path, weight: str) -> None:
    """One convolution's kernel changed in the .onnx file (one tap, by a visible amount)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    (init,) = [i for i in model.graph.initializer if i.name == weight]
    kernel = numpy_helper.to_array(init).copy()
    kernel[0, 0, 0, 0] += 0.5
    init.CopyFrom(numpy_helper.from_array(kernel, weight))
    onnx.save(model, str(dst))


@pytest.mark.cntk
@pytest.mark.parametrize("fixture, weight, conv", [
    ("convnet.v2", "conv2/W", "first diverging layer: conv2 (op Conv)"),
    # the bias and ReLU of conv2 are inside the CNTK block: the block output is the first
    # value both sides show, and the line names the Conv node behind it
    ("alexnet_mini.v2", "conv2/W", "computed through conv2/Convolution (op Conv)"),
])
def test_acceptance_first_diverging_layer_is_the_changed_conv(
        cntk_python: str, cntk_fixtures_dir: Path, tmp_path: Path, fixture: str, weight: str,
        conv: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCONV_CNTK_PYTHON", cntk_python)
    src = cntk_fixtures_dir / f"{fixture}.model"
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    proc = run("mmconvert", "-sf", "cntk", "-iw", src, "-df", "onnx", "-om", good)
    assert proc.returncode == 0, proc.stderr
    _corrupt_onnx_conv(good, bad, weight)

    ok = run("mmverify", "-sf", "cntk", "-iw", src, "-df", "onnx", "-im", good, "--layers")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no diverging layer" in ok.stdout

    proc = run("mmverify", "-sf", "cntk", "-iw", src, "-df", "onnx", "-im", bad, "--layers")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = _first_diverging(proc.stdout)
    assert conv in line and "max|a-b|" in line and "> tol" in line
    # the layers before it agree: the conv's input is within tolerance
    assert "MISMATCH" in proc.stdout
    assert "mmverify: error:" in proc.stderr and "conv2" in proc.stderr
    # outputs only: the same exit code, no layer section
    plain = run("mmverify", "-sf", "cntk", "-iw", src, "-df", "onnx", "-im", bad)
    assert plain.returncode == 1
    assert "first diverging layer" not in plain.stdout
    assert "--layers finds the first diverging layer" in plain.stderr


@pytest.mark.cntk
@pytest.mark.parametrize("target, suffix", [("pytorch", ".pt"), ("keras", ".keras"),
                                            ("cntk", ".model")])
def test_mmconvert_verify_layers_every_target(cntk_python: str, cntk_fixtures_dir: Path,
                                              tmp_path: Path, target: str, suffix: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCONV_CNTK_PYTHON", cntk_python)
    src = cntk_fixtures_dir / "residual.v1.model"
    out = tmp_path / f"m{suffix}"
    proc = run("mmconvert", "-sf", "cntk", "-iw", src, "-df", target, "-om", out,
               "--verify", "--layers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no diverging layer" in proc.stdout
    compared = int(proc.stdout.split("layers: ", 1)[1].split()[0])
    assert compared >= 15, proc.stdout  # 22 IR nodes, nearly all exposed on both sides


@pytest.mark.cntk
def test_mmverify_pytorch_reads_the_pt_files_weights(cntk_python: str, cntk_fixtures_dir: Path,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed parameter inside the TorchScript file is found at its layer."""
    import torch

    monkeypatch.setenv("MMCONV_CNTK_PYTHON", cntk_python)
    src = cntk_fixtures_dir / "convnet.v2.model"
    out = tmp_path / "m.pt"
    assert run("mmconvert", "-sf", "cntk", "-iw", src, "-df", "pytorch", "-om", out
               ).returncode == 0
    scripted = torch.jit.load(str(out))
    with torch.no_grad():
        dict(scripted.named_parameters())["bn2.weight"].mul_(1.5)
    torch.jit.save(scripted, str(out))
    proc = run("mmverify", "-sf", "cntk", "-iw", src, "-df", "pytorch", "-im", out, "--layers")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "first diverging layer: bn2 (op BatchNormalization)" in _first_diverging(proc.stdout)


@pytest.mark.cntk
def test_mmverify_input_file_and_tolerances(cntk_python: str, cntk_fixtures_dir: Path,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCONV_CNTK_PYTHON", cntk_python)
    src = cntk_fixtures_dir / "convnet.v2.model"
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    assert run("mmconvert", "-sf", "cntk", "-iw", src, "-df", "onnx", "-om", good
               ).returncode == 0
    _corrupt_onnx_conv(good, bad, "conv2/W")
    inputs = tmp_path / "x.npz"
    np.savez(inputs, features=np.random.default_rng(5).standard_normal((3, 3, 32, 32))
             .astype(np.float32))
    proc = run("mmverify", "-sf", "cntk", "-iw", src, "-df", "onnx", "-im", bad,
               "--input", inputs)
    assert proc.returncode == 1
    # a tolerance loose enough passes the same pair
    loose = run("mmverify", "-sf", "cntk", "-iw", src, "-df", "onnx", "-im", bad,
                "--input", inputs, "--atol", "10")
    assert loose.returncode == 0, loose.stdout + loose.stderr
    assert "tolerance 10" in loose.stdout
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, features=np.zeros((2, 3, 8, 8), np.float32))
    proc = run("mmverify", "-sf", "cntk", "-iw", src, "-df", "onnx", "-im", good,
               "--input", wrong)
    assert proc.returncode == 2 and "takes [None, 3, 32, 32]" in proc.stderr


def test_mmverify_missing_converted_model(cntk_fixtures_dir: Path, tmp_path: Path) -> None:
    proc = run("mmverify", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", "onnx", "-im", tmp_path / "nope.onnx")
    assert proc.returncode == 2
    assert "nope.onnx: no such file" in proc.stderr


def test_mmconvert_layers_needs_verify(cntk_fixtures_dir: Path, tmp_path: Path) -> None:
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", "onnx", "-om", tmp_path / "m.onnx", "--layers")
    assert proc.returncode == 2 and "--layers set how --verify checks" in proc.stderr
    assert not (tmp_path / "m.onnx").exists()
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", "onnx", "-om", tmp_path / "m.onnx", "--rtol", "1e-3")
    assert proc.returncode == 2 and "--rtol set how" in proc.stderr
