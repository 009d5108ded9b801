"""Whole CNTK networks -> MXNet checkpoints, run in mxnet 1.9.1, against real CNTK 2.7's outputs.

Every fixture (``tests/fixtures/cntk/<name>.v2.model``, made by real CNTK,
with CNTK's outputs for a batch of 2 in ``<name>.io.npz``) is converted by the
CNTK frontend, written by ``emit_model`` as ``NAME-symbol.json`` +
``NAME-0000.params`` (no MXNet involved) and run in the real mxnet 1.9.1 env
with ``load_checkpoint`` + ``Module`` (all fixtures in one mxnet process); a
few go through the console scripts, one through ``mmconvert --verify``
running real CNTK next to real MXNet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.emitters.mxnet import emit_model
from mmconv.frontends.cntk import convert
from mmconv.verify.compare import assert_close

from .conftest import run_all

pytestmark = pytest.mark.mxnet

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk"
NAMES = sorted(p.name[: -len(".v2.model")] for p in FIXTURES.glob("*.v2.model"))
#: Fixtures whose file exposes only training criteria, which the frontend drops: the
#: network output it converts has no CNTK reference (it must still run).
NO_REFERENCE = {"criteria_only"}


def _io(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    with np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False) as io:
        ins = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
        outs = {str(n): io[f"out_{i}"] for i, n in enumerate(io["output_names"])}
    return ins, outs


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, mxnet_python: str
            ) -> dict[str, tuple[list[str], list[np.ndarray]]]:
    """Every fixture converted and run in one mxnet process: name -> (outputs, arrays)."""
    tmp = tmp_path_factory.mktemp("mxnet_cntk")
    jobs: list[Any] = []
    for name in NAMES:
        graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
        ins, _ = _io(name)
        emit_model(graph, tmp / name)
        jobs.append((tmp / name, graph, {v.name: ins[v.name] for v in graph.inputs}))
    outs = run_all(jobs, mxnet_python)
    return {name: (list(job[1].outputs), got)
            for name, job, got in zip(NAMES, jobs, outs, strict=True)}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_matches_cntk(name: str, results: dict[str, Any]) -> None:
    _, refs = _io(name)
    outputs, got = results[name]
    compared = 0
    # Training criteria are dropped by the frontend (criteria_only keeps only the network
    # output z, which CNTK's file did not expose): compare what both sides have.
    for out, value in zip(outputs, got, strict=True):
        if out not in refs:
            continue
        assert value.dtype == refs[out].dtype, out
        assert value.shape == refs[out].shape, out
        assert_close(refs[out], value, name=f"{name}:{out}")
        compared += 1
    assert compared or name in NO_REFERENCE, f"{name}: no output of CNTK's file to compare"
    assert all(np.isfinite(v).all() for v in got), name


def test_every_fixture_converts() -> None:
    assert len(NAMES) >= 45


def _console(*args: object, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmconv", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def _check(prefix: Path, name: str, python: str) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    ins, refs = _io(name)
    (got,) = run_all([(prefix, graph, {v.name: ins[v.name] for v in graph.inputs})], python)
    for out, value in zip(graph.outputs, got, strict=True):
        assert_close(refs[out], value, name=f"{name}:{out}")


@pytest.mark.parametrize("om", ["resnet", "resnet-symbol.json", "resnet-0000.params"])
def test_console_mmconvert_names_the_pair(om: str, tmp_path: Path, mxnet_python: str) -> None:
    proc = _console("mmconvert", "-sf", "cntk", "-iw", FIXTURES / "residual.v2.model",
                    "-df", "mxnet", "-om", tmp_path / om)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet-0000.params",
                                                          "resnet-symbol.json"]
    assert "resnet-symbol.json + " in proc.stdout
    _check(tmp_path / "resnet", "residual", mxnet_python)


def test_console_mmtoir_mmtocode_mmtomodel(tmp_path: Path, mxnet_python: str) -> None:
    """mmtocode writes mx.sym code and the params file; mmtomodel runs the code in MXNet
    and saves the checkpoint."""
    name = "inception_mini"
    env = {**os.environ, "MMCONV_MXNET_PYTHON": mxnet_python}
    steps = [
        ("mmtoir", "-f", "cntk", "-n", FIXTURES / f"{name}.v2.model", "-d", tmp_path / "ir"),
        ("mmtocode", "-f", "mxnet", "-n", tmp_path / "ir.pb", "-w", tmp_path / "ir.npy",
         "-d", tmp_path / "incep.py"),
        ("mmtomodel", "-f", "mxnet", "-in", tmp_path / "incep.py", "-iw",
         tmp_path / "incep.params", "-o", tmp_path / "out" / "incep"),
    ]
    for step in steps:
        proc = _console(*step, env=env)
        assert proc.returncode == 0, (step[0], proc.stderr)
    code = (tmp_path / "incep.py").read_text()
    assert "mx.sym.Convolution(" in code and "mx.sym.Concat(" in code
    assert "transpose" not in code
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["incep-0000.params",
                                                                    "incep-symbol.json"]
    _check(tmp_path / "out" / "incep", name, mxnet_python)


@pytest.mark.cntk
def test_console_verify_with_real_cntk(cntk_python: str, mxnet_python: str,
                                       tmp_path: Path) -> None:
    env = {**os.environ, "MMCONV_CNTK_PYTHON": cntk_python, "MMCONV_MXNET_PYTHON": mxnet_python}
    proc = _console("mmconvert", "-sf", "cntk", "-iw", FIXTURES / "alexnet_mini.v2.model",
                    "-df", "mxnet", "-om", tmp_path / "alex", "--verify", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify" in proc.stdout and "MISMATCH" not in proc.stdout, proc.stdout
