"""Whole CNTK networks -> PyTorch, against what real CNTK 2.7 computed.

Every fixture (``tests/fixtures/cntk/<name>.v2.model``, made by real CNTK,
with CNTK's outputs for a batch of 2 in ``<name>.io.npz``) is converted by the
CNTK frontend, written as TorchScript by ``emit_model`` and run with
``torch.jit.load`` (the ``--verify`` runner); a few go through the console
scripts, and one through ``mmconvert --verify`` running real CNTK.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.pytorch import emit_model
from mmconv.frontends.cntk import convert
from mmconv.verify.compare import assert_close
from mmconv.verify.runners import run_torchscript

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk"
NAMES = sorted(p.name[: -len(".v2.model")] for p in FIXTURES.glob("*.v2.model"))


def _io(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    with np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False) as io:
        ins = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
        outs = {str(n): io[f"out_{i}"] for i, n in enumerate(io["output_names"])}
    return ins, outs


@pytest.mark.parametrize("name", NAMES)
def test_fixture_matches_cntk(name: str, tmp_path: Path) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    ins, refs = _io(name)
    path = tmp_path / f"{name}.pt"
    emit_model(graph, path)
    got = dict(zip(graph.outputs, run_torchscript(path, graph, ins), strict=True))
    # Training criteria are dropped by the frontend (criteria_only keeps only the network
    # output z, which CNTK's file did not expose): compare what both sides have.
    for out, value in got.items():
        if out not in refs:
            continue
        assert value.dtype == refs[out].dtype, out
        assert value.shape == refs[out].shape, out
        assert_close(refs[out], value, name=f"{name}:{out}")


def _console(script: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmconv", script, *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _check_pt(path: Path, name: str) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    ins, refs = _io(name)
    for out, value in zip(graph.outputs, run_torchscript(path, graph, ins), strict=True):
        assert_close(refs[out], value, name=f"{name}:{out}")


def test_console_mmconvert(tmp_path: Path) -> None:
    out = tmp_path / "convnet.pt"
    proc = _console("mmconvert", "-sf", "cntk", "-iw", FIXTURES / "convnet.v2.model",
                    "-df", "pytorch", "-om", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["convnet.pt", "convnet.pth"]
    _check_pt(out, "convnet")


def test_console_mmtocode_mmtomodel(tmp_path: Path) -> None:
    name = "inception_mini"
    steps = [
        ("mmtoir", "-f", "cntk", "-n", FIXTURES / f"{name}.v2.model", "-d", tmp_path / "ir"),
        ("mmtocode", "-f", "pytorch", "-n", tmp_path / "ir.pb", "-w", tmp_path / "ir.npy",
         "-d", tmp_path / "model.py", "-dw", tmp_path / "weights.pth"),
        ("mmtomodel", "-f", "pytorch", "-in", tmp_path / "model.py", "-iw",
         tmp_path / "weights.pth", "-o", tmp_path / "model.pt"),
    ]
    for script, *args in steps:
        proc = _console(script, *args)
        assert proc.returncode == 0, (script, proc.stderr)
    code = (tmp_path / "model.py").read_text()
    assert "nn.Conv2d(" in code and "torch.cat(" in code and "permute" not in code
    _check_pt(tmp_path / "model.pt", name)


@pytest.mark.cntk
def test_mmconvert_verify_against_real_cntk(cntk_python: str, tmp_path: Path) -> None:
    env = {**os.environ, "MMCONV_CNTK_PYTHON": cntk_python}
    proc = subprocess.run(
        [sys.executable, "-m", "mmconv", "mmconvert", "-sf", "cntk", "-iw",
         str(FIXTURES / "residual.v2.model"), "-df", "pytorch", "-om", str(tmp_path / "r.pt"),
         "--verify"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verify fc: ok" in proc.stdout
