"""atomic_path: whole files or none, with ordinary permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmconv.fsutil import atomic_path


def test_file_appears_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("fail midway")
    assert target.read_bytes() == b"data"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_permissions_follow_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "m.onnx") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "m.onnx").stat().st_mode & 0o777 == 0o644


def test_staging_moves_every_file_on_success_and_nothing_on_failure(tmp_path: Path) -> None:
    from mmconv.fsutil import staging

    target = tmp_path / "m.pt"
    with staging(target) as written:
        assert written.parent != tmp_path and written.name == "m.pt"
        written.write_bytes(b"model")
        written.with_suffix(".pth").write_bytes(b"weights")
        assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pth"]
    (tmp_path / "m.pt").unlink()
    (tmp_path / "m.pth").unlink()
    with pytest.raises(RuntimeError), staging(target) as written:
        written.write_bytes(b"model")
        raise RuntimeError("the check could not run")
    assert list(tmp_path.iterdir()) == []
    with staging(target, enabled=False) as written:
        assert written == target
