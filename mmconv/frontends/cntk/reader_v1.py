"""Reader for CNTK's legacy v1 model format (BrainScript, ``save_as_legacy_model``).

The file is what ``ComputationNetwork::Save`` writes (microsoft/CNTK,
``Source/ComputationNetworkLib/ComputationNetwork.cpp``), little-endian:

``BCN`` ``BVersion`` u64 version ``EVersion`` u64 numNodes ``BNodeList``
then per node: [precision string (version >= 7)] type name, node name, the
node type's own fields (:mod:`mmconv.frontends.cntk.v1_nodes`), ``ENodeList``;
``BRelation`` per node: name, u64 count, input names; ``ERelation``;
``BRootNodes`` with the optional feature/label/criterion/eval/output groups,
``ERootNodes`` ``ECN``.  Strings and markers are UTF-16 code units, zero
terminated.

We produce the same :class:`~mmconv.frontends.cntk.model.Model` the v2 reader
produces, translating node types and attributes the way CNTK's own loader
does (``Source/CNTKv2LibraryDll/BackCompat.cpp``): the v1 -> v2 op table and
the per-op attribute mapping live in :mod:`mmconv.frontends.cntk.v1_nodes`.

Everything read from the file is treated as hostile: every length, count and
dimension is checked against the bytes that are left before anything is
allocated, and every problem surfaces as :class:`ModelFormatError` naming the
file and byte offset.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, UnsupportedError
from mmconv.frontends.cntk import V1_MAGIC
from mmconv.frontends.cntk.model import Function, Model, Variable
from mmconv.fsutil import map_file

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


def parse_v1(data: bytes | bytearray | mmap.mmap, path: str = "<memory>") -> V1Network:
    """Parse the bytes of a v1 file into a :class:`V1Network` (no translation)."""
    from mmconv.frontends.cntk.v1_nodes import read_node_fields

    r = ByteReader(data, path)
    if data[: len(V1_MAGIC)] != V1_MAGIC:
        raise r.error("missing the 'BCN' header", 0)
    r.marker("BCN")
    version = 1
    if r.try_marker("BVersion"):
        at = r.pos
        version = r.u64("model version")
        r.marker("EVersion")
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise ModelFormatError(
                f"{path}: model version {version} at offset {at} is not supported "
                f"(this reader knows versions {MIN_VERSION}..{MAX_VERSION})"
            )
    at = r.pos
    num_nodes = r.u64("node count")
    # every node takes at least a type and a name string (>= 4 bytes) plus a relation entry
    if num_nodes * 8 > r.remaining:
        raise r.error(f"node count {num_nodes} is larger than the file could hold", at)
    r.marker("BNodeList")
    nodes: dict[str, V1Node] = {}
    for _ in range(num_nodes):
        start = r.pos
        precision = r.string("node precision") if version >= 7 else ""
        if precision not in ("float", "double", "half", ""):
            raise r.error(f"unknown node precision {precision[:20]!r}", start)
        op = r.string("node type")
        name = r.string("node name")
        if name in nodes:
            raise r.error(f"duplicate node name {name[:80]!r}", start)
        node = V1Node(op=op, name=name, precision=precision, offset=start)
        node.fields = read_node_fields(r, node, version)
        nodes[name] = node
    r.marker("ENodeList")

    r.marker("BRelation")
    seen: set[str] = set()
    for _ in range(num_nodes):
        start = r.pos
        name = r.string("relation node name")
        node = nodes.get(name)
        if node is None:
            raise r.error(f"relation names unknown node {name[:80]!r}", start)
        if name in seen:
            raise r.error(f"relation lists node {name[:80]!r} twice", start)
        seen.add(name)
        n = r.count(f"input count of {name[:80]!r}", 2)
        inputs = [r.string("input name") for _ in range(n)]
        for inp in inputs:
            if inp not in nodes:
                raise r.error(f"node {name[:80]!r} has unknown input {inp[:80]!r}", start)
        node.inputs = inputs
    r.marker("ERelation")

    groups = _read_root_groups(r)
    r.marker("ECN")
    for group, names in groups.items():
        for n in names:
            if n not in nodes:
                raise r.error(f"{group} node group names unknown node {n[:80]!r}")
    return V1Network(path=path, version=version, nodes=nodes, groups=groups)


def _read_root_groups(r: ByteReader) -> dict[str, list[str]]:
    """The ``BRootNodes`` section, accepting the legacy spellings CNTK's ``Read`` accepts."""
    groups: dict[str, list[str]] = {}
    r.marker("BRootNodes")
    if r.try_marker("BFeatureNodes"):
        groups["feature"] = r.strings("feature node count")
        r.marker("EFeatureNodes")
    if r.try_marker("BLabelNodes"):
        groups["label"] = r.strings("label node count")
    # CNTK reads ELabelNodes unconditionally (its own "BUGBUG" comment).
    r.marker("ELabelNodes")
    if r.try_marker("BCriterionNodes") or r.try_marker("BCriteriaNodes"):
        groups["criterion"] = r.strings("criterion node count")
        if not r.try_marker("ECriteriaNodes"):
            r.marker("ECriterionNodes")
    if r.try_marker("BNodesReqMultiSeqHandling"):
        r.strings("multi-seq node count")
        r.marker("ENodesReqMultiSeqHandling")
    if r.try_marker("BEvalNodes"):
        groups["evaluation"] = r.strings("evaluation node count")
        r.marker("EEvalNodes")
    if r.try_marker("BOutputNodes"):
        groups["output"] = r.strings("output node count")
        r.marker("EOutputNodes")
    if r.try_marker("BPairNodes"):
        pairs = r.strings("pair node count")
        if pairs:
            raise r.error("PairNodes are not supported (CNTK dropped them too)")
        r.marker("EPairNodes")
    r.marker("ERootNodes")
    return groups


def read_v1(path: str | os.PathLike[str]) -> Model:
    """Read a legacy v1 CNTK model file into the frontend's :class:`Model`.

    The result uses the v2 vocabulary (PrimitiveOpType names, v2 attribute
    names, NDShape attributes in storage order, Python-order variable shapes)
    so the same converters serve both formats.
    """
    from mmconv.frontends.cntk.v1_nodes import translate

    spath = os.fspath(path)
    try:
        # Mapped copy-on-write: nothing is copied up front, and parameter arrays
        # (views into the mapping) are writable without touching the file.
        data = map_file(spath)
    except OSError as e:
        raise ModelFormatError(f"{spath}: cannot read the model file ({e.strerror})") from None
    net = parse_v1(data, spath)
    return translate(net)


__all__ = [
    "MAX_VERSION",
    "MIN_VERSION",
    "ByteReader",
    "Function",
    "Model",
    "V1Network",
    "V1Node",
    "Variable",
    "parse_v1",
    "read_v1",
]
