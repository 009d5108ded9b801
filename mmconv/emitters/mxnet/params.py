"""MXNet's NDArray list file (``NAME-0000.params``, what ``mx.nd.save`` writes), without MXNet.

Layout (little-endian; MXNet 1.9.1 ``NDArray::Save`` and ``mx.nd.save`` in
``src/ndarray/ndarray.cc``, legacy, non-numpy shape semantics):

- ``uint64`` list magic ``0x112``, ``uint64`` reserved 0;
- ``uint64`` array count, then per array:

  - ``uint32`` magic ``0xF993FAC9`` (version 2: with a storage type),
  - ``int32`` storage type (0: dense),
  - the shape: ``uint32`` ndim, then ``ndim`` x ``int64`` dims,
  - the context: ``int32`` device type (1: CPU), ``int32`` device id,
  - ``int32`` dtype flag (mshadow's type flag, :data:`DTYPE_FLAGS`),
  - the elements, C order, raw;

- ``uint64`` name count (equal to the array count), each name a ``uint64``
  length and its UTF-8 bytes.

In this legacy mode a shape of rank 0 means "no array" and carries no data,
so a 0-d array is written with shape ``(1,)`` (the caller sees that shape in
:func:`stored_shape` and declares it in the symbol).  Checkpoints name
parameters ``arg:NAME`` and auxiliary states (BatchNorm's moving statistics)
``aux:NAME``; :func:`mx.model.load_checkpoint` splits on the first colon.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np

LIST_MAGIC = 0x112
ARRAY_MAGIC_V2 = 0xF993FAC9
STORAGE_DEFAULT = 0
DEVICE_CPU = 1

#: numpy dtype name -> mshadow type flag (mshadow/base.h).
DTYPE_FLAGS = {
    "float32": 0, "float64": 1, "float16": 2, "uint8": 3, "int32": 4, "int8": 5, "int64": 6,
}


def stored_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape an array of ``shape`` is stored (and must be declared) with: 0-d as (1,)."""
    return tuple(shape) if shape else (1,)


def array_header(array: np.ndarray) -> bytes:
    """The bytes in front of one array's elements."""
    flag = DTYPE_FLAGS.get(array.dtype.name)
    if flag is None:
        raise ValueError(f"MXNet has no dtype {array.dtype.name} for parameters "
                         f"(it has {', '.join(DTYPE_FLAGS)})")
    shape = stored_shape(array.shape)
    return (struct.pack("<Ii", ARRAY_MAGIC_V2, STORAGE_DEFAULT)
            + struct.pack(f"<I{len(shape)}q", len(shape), *shape)
            + struct.pack("<iii", DEVICE_CPU, 0, flag))


def write_params(out: BinaryIO, arrays: Iterable[tuple[str, np.ndarray]]) -> None:
    """Write (name, array) pairs in order as one NDArray list file to ``out``.

    Arrays are written little-endian and C-contiguous, one at a time (memory stays
    near the largest array).  Names must be unique.
    """
    items = list(arrays)
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError("parameter names must be unique")
    out.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(items)))
    for _, array in items:
        array = np.asarray(array)
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        out.write(array_header(array))
        out.write(data.reshape(-1).view(np.uint8).data)
    out.write(struct.pack("<Q", len(names)))
    for name in names:
        raw = name.encode("utf-8")
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
