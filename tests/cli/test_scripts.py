"""The console scripts end to end, as a user runs them (subprocesses, real files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmconv.verify.compare import assert_close
from mmconv.verify.onnx_runner import run_onnx

SCRIPTS = ["mmdownload", "mmtoir", "mmtocode", "mmtomodel", "mmconvert", "mmverify"]


def run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m mmconv SCRIPT ...`` (the same code as the console entry points)."""
    return subprocess.run([sys.executable, "-m", "mmconv", script, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    proc = run(script, "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"usage: {script}")


def test_console_entry_points_installed() -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="console_scripts")}
    assert set(SCRIPTS) <= names


def test_mmtoir_writes_three_files(cntk_fixtures_dir: Path, tmp_path: Path) -> None:
    model = cntk_fixtures_dir / "convnet.v2.model"
    proc = run("mmtoir", "-f", "cntk", "-n", model, "-d", tmp_path / "pre")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pre.json", "pre.npy", "pre.pb"]
    graph = json.loads((tmp_path / "pre.json").read_text())
    with np.load(tmp_path / "pre.npy", allow_pickle=False) as weights:
        names = set(weights.files)
        total = sum(weights[k].size for k in names)
    assert names == {w["name"] for w in graph["weights"]}
    assert total > 1000
    ops = {n["op"] for n in graph["nodes"]}
    assert {"Conv", "BatchNormalization", "MaxPool", "Dense"} <= ops


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_mmconvert_cntk_to_onnx_matches_cntk(cntk_fixtures_dir: Path, tmp_path: Path,
                                             fmt: str) -> None:
    model = cntk_fixtures_dir / f"convnet.{fmt}.model"
    out = tmp_path / "convnet.onnx"
    proc = run("mmconvert", "-sf", "cntk", "-iw", model, "-df", "onnx", "-om", out)
    assert proc.returncode == 0, proc.stderr
    ref = np.load(cntk_fixtures_dir / "convnet.io.npz", allow_pickle=False)
    (got,) = run_onnx(out, [ref["in_0"]])
    assert_close(ref["out_0"], got)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["convnet.onnx"]


@pytest.mark.cntk
def test_mmconvert_verify_runs_real_cntk(cntk_python: str, cntk_fixtures_dir: Path,
                                         tmp_path: Path) -> None:
    import os

    env = {**os.environ, "MMCONV_CNTK_PYTHON": cntk_python}
    out = tmp_path / "m.onnx"
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "residual.v2.model",
               "-df", "onnx", "-om", out, "--verify", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "verify " in proc.stdout and ": ok max|a-b|=" in proc.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert_one_line_error(run("mmtoir", "-f", "cntk"), 2, "--dstPath")
    assert_one_line_error(run("mmtoir", "-f", "caffe9", "-n", "x", "-d", tmp_path / "p"), 2,
                          "caffe9", "supported: cntk")
    assert_one_line_error(run("mmconvert", "-sf", "cntk", "-iw", tmp_path / "none.model",
                              "-df", "onnx", "-om", tmp_path / "o.onnx"), 2, "no such file")
    assert_one_line_error(run("mmtoir", "-f", "cntk", "-n", "m", "-d", "p",
                              "--inputShape", "3,x,4"), 2, "--inputShape")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_model_fails_cleanly_without_output(cntk_fixtures_dir: Path,
                                                    tmp_path: Path) -> None:
    data = (cntk_fixtures_dir / "convnet.v2.model").read_bytes()
    bad = tmp_path / "bad.model"
    bad.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    out.mkdir()
    proc = run("mmconvert", "-sf", "cntk", "-iw", bad, "-df", "onnx", "-om", out / "m.onnx")
    assert_one_line_error(proc, 1, "bad.model")
    proc = run("mmtoir", "-f", "cntk", "-n", bad, "-d", out / "pre")
    assert_one_line_error(proc, 1, "bad.model")
    assert list(out.iterdir()) == []


def test_not_a_model(tmp_path: Path) -> None:
    text = tmp_path / "notes.model"
    text.write_text("hello, I am not a network\n")
    proc = run("mmtoir", "-f", "cntk", "-n", text, "-d", tmp_path / "p")
    assert_one_line_error(proc, 1, "notes.model", "not a CNTK model")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    text = tmp_path / "x.model"
    text.write_text("nope")
    proc = run("mmtoir", "-f", "cntk", "-n", text, "-d", tmp_path / "p", "--debug")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr


def test_mmtocode_mmtomodel_onnx(cntk_fixtures_dir: Path, tmp_path: Path) -> None:
    """MMdnn's three-step flow to ONNX: IR -> code + weights -> model, matching CNTK."""
    proc = run("mmtoir", "-f", "cntk", "-n", cntk_fixtures_dir / "mlp.v2.model", "-d",
               tmp_path / "ir")
    assert proc.returncode == 0, proc.stderr
    proc = run("mmtocode", "-f", "onnx", "-n", tmp_path / "ir.pb", "-w", tmp_path / "ir.npy",
               "-d", tmp_path / "m.py", "-dw", tmp_path / "w.npy", "--opset", "9")
    assert proc.returncode == 0, proc.stderr
    assert "make_opsetid('', 9)" in (tmp_path / "m.py").read_text()
    proc = run("mmtomodel", "-f", "onnx", "-in", tmp_path / "m.py", "-iw", tmp_path / "w.npy",
               "-o", tmp_path / "m.onnx")
    assert proc.returncode == 0, proc.stderr
    ref = np.load(cntk_fixtures_dir / "mlp.io.npz", allow_pickle=False)
    (got,) = run_onnx(tmp_path / "m.onnx", [ref["in_0"]])
    assert_close(ref["out_0"], got)
    proc = run("mmtomodel", "-f", "onnx", "-in", tmp_path / "m.py", "-iw", tmp_path / "ir.pb",
               "-o", tmp_path / "bad.onnx")
    # weights that are not the ones mmtocode wrote for the code: exit 2 in every target
    assert_one_line_error(proc, 2, "m.py", "does not fit")
    assert not (tmp_path / "bad.onnx").exists()


def test_mmconvert_dst_node_name_and_input_shape(cntk_fixtures_dir: Path, tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "head_a.onnx"
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "combine_two.v2.model",
               "-df", "onnx", "-om", out, "--dstNodeName", "head_a")
    assert proc.returncode == 0, proc.stderr
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["head_a"]
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "convnet.v2.model",
               "-df", "onnx", "-om", tmp_path / "c.onnx", "--inputShape", "3,64,64")
    assert_one_line_error(proc, 2, "features")
    assert not (tmp_path / "c.onnx").exists()
