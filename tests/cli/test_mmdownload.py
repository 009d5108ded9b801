"""``mmdownload`` as people run it: in-process ``main()`` and the real entry through ``subprocess``.

The acceptance scenario: with ``MMCONV_MIRROR`` pointing at a local server
holding CNTK models under the catalog's file names, listing works, a download
is byte-identical, a transfer cut halfway is recovered (by the same command
or a rerun), and a file that is not a model is rejected with no file left and
no traceback.  The server is a real HTTP server on 127.0.0.1 (stdlib), the
payloads are real CNTK models from tests/fixtures/cntk.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from mmconv.cli.mmdownload import main

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
CNTK_DIR = TESTS / "fixtures" / "cntk"
HTML = b"<!DOCTYPE html><html><body>Please log in</body></html>"


def _load_server_module():
    """tests/download/httpserver.py, loaded by path (tests/cli is not a package)."""
    spec = importlib.util.spec_from_file_location("_mmdownload_httpserver",
                                                  TESTS / "download" / "httpserver.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


httpserver = _load_server_module()


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                "all_proxy", "MMCONV_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("MMCONV_DOWNLOAD_BACKOFF", "0.01")
    monkeypatch.setenv("MMCONV_DOWNLOAD_TIMEOUT", "2")


@pytest.fixture
def server() -> Iterator:
    with httpserver.FileServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def resnet18_bytes() -> bytes:
    """A real CNTK (v1, like the BrainScript-trained originals) model standing in for ResNet18."""
    return (CNTK_DIR / "convnet.v1.model").read_bytes()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m mmconv.cli.mmdownload ARGS`` with a bounded run time."""
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                           os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "mmconv.cli.mmdownload", *args],
                          capture_output=True, text=True, env=full_env, timeout=60, check=False)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line]


# -- in-process -----------------------------------------------------------------------------


def test_list_shows_names_and_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-f", "cntk"]) == 0
    out = capsys.readouterr().out
    for name in ("resnet18", "resnet50", "resnet101", "resnet152", "alexnet", "inception_v3",
                 "Fast-RCNN_grocery100", "Fast-RCNN_Pascal"):
        assert f"  {name} " in out
    assert "ResNet50_ImageNet_CNTK.model" in out
    assert main(["-f", "onnx"]) == 0
    assert "102.4 MB" in capsys.readouterr().out


def test_framework_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-f", "tf"]) == 0
    assert "Keras / TensorFlow models" in capsys.readouterr().out
    assert main(["--framework", "torch"]) == 0
    assert "resnet18-5c106cde.pth" in capsys.readouterr().out


def test_unknown_names_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-f", "cntk", "-n", "resnet34"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "known: alexnet" in err
    assert main(["-f", "caffe2"]) == 2
    assert "unknown framework" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["-n", "resnet50"])  # -f is required, as in MMdnn
    assert info.value.code == 2


def test_url_downloads_any_file_checked_by_format(server, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "y")]
    model = helper.make_model(helper.make_graph([node], "g", [vi[0]], [vi[1]]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data = model.SerializeToString()
    url = server.add("tiny.onnx", data)
    assert main(["-f", "onnx", "--url", url, "-o", str(tmp_path)]) == 0
    assert (tmp_path / "tiny.onnx").read_bytes() == data
    assert str(tmp_path / "tiny.onnx") in capsys.readouterr().out

    bad = server.add("page.onnx", HTML)
    assert main(["-f", "onnx", "--url", bad, "-p", str(tmp_path)]) == 1
    assert "page.onnx is not an ONNX model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


def test_url_with_name_keeps_the_catalog_file_name(server, tmp_path: Path,
                                                   resnet18_bytes: bytes) -> None:
    url = server.add("somewhere/else.bin", resnet18_bytes)
    assert main(["-f", "cntk", "-n", "ResNet18", "--url", url, "-o", str(tmp_path)]) == 0
    assert (tmp_path / "ResNet18_ImageNet_CNTK.model").read_bytes() == resnet18_bytes


# -- the console entry, as in the acceptance scenario ----------------------------------------


def test_acceptance_through_subprocess(server, tmp_path: Path, resnet18_bytes: bytes) -> None:
    env = {"MMCONV_MIRROR": server.url}
    listing = cli("-f", "cntk", env=env)
    assert listing.returncode == 0, listing.stderr
    for name in ("resnet18", "resnet50", "resnet152", "alexnet", "inception_v3",
                 "Fast-RCNN_Pascal"):
        assert name in listing.stdout

    # plain download: byte-identical, the path printed, nothing else left
    server.add("ResNet18_ImageNet_CNTK.model", resnet18_bytes)
    out_dir = tmp_path / "plain"
    done = cli("-f", "cntk", "-n", "resnet18", "-o", str(out_dir), env=env)
    assert done.returncode == 0, done.stderr
    saved = out_dir / "ResNet18_ImageNet_CNTK.model"
    assert saved.read_bytes() == resnet18_bytes
    assert str(saved) in done.stdout
    assert hashlib.sha256(resnet18_bytes).hexdigest() in done.stdout
    assert sorted(p.name for p in out_dir.iterdir()) == [saved.name]

    # running it again finds the verified file and does not download it
    before = len(server.requests)
    again = cli("-f", "cntk", "-n", "resnet18", "-o", str(out_dir), env=env)
    assert again.returncode == 0 and "already present" in again.stdout
    assert len(server.requests) == before


def test_cut_halfway_is_recovered_by_the_same_command(server, tmp_path: Path,
                                                      resnet18_bytes: bytes) -> None:
    server.add("ResNet50_ImageNet_CNTK.model", resnet18_bytes, cut_at=len(resnet18_bytes) // 2)
    done = cli("-f", "cntk", "-n", "resnet50", "-o", str(tmp_path),
               env={"MMCONV_MIRROR": server.url})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ResNet50_ImageNet_CNTK.model").read_bytes() == resnet18_bytes
    assert [r.status for r in server.requests] == [200, 206]
    assert "Traceback" not in done.stderr


def test_cut_halfway_is_recovered_by_a_rerun(server, tmp_path: Path,
                                             resnet18_bytes: bytes) -> None:
    server.add("ResNet152_ImageNet_CNTK.model", resnet18_bytes, cut_at=len(resnet18_bytes) // 2)
    env = {"MMCONV_MIRROR": server.url, "MMCONV_DOWNLOAD_RETRIES": "0"}
    first = cli("-f", "cntk", "-n", "resnet152", "-o", str(tmp_path), env=env)
    assert first.returncode == 1
    assert len(error_lines(first.stderr)) == 1 and "Traceback" not in first.stderr
    assert (tmp_path / "ResNet152_ImageNet_CNTK.model.part").is_file()
    assert not (tmp_path / "ResNet152_ImageNet_CNTK.model").exists()

    second = cli("-f", "cntk", "-n", "resnet152", "-o", str(tmp_path), env=env)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "ResNet152_ImageNet_CNTK.model").read_bytes() == resnet18_bytes
    assert server.requests[-1].status == 206
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ResNet152_ImageNet_CNTK.model"]


def test_non_model_is_rejected_with_nothing_left(server, tmp_path: Path) -> None:
    server.add("Fast-RCNN.model", HTML, content_type="text/html")
    done = cli("-f", "cntk", "-n", "fast-rcnn_pascal", "-o", str(tmp_path),
               env={"MMCONV_MIRROR": server.url})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1
    assert "Fast-RCNN.model" in lines[0] and "HTML page" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_404_is_one_line_and_exit_1(server, tmp_path: Path) -> None:
    done = cli("-f", "cntk", "-n", "alexnet", "-o", str(tmp_path),
               env={"MMCONV_MIRROR": server.url})
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_output_path_that_is_a_file_is_one_clear_error(server, tmp_path: Path,
                                                       resnet18_bytes: bytes,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    url = server.add("ResNet18_ImageNet_CNTK.model", resnet18_bytes)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    assert main(["-f", "cntk", "-n", "resnet18", "--url", url, "-o", str(blocker)]) == 1
    err = capsys.readouterr().err
    assert "cannot create output folder" in err and err.count("\n") == 1
    assert server.requests == []
