"""Caffe's file convention, shared by the Caffe emitter and the runner that checks it.

A Caffe model is two files of one name, as MMdnn wrote them: ``NAME.prototxt``
(the network, text) and ``NAME.caffemodel`` (the same network with its weights,
binary).  Users name the pair ``NAME``, ``NAME.prototxt`` or ``NAME.caffemodel``.
"""

from __future__ import annotations

import os
from pathlib import Path

from mmconv.errors import UsageError

SUFFIXES = (".prototxt", ".caffemodel")


def caffe_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``NAME.prototxt`` and ``NAME.caffemodel`` for ``NAME`` (with or without either
    suffix)."""
    path = Path(path)
    if path.suffix.lower() in SUFFIXES:
        path = path.with_suffix("")
    if not path.name or path.name in (".", ".."):
        raise UsageError(f"{path}: give the Caffe model a name, e.g. -om model")
    return path.with_name(path.name + ".prototxt"), path.with_name(path.name + ".caffemodel")
