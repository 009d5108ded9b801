"""What a new user trips over, tried again as they would (subprocesses, real files).

"Not installed" is simulated honestly: the child interpreter blocks the module
in ``sys.modules`` before mmconv starts, so every ``import torch`` in it fails
exactly as on a machine without torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_BLOCKED_RUN = (
    "import sys\n"
    "for m in sys.argv[1].split(','):\n"
    "    sys.modules[m] = None  # import m -> ImportError, as when it is not installed\n"
    "from mmconv.__main__ import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def run(script: str, *args: object, env: dict | None = None,
        blocked: str = "") -> subprocess.CompletedProcess:
    """``python -m mmconv SCRIPT ...``, optionally with modules made uninstallable."""
    if blocked:
        cmd = [sys.executable, "-c", _BLOCKED_RUN, blocked, script, *map(str, args)]
    else:
        cmd = [sys.executable, "-m", "mmconv", script, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("target, name, blocked, extra", [
    ("pytorch", "m.pt", "torch", "mmconv[torch]"),
    ("keras", "m.keras", "keras,tensorflow", "mmconv[tensorflow]"),
    ("tensorflow", "m_saved", "keras,tensorflow", "mmconv[tensorflow]"),
])
def test_missing_framework_names_the_extra(cntk_fixtures_dir: Path, tmp_path: Path,
                                           target: str, name: str, blocked: str,
                                           extra: str) -> None:
    out = tmp_path / name
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", target, "-om", out, blocked=blocked)
    assert proc.returncode == 1
    line = one_line(proc)
    assert "not installed" in line and extra in line
    assert list(tmp_path.iterdir()) == []


def test_missing_onnxruntime_for_verify_leaves_no_file(cntk_fixtures_dir: Path,
                                                       tmp_path: Path) -> None:
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", "onnx", "-om", tmp_path / "m.onnx", "--verify", blocked="onnxruntime")
    assert proc.returncode == 1
    assert "mmconv[onnxruntime]" in one_line(proc)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target, name", [("onnx", "m.onnx"), ("pytorch", "m.pt")])
def test_failed_verify_without_cntk_runtime_leaves_no_output(cntk_fixtures_dir: Path,
                                                              tmp_path: Path, target: str,
                                                              name: str) -> None:
    env = dict(os.environ, MMCONV_CNTK_PYTHON=str(tmp_path / "no-such-python"))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "convnet.v2.model",
               "-df", target, "-om", out_dir / name, "--verify", env=env)
    assert proc.returncode == 1
    assert "MMCONV_CNTK_PYTHON" in one_line(proc)
    assert list(out_dir.iterdir()) == []  # neither the model nor a .pth nor a staging dir


@pytest.fixture(scope="module")
def codes(cntk_fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mmtocode output of convnet and mlp for the four targets: ``{net}_{target}.py`` plus
    its weights, and the IR, in one folder."""
    folder = tmp_path_factory.mktemp("codes")
    for net in ("convnet", "mlp"):
        assert run("mmtoir", "-f", "cntk", "-n", cntk_fixtures_dir / f"{net}.v2.model",
                   "-d", folder / net).returncode == 0
        for target in ("onnx", "pytorch", "keras", "cntk"):
            proc = run("mmtocode", "-f", target, "-n", folder / f"{net}.pb",
                       "-d", folder / f"{net}_{target}.py")
            assert proc.returncode == 0, proc.stderr
    return folder


SUFFIX = {"onnx": ".onnx", "pytorch": ".pt", "keras": ".keras", "cntk": ".model",
          "tensorflow": ""}


def _weights(folder: Path, net: str, target: str) -> Path:
    return folder / f"{net}_{target}{'.pth' if target == 'pytorch' else '.npy'}"


@pytest.mark.parametrize("code, target", [("pytorch", "keras"), ("pytorch", "onnx"),
                                          ("keras", "pytorch"), ("cntk", "tensorflow"),
                                          ("onnx", "cntk")])
def test_code_of_another_framework_is_a_usage_error(codes: Path, tmp_path: Path, code: str,
                                                    target: str) -> None:
    proc = run("mmtomodel", "-f", target, "-in", codes / f"convnet_{code}.py",
               "-iw", _weights(codes, "convnet", code), "-o", tmp_path / f"m{SUFFIX[target]}")
    assert proc.returncode == 2
    assert f"is {code} code" in one_line(proc)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", ["onnx", "pytorch", "keras",
                                    pytest.param("cntk", marks=pytest.mark.cntk)])
def test_mismatched_code_and_weights_exit_2_in_every_target(codes: Path, tmp_path: Path,
                                                            target: str,
                                                            request: pytest.FixtureRequest
                                                            ) -> None:
    if target == "cntk":
        request.getfixturevalue("cntk_python")
    out = tmp_path / "out"
    out.mkdir()
    proc = run("mmtomodel", "-f", target, "-in", codes / f"convnet_{target}.py",
               "-iw", _weights(codes, "mlp", target), "-o", out / f"m{SUFFIX[target]}")
    assert proc.returncode == 2, proc.stderr
    assert "does not fit" in one_line(proc)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("target, suffix", [("onnx", ".onnx"), ("keras", ".keras"),
                                            ("pytorch", ".pt"),
                                            pytest.param("cntk", ".model",
                                                         marks=pytest.mark.cntk)])
def test_mmtomodel_leaves_no_pycache(codes: Path, tmp_path: Path, target: str, suffix: str,
                                     request: pytest.FixtureRequest) -> None:
    if target == "cntk":
        request.getfixturevalue("cntk_python")
    work = tmp_path / "work"
    work.mkdir()
    code = work / "model.py"
    code.write_bytes((codes / f"convnet_{target}.py").read_bytes())
    weights = work / _weights(codes, "convnet", target).name
    weights.write_bytes(_weights(codes, "convnet", target).read_bytes())
    proc = run("mmtomodel", "-f", target, "-in", code, "-iw", weights, "-o", work / f"m{suffix}")
    assert proc.returncode == 0, proc.stderr
    assert not (work / "__pycache__").exists()
    assert (work / f"m{suffix}").exists()


@pytest.mark.parametrize("target, name, says", [
    ("keras", "m.pt", ".pt is a pytorch model"),
    ("pytorch", "m.keras", ".keras is a keras model"),
    ("onnx", "m.bin", "named *.onnx"),
    ("tensorflow", "m.onnx", "is a folder"),
    ("cntk", "m.onnx", "named *.model or *.dnn"),
])
def test_output_name_of_another_format_is_a_usage_error(cntk_fixtures_dir: Path,
                                                        tmp_path: Path, target: str,
                                                        name: str, says: str) -> None:
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", target, "-om", tmp_path / name)
    assert proc.returncode == 2
    assert says in one_line(proc)
    assert list(tmp_path.iterdir()) == []


def test_mmtomodel_output_name_checked_too(codes: Path, tmp_path: Path) -> None:
    proc = run("mmtomodel", "-f", "keras", "-in", codes / "convnet_keras.py",
               "-iw", codes / "convnet_keras.npy", "-o", tmp_path / "m.pt")
    assert proc.returncode == 2 and ".pt is a pytorch model" in one_line(proc)
    assert list(tmp_path.iterdir()) == []


def test_mmtomodel_pytorch_names_both_files(codes: Path, tmp_path: Path) -> None:
    proc = run("mmtomodel", "-f", "pytorch", "-in", codes / "convnet_pytorch.py",
               "-iw", codes / "convnet_pytorch.pth", "-o", tmp_path / "m.pt")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"wrote {tmp_path / 'm.pt'}",
                                        f"wrote {tmp_path / 'm.pth'}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pth"]


def _cntk_format(path: Path) -> str:
    """v1 (legacy) files start with the UTF-16 marker "BCN"; v2 files are protobuf."""
    return "v1" if path.read_bytes()[:6] == "BCN".encode("utf-16-le") else "v2"


@pytest.mark.cntk
@pytest.mark.parametrize("name, flag, want", [("m.model", "v1", "v1"), ("m.dnn", "v2", "v2"),
                                              ("m.dnn", None, "v1"), ("m.model", None, "v2")])
def test_cntk_format_flag(cntk_python: str, cntk_fixtures_dir: Path, tmp_path: Path,
                          name: str, flag: str | None, want: str) -> None:
    env = dict(os.environ, MMCONV_CNTK_PYTHON=cntk_python)
    out = tmp_path / name
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", "cntk", "-om", out, *(["--cntkFormat", flag] if flag else []), env=env)
    assert proc.returncode == 0, proc.stderr
    assert _cntk_format(out) == want


def test_cntk_format_flag_is_for_the_cntk_target_only(cntk_fixtures_dir: Path,
                                                      tmp_path: Path) -> None:
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "mlp.v2.model",
               "-df", "onnx", "-om", tmp_path / "m.onnx", "--cntkFormat", "v1")
    assert proc.returncode == 2 and "--cntkFormat applies to the cntk target only" in one_line(
        proc)


def test_empty_model_file_says_it_is_empty(tmp_path: Path) -> None:
    empty = tmp_path / "m.model"
    empty.write_bytes(b"")
    for script, flags in (("mmtoir", ["-f", "cntk", "-n", empty, "-d", tmp_path / "ir"]),
                          ("mmconvert", ["-sf", "cntk", "-iw", empty, "-df", "onnx",
                                         "-om", tmp_path / "m.onnx"])):
        proc = run(script, *flags)
        assert proc.returncode == 1
        assert "is empty" in one_line(proc)
    assert [p.name for p in tmp_path.iterdir()] == ["m.model"]


_LONG_NAME_MODEL = """
import sys
import numpy as np
import cntk as C
x = C.input_variable(3, name="x")
w = C.parameter(init=np.arange(6, dtype=np.float32).reshape(3, 2), name="w" * 70000)
C.times(x, w, name="out").save(sys.argv[1])
"""


@pytest.mark.cntk
def test_a_64k_weight_name_is_refused_with_one_line(cntk_python: str, tmp_path: Path) -> None:
    """A CNTK file (made by real CNTK) whose parameter name is 70000 characters long."""
    from mmconv.runtimes.cntk import run_script

    maker = tmp_path / "make.py"
    maker.write_text(_LONG_NAME_MODEL)
    model = tmp_path / "long.model"
    run_script(maker, [str(model)], python=cntk_python)
    out = tmp_path / "out"
    out.mkdir()
    proc = run("mmconvert", "-sf", "cntk", "-iw", model, "-df", "onnx", "-om", out / "m.onnx")
    assert proc.returncode == 1
    line = one_line(proc)
    assert "70004 bytes long" in line or "bytes long" in line
    assert "at most 65531 bytes" in line and len(line) < 400
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("target, name", [("keras", "m.keras"), ("tensorflow", "m_saved")])
def test_no_tensorflow_banners(cntk_fixtures_dir: Path, tmp_path: Path, target: str,
                               name: str) -> None:
    """TensorFlow's absl/oneDNN/CPU-feature lines are silenced; a user's own setting wins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KERAS_"))}
    proc = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "convnet.v2.model",
               "-df", target, "-om", tmp_path / name, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    if target != "keras":
        return
    # the same conversion with TensorFlow's logging on does print them (the test can fail)
    noisy = run("mmconvert", "-sf", "cntk", "-iw", cntk_fixtures_dir / "convnet.v2.model",
                "-df", target, "-om", tmp_path / f"again_{name}",
                env=dict(env, TF_CPP_MIN_LOG_LEVEL="0"))
    assert noisy.returncode == 0
    assert "cpu_feature_guard" in noisy.stderr or "oneDNN" in noisy.stderr
