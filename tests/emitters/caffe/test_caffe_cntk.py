"""Whole CNTK networks -> Caffe, run in OpenCV, against what real CNTK 2.7 computed.

Every fixture (``tests/fixtures/cntk/<name>.v2.model``, made by real CNTK,
with CNTK's outputs for a batch of 2 in ``<name>.io.npz``) is converted by the
CNTK frontend, written by ``emit_model`` as ``NAME.prototxt`` +
``NAME.caffemodel`` and run with OpenCV's ``readNetFromCaffe`` (the
``--verify`` runner).  The fixtures Caffe cannot express are pinned with the
reason; a few go through the console scripts, one through ``mmconvert
--verify`` running real CNTK.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.caffe import emit_model
from mmconv.errors import UnsupportedError
from mmconv.frontends.cntk import convert
from mmconv.verify.compare import assert_close

from .conftest import run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk"
NAMES = sorted(p.name[: -len(".v2.model")] for p in FIXTURES.glob("*.v2.model"))

#: Fixtures with an op Caffe cannot express, and the words of the error naming it.
REFUSED = {
    "act_hardmax": "'hardmax' (Hardmax)",
    "compare_select": "(Greater)",
    "fast_rcnn_mini": "(CumSum)",
    "layer_norm": "Eltwise needs equal shapes",
    "math_binary": "Eltwise needs equal shapes",
    "math_unary": "(Floor)",
    "reductions": "(ArgMax)",
    "roipooling": "(CumSum)",
    "shape_ops": "cuts contiguous pieces",
}


def _io(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    with np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False) as io:
        ins = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
        outs = {str(n): io[f"out_{i}"] for i, n in enumerate(io["output_names"])}
    return ins, outs


@pytest.mark.parametrize("name", NAMES)
def test_fixture_matches_cntk(name: str, tmp_path: Path) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    ins, refs = _io(name)
    path = tmp_path / name
    if name in REFUSED:
        with pytest.raises(UnsupportedError, match=REFUSED[name].replace("(", r"\(")
                           .replace(")", r"\)")):
            emit_model(graph, path)
        assert list(tmp_path.iterdir()) == []
        return
    emit_model(graph, path)
    got = run(path, {v.name: ins[v.name] for v in graph.inputs}, graph.outputs)
    # Training criteria are dropped by the frontend (criteria_only keeps only the network
    # output z, which CNTK's file did not expose): compare what both sides have.
    for out, value in zip(graph.outputs, got, strict=True):
        assert np.isfinite(value).all(), out
        if out not in refs:
            continue
        assert value.shape == refs[out].shape, out
        # Caffe computes in float32: a float64 model is held to float32's tolerance, a
        # float16 one to float16's (CNTK's reference is float16)
        rtol = 1e-4 if refs[out].dtype == np.float64 else None
        assert_close(refs[out], value.astype(refs[out].dtype), rtol=rtol, name=f"{name}:{out}")


def test_most_fixtures_convert() -> None:
    assert len(NAMES) - len(REFUSED) >= 40 and set(REFUSED) <= set(NAMES)


def _console(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmconv", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _check(path: Path, name: str) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    ins, refs = _io(name)
    got = run(path, {v.name: ins[v.name] for v in graph.inputs}, graph.outputs)
    for out, value in zip(graph.outputs, got, strict=True):
        assert_close(refs[out], value, name=f"{name}:{out}")


@pytest.mark.parametrize("om", ["resnet", "resnet.prototxt", "resnet.caffemodel"])
def test_console_mmconvert_names_the_pair(om: str, tmp_path: Path) -> None:
    proc = _console("mmconvert", "-sf", "cntk", "-iw", FIXTURES / "residual.v2.model",
                    "-df", "caffe", "-om", tmp_path / om)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet.caffemodel",
                                                          "resnet.prototxt"]
    assert "resnet.prototxt (" in proc.stdout and "resnet.caffemodel\n" in proc.stdout
    _check(tmp_path / "resnet", "residual")


def test_console_mmtoir_mmtocode_mmtomodel(tmp_path: Path) -> None:
    """mmtocode writes the prototxt (Caffe's readable network) and an npz of the blobs;
    mmtomodel turns them into the prototxt/caffemodel pair."""
    name = "inception_mini"
    steps = [
        ("mmtoir", "-f", "cntk", "-n", FIXTURES / f"{name}.v2.model", "-d", tmp_path / "ir"),
        ("mmtocode", "-f", "caffe", "-n", tmp_path / "ir.pb", "-w", tmp_path / "ir.npy",
         "-d", tmp_path / "net.prototxt"),
        ("mmtomodel", "-f", "caffe", "-in", tmp_path / "net.prototxt", "-iw",
         tmp_path / "net.npy", "-o", tmp_path / "out" / "incep"),
    ]
    for step in steps:
        proc = _console(*step)
        assert proc.returncode == 0, (step[0], proc.stderr)
    with np.load(tmp_path / "net.npy", allow_pickle=False) as weights:
        assert any(k.endswith("/0") for k in weights.files)
    assert (tmp_path / "net.prototxt").read_text() == \
        (tmp_path / "out" / "incep.prototxt").read_text()
    _check(tmp_path / "out" / "incep", name)


def test_console_unsupported_is_one_line(tmp_path: Path) -> None:
    proc = _console("mmconvert", "-sf", "cntk", "-iw", FIXTURES / "reductions.v2.model",
                    "-df", "caffe", "-om", tmp_path / "r")
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "ArgMax" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_console_cntk_lstm_is_refused_with_the_reason(tmp_path: Path) -> None:
    """A CNTK Recurrence(LSTM) (tests/fixtures/cntk_rnn) through mmconvert -df caffe: one
    line naming the LSTM node and why (no Caffe LSTM file reads the same in BVLC Caffe
    and OpenCV 4), nothing written."""
    model = FIXTURES.parent / "cntk_rnn" / "lstm_fwd.v2.model"
    proc = _console("mmconvert", "-sf", "cntk", "-iw", model, "-df", "caffe",
                    "-om", tmp_path / "lstm")
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "(LSTM: no Caffe LSTM layer reads the same in BVLC Caffe and OpenCV 4" in \
        proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cntk
def test_console_verify_with_real_cntk(cntk_python: str, tmp_path: Path) -> None:
    proc = _console("mmconvert", "-sf", "cntk", "-iw", FIXTURES / "alexnet_mini.v2.model",
                    "-df", "caffe", "-om", tmp_path / "alex", "--verify")
    assert proc.returncode == 0, proc.stderr
    assert "verify" in proc.stdout and "MISMATCH" not in proc.stdout, proc.stdout


@pytest.mark.cntk
def test_console_verify_float64_at_caffes_precision(cntk_python: str, tmp_path: Path) -> None:
    """Caffe computes in float32: --verify holds a float64 source to float32's tolerance
    (mmconv.verify.runners.TARGET_PRECISION) instead of failing every float64 model."""
    proc = _console("mmconvert", "-sf", "cntk", "-iw", FIXTURES / "float64.v2.model",
                    "-df", "caffe", "-om", tmp_path / "f64", "--verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify fc: ok" in proc.stdout, proc.stdout  # float64's own rtol is 1e-9
