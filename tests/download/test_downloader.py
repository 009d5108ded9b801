"""The downloader against a real HTTP server on 127.0.0.1: resume, retries, timeouts, verification.

CNTK payloads are the real fixture models in tests/fixtures/cntk (made by real
CNTK), checked by this project's CNTK reader; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from mmconv.download import download
from mmconv.download.catalog import load_catalog
from mmconv.download.downloader import Downloader, Settings, Target, mirror_url
from mmconv.errors import DownloadError, UsageError

from .httpserver import FileServer

CNTK_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "cntk"
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>captive</body></html>"


@pytest.fixture(scope="module")
def v1_model() -> bytes:
    return (CNTK_DIR / "convnet.v1.model").read_bytes()


@pytest.fixture(scope="module")
def v2_model() -> bytes:
    return (CNTK_DIR / "convnet.v2.model").read_bytes()


def cntk_target(name: str, url: str) -> Target:
    """The catalog's CNTK entry ``name``, fetched from ``url`` (as MMCONV_MIRROR would)."""
    return Target.from_entry(load_catalog().find("cntk", name), url)


def make_downloader(settings: Settings, messages: list[str] | None = None) -> Downloader:
    log = messages.append if messages is not None else (lambda _m: None)
    return Downloader(settings, log=log)


def resume_offset(range_header: str | None) -> int:
    assert range_header is not None and range_header.startswith("bytes=")
    return int(range_header[len("bytes="):].rstrip("-"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def tiny_onnx() -> bytes:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# -- the plain path -------------------------------------------------------------------------


def test_plain_download_is_byte_identical(server: FileServer, fast: Settings, tmp_path: Path,
                                          v1_model: bytes) -> None:
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model)
    result = make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path == tmp_path / "ResNet18_ImageNet_CNTK.model"
    assert result.path.read_bytes() == v1_model
    assert result.downloaded and result.size == len(v1_model)
    assert result.sha256 == hashlib.sha256(v1_model).hexdigest()
    assert "CNTK v1 model" in result.verified
    assert leftovers(tmp_path) == ["ResNet18_ImageNet_CNTK.model"]
    assert [r.range for r in server.requests] == [None]


def test_v2_model_verifies_too(server: FileServer, fast: Settings, tmp_path: Path,
                               v2_model: bytes) -> None:
    url = server.add("Fast-RCNN.model", v2_model)
    result = make_downloader(fast).fetch(cntk_target("Fast-RCNN_Pascal", url), tmp_path)
    assert result.path.name == "Fast-RCNN.model"
    assert result.path.read_bytes() == v2_model
    assert "CNTK v2 model" in result.verified


def test_verified_file_already_present_is_not_downloaded_again(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    url = server.add("ResNet50_ImageNet_CNTK.model", v1_model)
    downloader = make_downloader(fast)
    downloader.fetch(cntk_target("resnet50", url), tmp_path)
    again = downloader.fetch(cntk_target("resnet50", url), tmp_path)
    assert not again.downloaded
    assert again.sha256 == hashlib.sha256(v1_model).hexdigest()
    assert len(server.requests) == 1


def test_present_file_failing_verification_is_replaced(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    url = server.add("ResNet50_ImageNet_CNTK.model", v1_model)
    (tmp_path / "ResNet50_ImageNet_CNTK.model").write_bytes(HTML)
    messages: list[str] = []
    result = make_downloader(fast, messages).fetch(cntk_target("resnet50", url), tmp_path)
    assert result.downloaded and result.path.read_bytes() == v1_model
    assert any("fails verification" in m for m in messages)


# -- interrupted transfers ------------------------------------------------------------------


def test_transfer_cut_halfway_is_resumed_with_a_range_request(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    half = len(v1_model) // 2
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, cut_at=half)
    messages: list[str] = []
    result = make_downloader(fast, messages).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert result.sha256 == hashlib.sha256(v1_model).hexdigest()
    first, second = server.requests
    assert (first.range, first.status, second.status) == (None, 200, 206)
    # the client resumes from what it had written: the cut point less what it had buffered
    assert 0 < resume_offset(second.range) <= half
    assert leftovers(tmp_path) == ["ResNet18_ImageNet_CNTK.model"]
    assert any("interrupted" in m for m in messages)


def test_interrupted_run_leaves_part_and_a_rerun_resumes(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    half = len(v1_model) // 2
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, cut_at=half)
    impatient = Settings(timeout=1.0, retries=0, backoff=0.01, chunk_size=4096)
    with pytest.raises(DownloadError, match="kept for resuming"):
        make_downloader(impatient).fetch(cntk_target("resnet18", url), tmp_path)
    part = tmp_path / "ResNet18_ImageNet_CNTK.model.part"
    assert leftovers(tmp_path) == [part.name]
    kept = part.read_bytes()
    assert 0 < len(kept) <= half and kept == v1_model[: len(kept)]

    # a new process: digests must be rebuilt from the .part, then the rest appended
    result = make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert result.sha256 == hashlib.sha256(v1_model).hexdigest()
    assert server.requests[-1].range == f"bytes={len(kept)}-"
    assert leftovers(tmp_path) == ["ResNet18_ImageNet_CNTK.model"]


def test_server_that_ignores_range_restarts_cleanly(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    half = len(v1_model) // 2
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, cut_at=half, ranges=False)
    result = make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert [r.status for r in server.requests] == [200, 200]


def test_wrong_content_range_is_not_appended(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    half = len(v1_model) // 2
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, cut_at=half, wrong_range=True)
    messages: list[str] = []
    result = make_downloader(fast, messages).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert any("range other than" in m for m in messages)
    assert server.requests[-1].range is None  # restarted from zero without Range


def test_complete_part_is_verified_without_downloading_again(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model)
    (tmp_path / "ResNet18_ImageNet_CNTK.model.part").write_bytes(v1_model)
    result = make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert [(r.range, r.status) for r in server.requests] == [(f"bytes={len(v1_model)}-", 416)]


def test_stall_mid_transfer_times_out_and_resumes(
        server: FileServer, tmp_path: Path, v1_model: bytes) -> None:
    settings = Settings(timeout=0.3, retries=2, backoff=0.01, chunk_size=4096)
    stall = len(v1_model) // 3
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, stall_at=stall, stall_for=2.0)
    result = make_downloader(settings).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert 0 < resume_offset(server.requests[-1].range) <= stall


# -- failures -------------------------------------------------------------------------------


def test_file_that_is_not_a_model_is_removed(server: FileServer, fast: Settings,
                                             tmp_path: Path) -> None:
    url = server.add("ResNet18_ImageNet_CNTK.model", HTML, content_type="text/html")
    with pytest.raises(DownloadError) as info:
        make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    message = str(info.value)
    assert "ResNet18_ImageNet_CNTK.model" in message and "HTML page" in message
    assert "\n" not in message
    assert leftovers(tmp_path) == []


def test_404_fails_at_once_and_leaves_nothing(server: FileServer, fast: Settings,
                                             tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        make_downloader(fast).fetch(cntk_target("resnet18", f"{server.url}/missing.model"),
                                    tmp_path)
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == []


def test_5xx_is_retried_with_backoff(server: FileServer, fast: Settings, tmp_path: Path,
                                     v1_model: bytes) -> None:
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, fail_first=2, fail_status=503)
    delays: list[float] = []
    downloader = Downloader(fast, log=lambda _m: None, sleep=delays.append)
    result = downloader.fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert [r.status for r in server.requests] == [503, 503, 200]
    assert delays == [fast.delay(1), fast.delay(2)] and delays[0] < delays[1]


def test_retries_are_bounded(server: FileServer, fast: Settings, tmp_path: Path,
                             v1_model: bytes) -> None:
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, fail_first=100)
    with pytest.raises(DownloadError, match=r"HTTP 500.*gave up after 4 attempts"):
        make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    assert len(server.requests) == fast.retries + 1
    assert leftovers(tmp_path) == []


def test_slow_server_hits_the_timeout(server: FileServer, tmp_path: Path,
                                      v1_model: bytes) -> None:
    settings = Settings(timeout=0.2, retries=1, backoff=0.01)
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, delay=3.0)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        make_downloader(settings).fetch(cntk_target("resnet18", url), tmp_path)
    assert time.monotonic() - started < 2.0
    assert len(server.requests) == 2
    assert leftovers(tmp_path) == []


def test_checksum_mismatch_is_rejected_and_removed(server: FileServer, fast: Settings,
                                                   tmp_path: Path) -> None:
    data = tiny_onnx()
    url = server.add("resnet18-v1-7.onnx", data)
    target = Target.from_entry(load_catalog().find("onnx", "resnet18"), url)
    # the catalog's size is the real 46.8 MB model's; this server announces another size
    with pytest.raises(DownloadError, match=r"serves .* bytes but the catalog says"):
        make_downloader(fast).fetch(target, tmp_path)
    assert leftovers(tmp_path) == []

    wrong = Target(url=url, file="resnet18-v1-7.onnx", format="onnx", label="onnx test",
                   sha256="0" * 64)
    with pytest.raises(DownloadError) as info:
        make_downloader(fast).fetch(wrong, tmp_path)
    assert "sha256 mismatch" in str(info.value)
    assert hashlib.sha256(data).hexdigest() in str(info.value)
    assert leftovers(tmp_path) == []


def test_matching_sha256_and_md5_verify(server: FileServer, fast: Settings,
                                        tmp_path: Path) -> None:
    data = tiny_onnx()
    url = server.add("m.onnx", data)
    by_sha = Target(url=url, file="m.onnx", format="onnx", label="t", size=len(data),
                    sha256=hashlib.sha256(data).hexdigest())
    assert "sha256 matches" in make_downloader(fast).fetch(by_sha, tmp_path / "a").verified
    by_md5 = Target(url=url, file="m.onnx", format="onnx", label="t",
                    md5=hashlib.md5(data).hexdigest())
    assert "md5 matches" in make_downloader(fast).fetch(by_md5, tmp_path / "b").verified


def test_sha256_prefix_plus_format_for_pytorch(server: FileServer, fast: Settings,
                                               tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:  # the layout torch.save writes
        zf.writestr("resnet18/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("resnet18/version", b"3\n")
    data = buffer.getvalue()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    url = server.add(f"resnet18-{prefix}.pth", data)
    good = Target(url=url, file=f"resnet18-{prefix}.pth", format="pytorch", label="t",
                  sha256_prefix=prefix)
    result = make_downloader(fast).fetch(good, tmp_path)
    assert "sha256 prefix matches" in result.verified and "zip" in result.verified
    bad = Target(url=url, file="other.pth", format="pytorch", label="t", sha256_prefix="deadbeef")
    with pytest.raises(DownloadError, match="sha256 prefix mismatch"):
        make_downloader(fast).fetch(bad, tmp_path)
    assert not (tmp_path / "other.pth").exists() and not (tmp_path / "other.pth.part").exists()


def test_url_target_needs_a_file_name() -> None:
    with pytest.raises(UsageError):
        Target.from_url("http://127.0.0.1:9/", "onnx")
    assert Target.from_url("http://h/x/model.onnx?sig=1", "onnx").file == "model.onnx"


# -- mirrors and settings -------------------------------------------------------------------


def test_mirror_url_replaces_the_host_and_path() -> None:
    env = {"MMCONV_MIRROR": "http://127.0.0.1:8000/models/"}
    assert mirror_url("https://www.cntk.ai/Models/FRCN_Pascal/Fast-RCNN.model",
                      "Fast-RCNN.model", env) == "http://127.0.0.1:8000/models/Fast-RCNN.model"
    assert mirror_url("https://a/b.model", "b.model", {}) == "https://a/b.model"


def test_download_api_uses_the_mirror(server: FileServer, tmp_path: Path,
                                      v1_model: bytes) -> None:
    server.add("InceptionV3_ImageNet_CNTK.model", v1_model)
    env = {"MMCONV_MIRROR": server.url, "MMCONV_DOWNLOAD_BACKOFF": "0.01"}
    result = download("CNTK", "Inception_V3", tmp_path, env=env)
    assert result.path.read_bytes() == v1_model
    assert server.requests[0].name == "InceptionV3_ImageNet_CNTK.model"


def test_settings_from_env() -> None:
    settings = Settings.from_env({"MMCONV_DOWNLOAD_TIMEOUT": "1.5", "MMCONV_DOWNLOAD_RETRIES": "2",
                                  "MMCONV_DOWNLOAD_BACKOFF": "0"})
    assert (settings.timeout, settings.retries, settings.backoff) == (1.5, 2, 0.0)
    assert Settings.from_env({}) == Settings()
    assert Settings().delay(10) == Settings().backoff_cap
    with pytest.raises(UsageError, match="MMCONV_DOWNLOAD_TIMEOUT"):
        Settings.from_env({"MMCONV_DOWNLOAD_TIMEOUT": "soon"})
    with pytest.raises(UsageError):
        Settings.from_env({"MMCONV_DOWNLOAD_TIMEOUT": "0"})


def test_truncated_model_without_content_length_is_caught_by_the_reader(
        server: FileServer, fast: Settings, tmp_path: Path, v1_model: bytes) -> None:
    # no Content-Length: the transport cannot tell the body was cut; the CNTK reader can
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, cut_at=len(v1_model) // 2,
                     cut_times=100, send_length=False)
    with pytest.raises(DownloadError) as info:
        make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    assert "ResNet18_ImageNet_CNTK.model is not a readable CNTK model" in str(info.value)
    assert leftovers(tmp_path) == []


def test_whole_model_without_content_length_is_fine(
        server: FileServer, fast: Settings, tmp_path: Path, v2_model: bytes) -> None:
    url = server.add("ResNet18_ImageNet_CNTK.model", v2_model, send_length=False)
    result = make_downloader(fast).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v2_model
    assert "parsed completely" in result.verified


def test_failures_after_progress_do_not_use_up_the_retries(
        server: FileServer, tmp_path: Path, v1_model: bytes) -> None:
    settings = Settings(timeout=1.0, retries=1, backoff=0.001, chunk_size=4096)
    step = len(v1_model) // 6 + 1
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, per_response=step)
    result = make_downloader(settings).fetch(cntk_target("resnet18", url), tmp_path)
    assert result.path.read_bytes() == v1_model
    assert len(server.requests) == 6 and all(r.status == 206 for r in server.requests[1:])


def test_attempts_are_capped_even_with_progress(
        server: FileServer, tmp_path: Path, v1_model: bytes) -> None:
    settings = Settings(timeout=1.0, retries=1, backoff=0.001, chunk_size=4096)
    url = server.add("ResNet18_ImageNet_CNTK.model", v1_model, per_response=100)
    with pytest.raises(DownloadError, match=r"gave up after 20 attempts.*kept for resuming"):
        make_downloader(settings).fetch(cntk_target("resnet18", url), tmp_path)
    assert len(server.requests) == 20
    assert (tmp_path / "ResNet18_ImageNet_CNTK.model.part").stat().st_size == 2000
