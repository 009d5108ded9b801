"""The console path: mmconvert -df keras|tensorflow (with --verify against real CNTK),
and mmtoir + mmtocode -f keras + mmtomodel -f tensorflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.cli import mmconvert, mmtocode, mmtoir, mmtomodel
from mmconv.ir import serde
from mmconv.verify.compare import assert_close
from mmconv.verify.runners import RUNNERS

pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "cntk"


@pytest.mark.cntk
def test_mmconvert_keras_verify_console(cntk_python: str, standalone_run: dict[str, Any]
                                        ) -> None:
    """``python -m mmconv mmconvert -df keras --verify`` vs real CNTK, run by the shared
    fresh interpreter of conftest.standalone_run (one TensorFlow import for both)."""
    console = [r for r in standalone_run["reports"] if "console_code" in r]
    assert console, standalone_run["stderr"]
    assert console[0]["console_code"] == 0, console[0]["stderr"]
    assert "verify prob: ok" in console[0]["stdout"]
    assert standalone_run["console_model"].is_file()


@pytest.mark.cntk
def test_mmconvert_tensorflow_nhwc_verify(tmp_path: Path, cntk_python: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pools"
    code = mmconvert.main(["-sf", "cntk", "-iw", str(FIXTURES / "pool_variants.v2.model"),
                           "-df", "tensorflow", "-om", str(out), "--channelsLastIO",
                           "--verify"])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert text.out.count(": ok") == 9
    assert (out / "saved_model.pb").is_file()


def test_mmtoir_mmtocode_mmtomodel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tmp_path / "ir"
    assert mmtoir.main(["-f", "cntk", "-w", str(FIXTURES / "residual.v2.model"),
                        "-d", str(prefix)]) == 0
    assert mmtocode.main(["-f", "keras", "-n", f"{prefix}.pb", "-w", f"{prefix}.npy",
                          "-d", str(tmp_path / "model.py"),
                          "-dw", str(tmp_path / "model.npz")]) == 0
    assert "def KitModel(weight_file):" in (tmp_path / "model.py").read_text()
    for target, name in (("tensorflow", "saved"), ("keras", "model.keras")):
        assert mmtomodel.main(["-f", target, "-in", str(tmp_path / "model.py"), "-iw",
                               str(tmp_path / "model.npz"), "-o", str(tmp_path / name)]) == 0
    capsys.readouterr()
    graph = serde.load(f"{prefix}.pb", f"{prefix}.npy")
    io = np.load(FIXTURES / "residual.io.npz")
    inputs = {"features": io["in_0"]}
    for target, name in (("tensorflow", "saved"), ("keras", "model.keras")):
        (got,) = RUNNERS.get(target)(tmp_path / name, graph, inputs)  # type: ignore[misc]
        assert_close(io["out_0"], got, name=target)
