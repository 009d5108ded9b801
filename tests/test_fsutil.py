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
