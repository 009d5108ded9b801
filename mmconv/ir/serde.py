"""IR files: ``PREFIX.pb`` (binary graph), ``PREFIX.json`` (the same, readable), ``PREFIX.npy``.

The weights file is numpy's npz archive under the ``.npy`` name MMdnn used:
``numpy.load(path)`` (``allow_pickle`` stays False) returns a mapping from
weight name (``<node>/<param>``, e.g. ``conv1/W``) to array.  The graph file
records every weight's dtype and shape, and loading checks the two agree.
This is the only module that knows about protobuf.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import math
import mmap
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from mmconv import __version__
from mmconv.errors import IRError, ModelFormatError
from mmconv.fsutil import atomic_path, map_file
from mmconv.ir import graph_pb2 as pb
from mmconv.ir.core import AttrValue, Graph, Value
from mmconv.ir.infer import infer_shapes
from mmconv.ir.registry import get_schema

#: Bumped when a change makes old IR files unreadable.
IR_VERSION = 1

_DTYPE_TO_PB = {
    "float32": pb.FLOAT32, "float64": pb.FLOAT64, "float16": pb.FLOAT16, "int8": pb.INT8,
    "int16": pb.INT16, "int32": pb.INT32, "int64": pb.INT64, "uint8": pb.UINT8, "bool": pb.BOOL,
}
_PB_TO_DTYPE = {v: k for k, v in _DTYPE_TO_PB.items()}


def ir_paths(prefix: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The ``.pb``, ``.json`` and ``.npy`` paths for an IR prefix."""
    prefix = str(prefix)
    return Path(prefix + ".pb"), Path(prefix + ".json"), Path(prefix + ".npy")


# -- to protobuf --------------------------------------------------------------
def _value_to_pb(value: Value, msg: pb.ValueInfo) -> None:
    msg.name = value.name
    msg.dtype = _DTYPE_TO_PB[value.dtype]
    msg.shape.dims.extend(-1 if d is None else d for d in value.shape)


def _attr_to_pb(kind: str, value: AttrValue, msg: pb.AttrValue) -> None:
    if kind == "int":
        msg.i = value
    elif kind == "float":
        msg.f = value
    elif kind == "str":
        msg.s = value
    elif kind == "bool":
        msg.b = value
    elif kind == "ints":
        msg.ints.SetInParent()
        msg.ints.values.extend(value)
    elif kind == "floats":
        msg.floats.SetInParent()
        msg.floats.values.extend(value)
    elif kind == "graph":
        assert isinstance(value, Graph)
        msg.g.SetInParent()
        msg.g.name = value.name
        _graph_to_pb(value, msg.g)
    else:
        msg.strings.SetInParent()
        msg.strings.values.extend(value)


def _graph_to_pb(graph: Graph, msg: pb.Graph) -> None:
    """Inputs, outputs, nodes (loop bodies nested) and node output values of ``graph``."""
    for value in graph.inputs:
        _value_to_pb(value, msg.inputs.add())
    msg.outputs.extend(graph.outputs)
    for node in graph.nodes:
        schema = get_schema(node.op)
        nmsg = msg.nodes.add(name=node.name, op=node.op)
        nmsg.inputs.extend(node.inputs)
        nmsg.outputs.extend(node.outputs)
        for key in sorted(node.attrs):
            _attr_to_pb(schema.attrs[key].type, node.attrs[key], nmsg.attrs[key])
        for out in node.outputs:
            _value_to_pb(graph.values[out], msg.values.add())


def to_proto(graph: Graph) -> pb.Graph:
    """The graph as a protobuf message (shapes are inferred first)."""
    infer_shapes(graph)
    msg = pb.Graph(ir_version=IR_VERSION, name=graph.name, producer=f"mmconv {__version__}")
    _graph_to_pb(graph, msg)
    for name in graph.weights:
        _value_to_pb(graph.values[name], msg.weights.add())
    for key in sorted(graph.metadata):
        msg.metadata[key] = graph.metadata[key]
    return msg


# -- from protobuf ------------------------------------------------------------
def _value_from_pb(msg: pb.ValueInfo) -> Value:
    if msg.dtype not in _PB_TO_DTYPE:
        raise IRError(f"value {msg.name!r} has unknown dtype {msg.dtype}")
    shape = tuple(None if d == -1 else int(d) for d in msg.shape.dims)
    if any(d is not None and d < 0 for d in shape):
        raise IRError(f"value {msg.name!r} has a negative dimension")
    return Value(msg.name, _PB_TO_DTYPE[msg.dtype], shape)


#: How deep loop bodies may nest in a file (the IR itself allows one level: a body
#: holds no Scan); a hostile file cannot make loading recurse further.
MAX_BODY_DEPTH = 4


def _attr_from_pb(node: str, op: str, key: str, kind: str, msg: pb.AttrValue,
                  bodies: list[tuple[Graph, pb.Graph]], depth: int) -> AttrValue:
    field = msg.WhichOneof("value")
    expected = {"int": "i", "float": "f", "str": "s", "bool": "b", "ints": "ints",
                "floats": "floats", "strs": "strings", "graph": "g"}[kind]
    if field != expected:
        raise IRError(f"node {node!r} ({op}): attribute {key!r} should be {kind}, file has {field}")
    if kind == "graph":
        return _body_from_pb(f"node {node!r} ({op}) attribute {key!r}", msg.g, bodies, depth)
    raw = getattr(msg, field)
    if kind in ("ints", "floats", "strs"):
        return tuple(raw.values)
    return raw


def _body_from_pb(where: str, msg: pb.Graph, bodies: list[tuple[Graph, pb.Graph]],
                  depth: int) -> Graph:
    """A loop body from its message: no weights, nesting bounded."""
    if depth >= MAX_BODY_DEPTH:
        raise IRError(f"{where}: loop bodies nest deeper than {MAX_BODY_DEPTH} levels")
    if msg.weights:
        raise IRError(f"{where}: a loop body holds no weights (it reads the outer graph's "
                      "by name), the file gives it some")
    body = Graph(msg.name or "body")
    try:
        _nodes_from_pb(body, msg, bodies, depth + 1)
    except IRError as exc:
        raise IRError(f"{where}: {exc}") from None
    bodies.append((body, msg))
    return body


def _nodes_from_pb(graph: Graph, msg: pb.Graph, bodies: list[tuple[Graph, pb.Graph]],
                   depth: int) -> None:
    """Inputs, nodes and outputs of ``msg`` into ``graph`` (weights already there)."""
    for vmsg in msg.inputs:
        value = _value_from_pb(vmsg)
        graph.add_input(value.name, value.dtype, value.shape)
    for nmsg in msg.nodes:
        schema = get_schema(nmsg.op)
        attrs = {}
        for key, amsg in nmsg.attrs.items():
            spec = schema.attrs.get(key)
            if spec is None:
                raise IRError(f"node {nmsg.name!r} ({nmsg.op}): unknown attribute {key!r}")
            attrs[key] = _attr_from_pb(nmsg.name, nmsg.op, key, spec.type, amsg, bodies,
                                       depth)
        graph.add_node(nmsg.op, list(nmsg.inputs), nmsg.name, list(nmsg.outputs), **attrs)
    graph.outputs = list(msg.outputs)


def _check_values(graph: Graph, msg: pb.Graph, where: str = "") -> None:
    """The values the file records must be what inference gives."""
    for vmsg in msg.values:
        stored = _value_from_pb(vmsg)
        inferred = graph.values.get(stored.name)
        if inferred is not None and inferred != stored:
            raise IRError(
                f"{where}value {stored.name!r} is recorded as {stored.dtype}"
                f"{list(stored.shape)} but infers to {inferred.dtype}{list(inferred.shape)}"
            )


def from_proto(msg: pb.Graph, weights: dict[str, np.ndarray]) -> Graph:
    """Rebuild a validated :class:`Graph` from its message and its weight arrays."""
    if msg.ir_version > IR_VERSION:
        raise IRError(
            f"IR version {msg.ir_version} is newer than this mmconv understands "
            f"({IR_VERSION}); upgrade mmconv"
        )
    graph = Graph(msg.name or "model")
    declared = {w.name: _value_from_pb(w) for w in msg.weights}
    missing = sorted(set(declared) - set(weights))
    if missing:
        raise IRError(f"weights file lacks {len(missing)} weights, e.g. {missing[0]!r}")
    for name, value in declared.items():
        array = weights[name]
        if array.dtype.name != value.dtype or tuple(array.shape) != value.shape:
            raise IRError(
                f"weight {name!r} is {array.dtype.name}{list(array.shape)} in the "
                f"weights file but {value.dtype}{list(value.shape)} in the graph"
            )
        graph.add_weight(name, array)
    bodies: list[tuple[Graph, pb.Graph]] = []
    _nodes_from_pb(graph, msg, bodies, 0)
    graph.metadata = dict(msg.metadata)
    infer_shapes(graph)
    _check_values(graph, msg)
    for body, bmsg in bodies:
        _check_values(body, bmsg, f"loop body {body.name!r}: ")
    return graph


# -- files --------------------------------------------------------------------
#: The timestamp of every member (the earliest a zip can hold): same arrays, same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_DOS_DATE = (_ZIP_EPOCH[0] - 1980) << 9 | _ZIP_EPOCH[1] << 5 | _ZIP_EPOCH[2]
_DOS_TIME = _ZIP_EPOCH[3] << 11 | _ZIP_EPOCH[4] << 5 | _ZIP_EPOCH[5] // 2
#: What zipfile (and so numpy.savez) writes: "made by" Unix, version 4.5 (ZIP64).
_ZIP64_VERSION, _UNIX = 45, 3
_ZIP64_LIMIT = (1 << 31) - 1          # zipfile's threshold for ZIP64 fields
_ZIP_FILECOUNT_LIMIT = (1 << 16) - 1
#: the longest member name a zip entry can hold (its length is a 16-bit field)
_MAX_NAME = (1 << 16) - 1
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")
#: Member data starts at a multiple of this in the file, so a mapped member is an
#: aligned array (``load_weights`` maps members in place).  The padding is an
#: extra field in the local header that readers skip (ID 0xD935, the one Android's
#: zipalign uses for the same purpose: u16 alignment, then zero bytes).
_DATA_ALIGN = 64
_ALIGN_EXTRA_ID = 0xD935
#: numpy refuses .npy headers longer than this by default (``max_header_size``).
_NPY_HEADER_MAX = 10_000 + 16
#: Members at least this large have their CRC computed on the second thread.
_CRC_THREAD_MIN = 1 << 20


@dataclasses.dataclass
class _Member:
    name: bytes
    flags: int
    offset: int
    size: int
    crc: int | Future[int] = 0


def _npy_header(key: str, array: np.ndarray) -> bytes:
    """numpy's format-1.0 header for ``array``, exactly as ``np.save`` writes it."""
    if array.dtype.hasobject:
        raise IRError(f"weight {key!r} has dtype object, which IR files cannot hold")
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(array))
    return buf.getvalue()


def _crc(header: bytes, data: memoryview) -> int:
    return zlib.crc32(data, zlib.crc32(header))


def write_weights(f: IO[bytes], weights: Mapping[str, np.ndarray]) -> None:
    """Write ``weights`` as an npz archive: ``numpy.load(f)`` maps each key to its array.

    The archive is what ``numpy.savez`` writes (stored members ``<key>.npy`` with
    numpy's format-1.0 header and a forced ZIP64 extra field, central directory
    as Python's zipfile writes it), with two differences: every member has the
    same fixed timestamp (1980-01-01), so the same arrays give the same bytes,
    and each member's data starts at a multiple of 64 bytes in the file (a
    padding extra field in the local header), so a reader can map it in place.

    Why not ``zipfile``/``np.savez``: they copy each array to bytes in chunks and
    compute the CRC and write one after the other on one thread.  Here the array's
    memory goes to the file directly while a second thread computes the CRCs
    (``zlib.crc32`` and file writes both release the GIL); the CRCs are patched
    into the local headers at the end.  ``f`` must be seekable (a file or BytesIO).
    """
    members: list[_Member] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="npz-crc") as crcs:
        for key, value in weights.items():
            array = np.asarray(value)
            if not (array.flags.c_contiguous or array.flags.f_contiguous):
                array = np.ascontiguousarray(array).reshape(array.shape)  # keeps 0-d arrays 0-d
            header = _npy_header(key, array)
            # order="A": a Fortran-ordered array is written as is, its header says so
            data = memoryview(array.reshape(-1, order="A")).cast("B")
            name = key + ".npy"
            if "\0" in name:
                raise IRError(f"weight name {key!r} contains a NUL character, which an npz "
                              "member name cannot hold")
            try:
                raw_name, flags = name.encode("ascii"), 0
            except UnicodeEncodeError:
                raw_name, flags = name.encode("utf-8"), 0x800  # zipfile: UTF-8 name flag
            if len(raw_name) > _MAX_NAME:
                # the zip format stores a member name's length in 16 bits
                raise IRError(f"weight name {key[:60]!r}... is {len(raw_name) - 4} bytes long; "
                              f"the IR weights file (npz) holds names of at most "
                              f"{_MAX_NAME - 4} bytes (rename the parameter in the source "
                              "model)")
            member = _Member(raw_name, flags, f.tell(), len(header) + data.nbytes)
            zip64 = struct.pack("<HHQQ", 1, 16, member.size, member.size)
            pad = -(member.offset + _LOCAL.size + len(raw_name) + len(zip64)
                    + len(header)) % _DATA_ALIGN
            if pad and pad < 6:
                pad += _DATA_ALIGN
            extra = zip64 + (struct.pack("<HHH", _ALIGN_EXTRA_ID, pad - 4, _DATA_ALIGN)
                             + bytes(pad - 6) if pad else b"")
            f.write(_LOCAL.pack(b"PK\x03\x04", _ZIP64_VERSION, 0, flags, zipfile.ZIP_STORED,
                                _DOS_TIME, _DOS_DATE, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                                len(raw_name), len(extra)))
            f.write(raw_name)
            f.write(extra)
            f.write(header)
            if data.nbytes >= _CRC_THREAD_MIN:
                member.crc = crcs.submit(_crc, header, data)
            else:
                member.crc = _crc(header, data)
            f.write(data)
            members.append(member)
        end = f.tell()
        for member in members:
            if isinstance(member.crc, Future):
                member.crc = member.crc.result()
            f.seek(member.offset + 14)
            f.write(struct.pack("<L", member.crc))
    f.seek(end)
    _write_central_directory(f, members, end)


def _write_central_directory(f: IO[bytes], members: list[_Member], start: int) -> None:
    """The central directory and end records, field for field as zipfile writes them."""
    for m in members:
        zip64: list[int] = []
        size = m.size
        if m.size > _ZIP64_LIMIT:
            zip64 += [m.size, m.size]
            size = 0xFFFFFFFF
        offset = m.offset
        if m.offset > _ZIP64_LIMIT:
            zip64.append(m.offset)
            offset = 0xFFFFFFFF
        extra = struct.pack(f"<HH{len(zip64)}Q", 1, 8 * len(zip64), *zip64) if zip64 else b""
        f.write(_CENTRAL.pack(b"PK\x01\x02", _ZIP64_VERSION, _UNIX, _ZIP64_VERSION, 0, m.flags,
                              zipfile.ZIP_STORED, _DOS_TIME, _DOS_DATE, m.crc, size, size,
                              len(m.name), len(extra), 0, 0, 0, 0o600 << 16, offset))
        f.write(m.name)
        f.write(extra)
    end = f.tell()
    count, size, offset = len(members), end - start, start
    if count > _ZIP_FILECOUNT_LIMIT or offset > _ZIP64_LIMIT or size > _ZIP64_LIMIT:
        f.write(_END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset))
        f.write(_END64_LOCATOR.pack(b"PK\x06\x07", 0, end, 1))
        count, size, offset = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
    f.write(_END.pack(b"PK\x05\x06", 0, 0, count, count, size, offset, 0))
    f.flush()


def save_weights(path: str | os.PathLike[str], weights: Mapping[str, np.ndarray]) -> None:
    """Write ``weights`` (see :func:`write_weights`) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        _write_weights_file(tmp, weights)


def save(graph: Graph, prefix: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """Write ``PREFIX.pb``, ``PREFIX.json`` and ``PREFIX.npy``: all three, or none.

    Each file goes to a temporary name first and the three are renamed only when
    all are complete.  The weights (most of the bytes: the zip CRC and the write
    release the GIL) are written on a worker thread while the graph is serialized.
    """
    pb_path, json_path, npy_path = ir_paths(prefix)
    with contextlib.ExitStack() as renames:
        npy_tmp = renames.enter_context(atomic_path(npy_path))
        pb_tmp = renames.enter_context(atomic_path(pb_path))
        json_tmp = renames.enter_context(atomic_path(json_path))
        with ThreadPoolExecutor(max_workers=1) as pool:
            weights_written = pool.submit(_write_weights_file, npy_tmp, graph.weights)
            try:
                msg = to_proto(graph)
                pb_tmp.write_bytes(msg.SerializeToString(deterministic=True))
                json_tmp.write_text(graph_json(msg), encoding="utf-8")
            finally:
                weights_written.result()  # re-raises the worker's error, if any
    return pb_path, json_path, npy_path


def _write_weights_file(path: Path, weights: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        write_weights(f, weights)


def graph_json(msg: pb.Graph) -> str:
    """The graph as JSON (protobuf's JSON mapping), one node or value per line.

    Readable in a diff or an editor, and fast: ``json.dumps`` with ``indent``
    falls back to the pure-Python encoder, so each element is encoded compactly
    by the C encoder and only the outer layout is ours.
    """
    data = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    lines = ["{"]
    keys = sorted(data)
    for i, key in enumerate(keys):
        value = data[key]
        comma = "," if i < len(keys) - 1 else ""
        if isinstance(value, list) and value:
            items = [" " * 2 + json.dumps(v, sort_keys=True) for v in value]
            lines.append(f" {json.dumps(key)}: [")
            lines.append(",\n".join(items))
            lines.append(f" ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read an IR weights file (npz, no pickle) into a dict, mapping the data in place.

    The file is mapped copy-on-write (:func:`mmconv.fsutil.map_file`) and each stored
    ``.npy`` member becomes a writable array over its bytes: no copy is made, pages
    are read when first used, and a model is not held twice while it is emitted.
    The file is hostile input: the zip directory is read by ``zipfile``, and every
    member's local header, ``.npy`` header (numpy's own parser, object dtypes
    refused) and data are checked to lie inside the file and not to overlap.  As
    with ``np.load(mmap_mode=...)``, the CRCs are not verified (that would read
    every byte up front).  Members that cannot be mapped (compressed, as
    ``np.savez_compressed`` writes; or not aligned for their dtype) are read the
    usual way.  A file written by ``numpy.savez`` loads the same.
    """
    try:
        data = map_file(path)
        with zipfile.ZipFile(path) as archive:
            return _weights_from_zip(path, archive, data)
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise ModelFormatError(f"{path}: unreadable weights file ({exc})") from None


def _weights_from_zip(path: str | os.PathLike[str], archive: zipfile.ZipFile,
                      data: mmap.mmap | bytearray) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    spans: list[tuple[int, int, str]] = []
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise ModelFormatError(f"{path}: member {name!r} is not a .npy array")
        key = name[: -len(".npy")]
        if key in weights:
            raise ModelFormatError(f"{path}: weight {key!r} appears twice")
        where = f"{path}: member {name!r}"
        if info.flag_bits & 0x1:
            raise ModelFormatError(f"{where} is encrypted")
        mapped = _map_member(where, info, data)
        if mapped is None:
            weights[key] = _read_member(where, archive, info)
        else:
            weights[key], start, end = mapped
            spans.append((start, end, key))
    spans.sort()
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            raise ModelFormatError(f"{path}: the data of weights {first!r} and {second!r} "
                                   "overlap")
    return weights


def _read_npy_header(where: str, f: IO[bytes], size: int
                ) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    """Shape, Fortran order, dtype and data size of the ``.npy`` data of ``size`` bytes
    at ``f``'s position (left at the data), or None for a version numpy must read.
    Refuses object dtypes and data that would not fit in ``size``."""
    start = f.tell()
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
    except Exception as exc:
        # numpy's parser of a hostile header raises ValueError, SyntaxError,
        # tokenize.TokenError, ...: all of them mean a bad header
        raise ModelFormatError(f"{where}: bad .npy header ({type(exc).__name__})") from None
    if dtype.hasobject:
        raise ModelFormatError(f"{where} holds Python objects (pickled data is never loaded)")
    if any(d < 0 for d in shape):
        raise ModelFormatError(f"{where}: negative dimension in {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    left = size - (f.tell() - start)
    if nbytes > left:
        raise ModelFormatError(f"{where}: {shape} {dtype} needs {nbytes} bytes, the member "
                               f"holds {left}")
    return shape, fortran, dtype, nbytes


def _map_member(where: str, info: zipfile.ZipInfo, data: mmap.mmap | bytearray
                ) -> tuple[np.ndarray, int, int] | None:
    """The stored member ``info`` as an array over ``data`` and its byte span, or None
    when it cannot be mapped (compressed, not aligned for its dtype, a .npy version
    numpy must read).  Everything the file says is checked against its size."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    size = len(data)
    if info.compress_size != info.file_size:
        raise ModelFormatError(f"{where}: stored sizes disagree")
    head = info.header_offset
    if head < 0 or head + _LOCAL.size > size:
        raise ModelFormatError(f"{where}: local header lies outside the file")
    sig, *_, name_len, extra_len = _LOCAL.unpack_from(data, head)
    if sig != b"PK\x03\x04":
        raise ModelFormatError(f"{where}: bad local header")
    start = head + _LOCAL.size + name_len + extra_len
    end = start + info.file_size
    if end > size:
        raise ModelFormatError(f"{where}: data runs past the end of the file")
    header = io.BytesIO(data[start : min(end, start + _NPY_HEADER_MAX)])
    found = _read_npy_header(where, header, info.file_size)
    if found is None:
        return None
    shape, fortran, dtype, nbytes = found
    offset = start + header.tell()
    if nbytes == 0:
        return np.empty(shape, dtype), offset, offset
    if offset % dtype.alignment:
        return None
    array = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C"), offset, offset + nbytes


def _read_member(where: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """A member that cannot be mapped, read into a (writable) copy; its header is
    checked as a mapped one's, so a small member cannot make us allocate a lot."""
    try:
        with archive.open(info) as f:
            found = _read_npy_header(where, f, info.file_size)
            if found is None:
                return np.lib.format.read_array(f, allow_pickle=False)
            shape, fortran, dtype, nbytes = found
            buf = bytearray(nbytes)
            if f.readinto(buf) != nbytes:
                raise ModelFormatError(f"{where} is truncated")
    except (NotImplementedError, RuntimeError, zlib.error) as exc:  # zipfile's own errors
        raise ModelFormatError(f"{where}: cannot be read ({exc})") from None
    if nbytes == 0:
        return np.empty(shape, dtype)
    array = np.frombuffer(buf, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def load(graph_path: str | os.PathLike[str], weights_path: str | os.PathLike[str]) -> Graph:
    """Load an IR graph (``.pb``) and its weights (``.npy``) and validate them together."""
    graph_path = Path(graph_path)
    try:
        data = graph_path.read_bytes()
    except FileNotFoundError:
        raise ModelFormatError(f"{graph_path}: no such file") from None
    msg = pb.Graph()
    try:
        msg.ParseFromString(data)
    except DecodeError:
        raise ModelFormatError(
            f"{graph_path}: not an mmconv IR graph (protobuf parse failed)"
        ) from None
    if not msg.nodes and not msg.outputs:
        raise ModelFormatError(f"{graph_path}: not an mmconv IR graph (no nodes, no outputs)")
    try:
        return from_proto(msg, load_weights(weights_path))
    except IRError as exc:
        raise IRError(f"{graph_path}: {exc}") from None
