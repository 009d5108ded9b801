"""The console scripts with an ONNX source, as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.frontends.onnx import torch_nets

ROOT = Path(__file__).resolve().parents[3]


def run(script: str, *args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "mmconv", script, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, example = torch_nets.build("convnet")
    folder = tmp_path_factory.mktemp("cli")
    return torch_nets.export(model, example, folder / "convnet.onnx", dynamo=False, opset=13)


@pytest.mark.parametrize("target", ["onnx", "pytorch", "keras",
                                    pytest.param("cntk", marks=pytest.mark.cntk)])
def test_mmconvert_verify(target: str, source: Path, tmp_path: Path,
                          request: pytest.FixtureRequest) -> None:
    if target == "cntk":
        request.getfixturevalue("cntk_python")
    suffix = {"pytorch": "pt", "cntk": "model"}.get(target, target)  # -om suffixes are checked
    out = tmp_path / f"model.{suffix}"
    proc = run("mmconvert", "-sf", "onnx", "-iw", source, "-df", target, "-om", out, "--verify")
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    verdicts = [ln for ln in proc.stdout.splitlines() if ln.startswith("verify ")]
    assert verdicts and all(": ok " in ln for ln in verdicts), proc.stdout


def test_mmtoir(source: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "ir"
    proc = run("mmtoir", "-f", "onnx", "-n", source, "-d", prefix)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(Path(f"{prefix}.json").read_text())
    assert doc["inputs"][0]["shape"]["dims"][0] == "-1"  # the batch stays dynamic
    assert json.loads(doc["metadata"]["source_inputs"]) == ["input"]
    names = {n["name"] for n in doc["nodes"]}
    assert {"features_0_conv", "fc_gemm"} <= names, names
    assert Path(f"{prefix}.npy").is_file() and Path(f"{prefix}.pb").is_file()


def test_missing_file_and_bad_file(tmp_path: Path) -> None:
    proc = run("mmtoir", "-f", "onnx", "-n", tmp_path / "nope.onnx", "-d", tmp_path / "ir")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    proc = run("mmconvert", "-sf", "onnx", "-iw", bad, "-df", "pytorch", "-om",
               tmp_path / "m.pt")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "bad.onnx" in lines[0], proc.stderr
    assert not (tmp_path / "m.pt").exists()
