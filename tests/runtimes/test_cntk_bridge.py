"""The real-CNTK bridge reproduces the fixtures' reference outputs and fails cleanly.

Every CNTK subprocess costs about a second, so all fixture evaluations share
one ``run_models`` call (module-scoped) and the error cases run one each.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from mmconv.errors import MmconvError, ModelFormatError, RuntimeUnavailableError
from mmconv.runtimes import cntk as bridge
from mmconv.verify.compare import assert_close

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cntk"
_MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())["fixtures"]
_BY_NAME = {e["name"]: e for e in _MANIFEST}
#: fixtures CNTK's CPU build can evaluate (conv_dilation cannot: GPU-only op)
NAMES = [e["name"] for e in _MANIFEST if e.get("cntk_cpu_eval", True)]
V1_NAMES = [n for n in NAMES if "v1" in _BY_NAME[n]["formats"]]


def _io(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _inputs(io: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [io[f"in_{i}"] for i in range(len(io["input_names"]))]


def _outputs(io: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [io[f"out_{i}"] for i in range(len(io["output_names"]))]


@pytest.fixture(scope="module")
def results(cntk_python: str) -> dict[tuple[str, str], list[np.ndarray]]:
    """All fixtures, v2 fed by position and v1 fed by name, in one CNTK process."""
    keys: list[tuple[str, str]] = []
    requests: list[bridge.RunRequest] = []
    for name in NAMES:
        io = _io(name)
        keys.append((name, "v2"))
        requests.append(bridge.RunRequest(FIXTURES / f"{name}.v2.model", _inputs(io)))
        if name in V1_NAMES:
            by_name = {str(n): a for n, a in zip(io["input_names"], _inputs(io), strict=True)}
            keys.append((name, "v1"))
            requests.append(bridge.RunRequest(FIXTURES / f"{name}.v1.model", by_name))
    io = _io("convnet")
    keys.append(("convnet", "intermediate"))
    requests.append(bridge.RunRequest(FIXTURES / "convnet.v2.model", _inputs(io),
                                      output_names=["relu1", "prob"]))
    outs = bridge.run_models(requests, python=cntk_python)
    return dict(zip(keys, outs, strict=True))


def _check(ref: list[np.ndarray], got: list[np.ndarray], same_shape: bool = True) -> None:
    assert len(got) == len(ref)
    for i, (r, g) in enumerate(zip(ref, got, strict=True)):
        if same_shape:
            assert g.shape == r.shape, f"output {i}: shape {g.shape} != {r.shape}"
        assert_close(r, g, name=f"output {i}")


def _v1_in_v2_order(name: str, got: list[np.ndarray]) -> list[np.ndarray]:
    """A legacy model's outputs come back in another order; MANIFEST.json maps them."""
    order = [o["index"] for o in _BY_NAME[name]["v1_outputs"]]
    assert sorted(order) == list(range(len(got)))
    out: list[np.ndarray] = [np.empty(0)] * len(got)
    for pos, idx in enumerate(order):
        out[idx] = got[pos]
    return out


@pytest.mark.cntk
@pytest.mark.parametrize("name", NAMES)
def test_v2_reproduces_reference(results, name: str) -> None:
    _check(_outputs(_io(name)), results[(name, "v2")])


@pytest.mark.cntk
@pytest.mark.parametrize("name", V1_NAMES)
def test_v1_by_name_agrees_with_v2(results, name: str) -> None:
    # legacy outputs may differ in shape only by unit axes (reductions keep (1, 1, 1))
    got = _v1_in_v2_order(name, results[(name, "v1")])
    _check(_outputs(_io(name)), got, same_shape=False)
    _check(results[(name, "v2")], got, same_shape=False)


@pytest.mark.cntk
def test_output_names_select_intermediate_nodes(results) -> None:
    relu1, prob = results[("convnet", "intermediate")]
    assert relu1.shape == (2, 8, 32, 32)
    assert relu1.min() >= 0.0 and relu1.max() > 0.0
    assert_close(_outputs(_io("convnet"))[0], prob)


@pytest.mark.cntk
def test_model_info(cntk_python: str) -> None:
    info = bridge.model_info(FIXTURES / "convnet.v1.model", python=cntk_python)
    (arg,) = info["arguments"]
    assert arg["name"] == "features"
    assert arg["shape"] == [3, 32, 32]
    assert arg["dtype"] == "float32"
    assert "defaultBatchAxis" in arg["dynamic_axes"]
    assert [o["shape"] for o in info["outputs"]] == [[10]]


def test_missing_model_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(MmconvError, match="does not exist"):
        bridge.run_model(tmp_path / "nope.model", [np.zeros((1, 3), np.float32)])


@pytest.mark.cntk
def test_non_model_file_is_a_clean_error(cntk_python: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"this is not a CNTK model\n" * 10)
    with pytest.raises(ModelFormatError) as info:
        bridge.run_model(junk, [np.zeros((1, 3), np.float32)], python=cntk_python)
    msg = str(info.value)
    assert "junk.model" in msg and "\n" not in msg
    assert "Traceback" not in msg and "GPU" not in msg


@pytest.mark.cntk
def test_unknown_input_name_is_a_clean_error(cntk_python: str) -> None:
    x = _inputs(_io("convnet"))[0]
    with pytest.raises(MmconvError, match=r"no argument named 'nope'.*features"):
        bridge.run_model(FIXTURES / "convnet.v2.model", {"nope": x}, python=cntk_python)


@pytest.mark.cntk
def test_cntk_native_error_is_one_line(cntk_python: str) -> None:
    """CNTK's CPU build has no dilated convolution: its C++ error arrives as one line."""
    x = np.zeros((2, 3, 16, 16), np.float32)
    with pytest.raises(MmconvError) as info:
        bridge.run_model(FIXTURES / "conv_dilation.v2.model", [x], python=cntk_python)
    msg = str(info.value)
    assert "Dilated convolution on CPU is not yet implemented" in msg
    assert "\n" not in msg and "CALL STACK" not in msg


@pytest.mark.cntk
def test_run_script_reports_last_stderr_line(cntk_python: str, tmp_path: Path) -> None:
    ok = tmp_path / "ok.py"
    ok.write_text("import sys, cntk\nprint('cntk', cntk.__version__, sys.argv[1])\n")
    assert bridge.run_script(ok, ["hi"], python=cntk_python).stdout.split() == ["cntk", "2.7",
                                                                              "hi"]
    bad = tmp_path / "bad.py"
    bad.write_text("import cntk\nraise ValueError('generated code broke')\n")
    with pytest.raises(MmconvError, match=r"bad\.py failed: ValueError: generated code broke$"):
        bridge.run_script(bad, python=cntk_python)
    native = tmp_path / "native.py"  # a CNTK C++ exception carries a [CALL STACK] tail
    native.write_text("import cntk as C\nC.reshape(C.input_variable(6), (4,))\n")
    with pytest.raises(MmconvError, match=r"native\.py failed: ValueError: Reshape: .*\.$"):
        bridge.run_script(native, python=cntk_python)
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(MmconvError, match="timed out"):
        bridge.run_script(slow, python=cntk_python, timeout=0.5)


def _fake_exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_cntk_python_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _fake_exe(tmp_path / "mypython")
    monkeypatch.setenv("MMCONV_CNTK_PYTHON", str(exe))
    assert bridge.find_cntk_python() == str(exe)

    monkeypatch.setenv("MMCONV_CNTK_PYTHON", str(tmp_path / "missing"))
    with pytest.raises(RuntimeUnavailableError, match=r"setup_cntk_env\.sh"):
        bridge.find_cntk_python()

    monkeypatch.delenv("MMCONV_CNTK_PYTHON")
    home = tmp_path / "env"
    home.mkdir()
    monkeypatch.setenv("MMCONV_CNTK_HOME", str(home))
    with pytest.raises(RuntimeUnavailableError, match="MMCONV_CNTK_PYTHON"):
        bridge.find_cntk_python()
    wrapper = _fake_exe(home / "python")
    assert bridge.find_cntk_python() == str(wrapper)
    assert os.path.isabs(bridge.find_cntk_python())
