"""The byte level of CNTK's legacy v1 format: a bounds-checked reader and the raw node records.

Why a module of its own: both halves of the v1 reader need it (the node-type field
decoders in :mod:`.v1_fields` and the file walk in :mod:`.reader_v1`), and neither
may import the other's module to get it (that was an import cycle).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, UnsupportedError

#: The first bytes of every v1 file: "BCN" in UTF-16LE, zero-terminated.
V1_MAGIC = "BCN\0".encode("utf-16-le")

#: Model versions this reader understands (CNTK 2.7 writes 31; the oldest
#: files of the CNTK 1.x era carry no version marker at all, meaning 1).
MIN_VERSION = 1
MAX_VERSION = 31

#: Longest string we accept (in UTF-16 code units): node names in real models
#: are < 200 characters; the cap only bounds work on hostile files.
MAX_STRING_UNITS = 1 << 16


class ByteReader:
    """Bounds-checked little-endian reader over a file's bytes.

    Every read checks what is left first, so a truncated or hostile file can
    only ever produce a :class:`ModelFormatError`, never an IndexError, a
    huge allocation or a hang.
    """

    def __init__(self, data: bytes | bytearray | mmap.mmap, path: str) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = 0
        self.size = len(data)
        self.path = path

    # -- errors ---------------------------------------------------------------
    def error(self, what: str, offset: int | None = None) -> ModelFormatError:
        at = self.pos if offset is None else offset
        return ModelFormatError(f"{self.path}: {what} at offset {at} (not a valid CNTK v1 model)")

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        if n < 0 or n > self.size - self.pos:
            raise self.error(f"{what}: needs {n} bytes, {self.size - self.pos} left")

    # -- scalars --------------------------------------------------------------
    def _scalar(self, fmt: str, n: int, what: str) -> Any:
        self.need(n, what)
        value = np.frombuffer(self.data, dtype=fmt, count=1, offset=self.pos)[0]
        self.pos += n
        return value

    def u8(self, what: str = "byte") -> int:
        self.need(1, what)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def boolean(self, what: str = "bool") -> bool:
        return self.u8(what) != 0

    def u32(self, what: str = "uint32") -> int:
        return int(self._scalar("<u4", 4, what))

    def i32(self, what: str = "int32") -> int:
        return int(self._scalar("<i4", 4, what))

    def u64(self, what: str = "uint64") -> int:
        return int(self._scalar("<u8", 8, what))

    def f32(self, what: str = "float") -> float:
        return float(self._scalar("<f4", 4, what))

    def f64(self, what: str = "double") -> float:
        return float(self._scalar("<f8", 8, what))

    def count(self, what: str, unit: int, wide: bool = True) -> int:
        """A u64 (or u32) element count, checked so ``count * unit`` bytes still fit."""
        start = self.pos
        n = self.u64(what) if wide else self.u32(what)
        if n * max(unit, 1) > self.size - self.pos:
            raise self.error(f"{what} {n} is larger than the rest of the file", start)
        return n

    # -- strings and markers --------------------------------------------------
    def string(self, what: str = "string") -> str:
        """A zero-terminated UTF-16-LE string (CNTK's ``File << wstring`` in binary mode)."""
        start = self.pos
        data = self.data
        end = start
        limit = min(self.size, start + 2 * MAX_STRING_UNITS + 2)
        while True:
            idx = data.find(b"\x00\x00", end, limit)
            if idx < 0:
                raise self.error(f"unterminated {what}", start)
            if (idx - start) % 2 == 0:
                break
            end = idx + 1
        raw = data[start:idx]
        self.pos = idx + 2
        try:
            return raw.decode("utf-16-le")
        except UnicodeDecodeError:
            raise self.error(f"{what} is not valid UTF-16", start) from None

    def peek_string(self) -> str | None:
        """The string at the current position without consuming it (None if unreadable)."""
        pos = self.pos
        try:
            return self.string()
        except ModelFormatError:
            return None
        finally:
            self.pos = pos

    def marker(self, name: str) -> None:
        start = self.pos
        got = self.peek_string()
        if got != name:
            shown = "unreadable data" if got is None else repr(got[:40])
            raise self.error(f"expected section marker {name!r}, found {shown}", start)
        self.string()

    def try_marker(self, name: str) -> bool:
        if self.peek_string() == name:
            self.string()
            return True
        return False

    def strings(self, what: str) -> list[str]:
        n = self.count(what, 2)
        return [self.string(what) for _ in range(n)]

    def bools(self, what: str) -> list[bool]:
        n = self.count(what, 1)
        self.need(n, what)
        out = [b != 0 for b in self.data[self.pos : self.pos + n]]
        self.pos += n
        return out

    # -- CNTK structures ------------------------------------------------------
    def tensor_shape(self, what: str = "tensor shape", legacy: bool = False) -> tuple[int, ...]:
        """A ``TensorShape`` (``TensorShape::Save``): u32 rank then u32 dims, storage order.

        ``legacy`` accepts the pre-tensor (size_t W, H, C) form that
        ``TensorShape::Load(fstream, acceptLegacyFormat=true)`` detects by a
        zero second word; it is returned as (C, W, H) exactly like CNTK does.
        """
        start = self.pos
        rank = self.u32(what)
        if rank == 0:
            return ()
        if rank * 4 > self.size - self.pos:
            raise self.error(f"{what} rank {rank} is larger than the rest of the file", start)
        dim0 = self.u32(what)
        if legacy and dim0 == 0:
            # old format: size_t W (=rank | dim0 << 32), size_t H, size_t C
            h = self.u32(what)
            self.u32(what)
            c = self.u32(what)
            self.u32(what)
            return (c, rank, h)
        dims = [dim0]
        if rank > 1:
            rest = np.frombuffer(self.data, dtype="<u4", count=rank - 1, offset=self.pos)
            self.pos += 4 * (rank - 1)
            dims.extend(int(d) for d in rest)
        return tuple(dims)

    def matrix(self, what: str) -> np.ndarray:
        """A dense matrix (``Matrix<ElemType>`` serialization) as a flat column-major array.

        Layout: ``'d'`` byte, ``BMAT``, u64 element size, matrix name string,
        u32 format, u64 rows, u64 cols, rows*cols elements, ``EMAT``.  The
        returned array views the file's bytes (no copy) and has rows*cols
        elements in storage (column-major) order.
        """
        start = self.pos
        kind = self.u8(f"{what} type")
        if kind == ord("s"):
            raise UnsupportedError(
                f"{self.path}: {what} at offset {start} is a sparse matrix; "
                "sparse parameters are not supported"
            )
        if kind != ord("d"):
            raise self.error(f"{what}: unknown matrix type byte {kind}", start)
        self.marker("BMAT")
        elsize = self.u64(f"{what} element size")
        dtype = {2: "<f2", 4: "<f4", 8: "<f8"}.get(elsize)
        if dtype is None:
            raise self.error(f"{what}: unsupported element size {elsize}", start)
        self.string(f"{what} name")
        self.u32(f"{what} format")
        rows = self.u64(f"{what} rows")
        cols = self.u64(f"{what} cols")
        if rows and cols > (self.size - self.pos) // (rows * elsize):
            raise self.error(
                f"{what}: {rows}x{cols} matrix of {elsize}-byte values is larger than the "
                "rest of the file",
                start,
            )
        n = rows * cols
        values = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.pos)
        self.pos += n * elsize
        self.marker("EMAT")
        return values


@dataclass
class V1Node:
    """One node as stored in the file: type, name, precision, its fields and inputs."""

    op: str
    name: str
    precision: str
    offset: int
    fields: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)


@dataclass
class V1Network:
    """The raw content of a v1 file, before translation to the v2 vocabulary."""

    path: str
    version: int
    nodes: dict[str, V1Node]
    groups: dict[str, list[str]]
