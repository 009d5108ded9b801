"""The CNTK frontend: CNTK model files (v2 protobuf and legacy v1 binary) -> IR, without CNTK.

Entry points: :func:`probe` (which format a file is, by its content),
:func:`read_model` (file -> :class:`~mmconv.frontends.cntk.model.Model`) and
:func:`convert` (the frontend API of :mod:`mmconv.frontends`).
"""

from __future__ import annotations

import os

from mmconv.errors import ModelFormatError, UsageError
from mmconv.frontends.base import Frontend
from mmconv.frontends.cntk.model import Model

# The v1 magic lives with the v1 byte reader, which needs it without importing this
# package's module (that was an import cycle); re-exported here for probe() and users.
from mmconv.frontends.cntk.v1_binary import V1_MAGIC
from mmconv.ir import Graph


def probe(path: str | os.PathLike[str]) -> str:
    """``"v2"`` or ``"v1"`` from the file's first bytes (never from its extension).

    A v2 file is a protobuf ``Dictionary``: it starts with field 1 (``version``,
    tag byte 0x08) or field 2 (``data``, tag byte 0x12).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read the model file ({exc.strerror})") from None
    if not head:
        raise ModelFormatError(f"{path}: the file is empty (0 bytes), not a CNTK model; was "
                               "it copied or downloaded completely?")
    if head.startswith(V1_MAGIC):
        return "v1"
    if head[:1] in (b"\x08", b"\x12"):
        return "v2"
    raise ModelFormatError(
        f"{path}: not a CNTK model (neither the v2 protobuf format nor the legacy v1 'BCN' format)"
    )


def read_model(path: str | os.PathLike[str]) -> Model:
    """Read a CNTK model of either format into the frontend's :class:`Model`."""
    path = os.fspath(path)
    kind = probe(path)
    if kind == "v1":
        from mmconv.frontends.cntk.reader_v1 import read_v1

        return read_v1(path)
    from mmconv.frontends.cntk.reader_v2 import read_v2

    return read_v2(path)


def convert(network: str | None, weights: str | None, *,
            input_shapes: list[tuple[int, ...]] | None = None,
            input_names: list[str] | None = None,
            output_names: list[str] | None = None) -> Graph:
    """CNTK model file -> IR Graph (MMdnn took the model as ``-n``; either flag works)."""
    from mmconv.frontends.cntk.builder import convert_model

    path = weights or network
    if not path:
        raise UsageError("CNTK: give the model file with -n (or -w)")
    return convert_model(read_model(path), input_shapes=input_shapes,
                         input_names=input_names, output_names=output_names)


FRONTEND = Frontend("cntk", convert)
