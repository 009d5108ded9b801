"""Format checks: real models pass, look-alikes fail with a message saying what they looked like."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from mmconv.download.formats import (
    HDF5_SIGNATURE,
    TORCH_LEGACY_SIGNATURE,
    check_format,
    describe_head,
)
from mmconv.errors import ModelFormatError

CNTK_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "cntk"
HTML = b"<!DOCTYPE html>\n<html><body>Not here</body></html>"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fixture", sorted(p.name for p in CNTK_DIR.glob("*.model")))
def test_real_cntk_models_pass_and_their_truncations_fail(fixture: str, tmp_path: Path) -> None:
    version = fixture.rsplit(".", 2)[-2]  # name.v1.model / name.v2.model
    assert check_format(CNTK_DIR / fixture, "cntk") == f"CNTK {version} model, parsed completely"
    data = (CNTK_DIR / fixture).read_bytes()
    cut = write(tmp_path, "ResNet50_ImageNet_CNTK.model", data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="is not a readable CNTK model"):
        check_format(cut, "cntk")


@pytest.mark.parametrize(("data", "looks"), [
    (HTML, "an HTML page"),
    (b"", "an empty file"),
    (b"\x1f\x8b\x08\x00rest", "a gzip archive"),
    (b"Access denied\n", "text starting 'Access denied'"),
])
def test_non_models_fail_cntk_check_saying_what_they_look_like(tmp_path: Path, data: bytes,
                                                              looks: str) -> None:
    path = write(tmp_path, "ResNet50_ImageNet_CNTK.model", data)
    with pytest.raises(ModelFormatError) as info:
        check_format(path, "cntk")
    message = str(info.value)
    assert message.startswith("ResNet50_ImageNet_CNTK.model is not a CNTK model")
    assert looks in message and "\n" not in message


def test_onnx(tmp_path: Path) -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "y")]
    model = helper.make_model(helper.make_graph([node], "g", [vi[0]], [vi[1]]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    good = write(tmp_path, "m.onnx", model.SerializeToString())
    assert check_format(good, "onnx").startswith("ONNX model (IR 8, opset ai.onnx 13)")
    for data in (HTML, b""):
        with pytest.raises(ModelFormatError, match="is not an ONNX model"):
            check_format(write(tmp_path, "bad.onnx", data), "onnx")
    # a real CNTK model is not an ONNX model either
    with pytest.raises(ModelFormatError):
        check_format(CNTK_DIR / "convnet.v2.model", "onnx")


def test_keras(tmp_path: Path) -> None:
    h5 = write(tmp_path, "w.h5", HDF5_SIGNATURE + bytes(2048))
    assert "HDF5" in check_format(h5, "keras")
    user_block = write(tmp_path, "ub.h5", bytes(512) + HDF5_SIGNATURE + bytes(100))
    assert "HDF5" in check_format(user_block, "keras")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", HDF5_SIGNATURE)
    assert ".keras" in check_format(write(tmp_path, "m.keras", archive.getvalue()), "keras")
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ModelFormatError, match=r"without config\.json"):
        check_format(write(tmp_path, "z.keras", other_zip.getvalue()), "keras")
    with pytest.raises(ModelFormatError, match="HTML page"):
        check_format(write(tmp_path, "x.h5", HTML), "keras")


def test_pytorch(tmp_path: Path) -> None:
    assert "legacy" in check_format(write(tmp_path, "a.pth", TORCH_LEGACY_SIGNATURE + b"}q."),
                                    "pytorch")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert "zip" in check_format(write(tmp_path, "b.pth", archive.getvalue()), "pytorch")
    legacy_tar = io.BytesIO()
    with tarfile.open(fileobj=legacy_tar, mode="w") as tf:
        for name in ("storages", "tensors", "pickle"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    assert "tar" in check_format(write(tmp_path, "c.pth", legacy_tar.getvalue()), "pytorch")
    with pytest.raises(ModelFormatError, match=r"is not a PyTorch file .*: it looks like an HTML"):
        check_format(write(tmp_path, "d.pth", HTML), "pytorch")


def test_describe_head() -> None:
    assert describe_head(b'{"error": "denied"}') == "JSON text"
    assert describe_head(b"PK\x03\x04....") == "a zip archive"
    assert describe_head(b"\x00\x01\x02\xff\xfe\xfd\xfc\xfb\xfa") == \
        "binary data starting 00 01 02 ff fe fd fc fb"
    assert describe_head((CNTK_DIR / "convnet.v1.model").read_bytes()[:64]) == \
        "a CNTK v1 model header"
