"""Take the big parameter payloads out of a CNTK v2 file before protobuf parses it.

Why: protobuf copies every byte it parses into its own memory, and the values
then have to be copied once more into numpy.  For a 240 MB ResNet-152 those
two copies cost as much time as reading and parsing the file, and peak memory
is three times the file.  Here the file's bytes are walked along the few
message types that can lead to parameter values (``Dictionary`` ->
``DictionaryValue`` -> ``Vector``/``Dictionary``/``NDArrayView`` ->
``FloatValues``/``DoubleValues``) and each large packed record is replaced by
a short reference (``mmconv_payload`` in ``cntk_v2_raw.proto``): a random
per-read tag plus an index into a table of byte ranges.  Protobuf then parses
a file of a few MB, and the reader makes each array a view into the file's
buffer: no copy of the values at all.

The rewrite keeps protobuf's meaning exactly, because only the bytes of a
packed record are swapped for a reference to the same bytes, and every
enclosing length is re-encoded.  Anything unexpected (a malformed varint, a
length past its message, a group, nesting deeper than protobuf allows, more
fields than a real model has, a values message holding anything but packed
records) stops the walk or leaves that message untouched; the reader then
parses the original bytes the ordinary way, so hostile input gets exactly the
checks it had before.
Submessages smaller than :data:`MIN_DESCEND` bytes are copied as they are:
walking them in Python would cost more than protobuf's copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

#: Submessages shorter than this are left to protobuf (not worth a Python walk).
MIN_DESCEND = 4096
#: Deepest nesting walked (protobuf's own default recursion limit is 100).
MAX_DEPTH = 100
#: Most fields looked at before handing the file to protobuf instead: real models need
#: about one per variable entry (ResNet-152: ~10 000); a hostile file made of millions of
#: tiny fields would otherwise keep this Python loop busy for a minute.
MAX_FIELDS = 1 << 20
#: Field number of the reference in FloatValues/DoubleValues (cntk_v2_raw.proto).
PAYLOAD_FIELD = 536870911
_TAG_LEN = 16

# Message kinds and, for each, the length-delimited fields that can lead to values.
_DICT, _ENTRY, _DV, _VECTOR, _ARRAY, _VALUES = range(6)
_Pieces = list[bytes | memoryview]
_CHILDREN: dict[int, dict[int, int]] = {
    _DICT: {2: _ENTRY},                    # Dictionary.data (map entries)
    _ENTRY: {2: _DV},                      # map entry: value
    _DV: {11: _VECTOR, 12: _DICT, 13: _ARRAY},  # DictionaryValue: vector, dictionary, array
    _VECTOR: {1: _DV},                     # Vector.value
    _ARRAY: {4: _VALUES, 5: _VALUES},      # NDArrayView.float_values, double_values
}


class _Bail(Exception):
    """The bytes are not what the walk expects: let protobuf parse the original."""


@dataclass
class Stripped:
    """What :func:`strip` made: the rewritten file and where the removed payloads are."""

    #: The file with payloads replaced by references, for ``ParseFromString``.
    data: bytes
    #: This read's random tag; a reference carrying any other tag came from the file.
    tag: bytes
    #: (offset, length) in the original buffer of each removed payload, by index.
    ranges: list[tuple[int, int]]

    def resolve(self, ref: bytes) -> tuple[int, int] | None:
        """The byte range a reference stands for, or None if it is not one of ours."""
        if len(ref) != _TAG_LEN + 8 or ref[:_TAG_LEN] != self.tag:
            return None
        index = int.from_bytes(ref[_TAG_LEN:], "little")
        return self.ranges[index] if index < len(self.ranges) else None


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Bail
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Walker:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.tag = os.urandom(_TAG_LEN)
        self.ranges: list[tuple[int, int]] = []
        self.budget = MAX_FIELDS

    def message(self, kind: int, start: int, end: int, depth: int) -> _Pieces | None:
        """New content of a message of ``kind`` at ``buf[start:end]``; None if unchanged."""
        if depth > MAX_DEPTH:
            raise _Bail
        if kind == _VALUES:
            return self.values(start, end)
        children = _CHILDREN[kind]
        buf = self.buf
        out: _Pieces | None = None
        done = start  # bytes before this are already in ``out``
        pos = start
        while pos < end:
            self.budget -= 1
            if self.budget < 0:
                raise _Bail
            field_start = pos
            key, pos = _varint(buf, pos, end)
            wire = key & 7
            if wire == 2:
                n, pos = _varint(buf, pos, end)
                body = pos
                pos += n
                if pos > end:
                    raise _Bail
                child = children.get(key >> 3)
                if child is None or n < MIN_DESCEND:
                    continue
                new = self.message(child, body, pos, depth + 1)
                if new is None:
                    continue
                if out is None:
                    out = []
                out.append(buf[done:field_start])
                out.append(_encode_varint(key) + _encode_varint(sum(len(p) for p in new)))
                out.extend(new)
                done = pos
            elif wire == 0:
                _, pos = _varint(buf, pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:  # groups (3, 4) and invalid wire types: protobuf decides
                raise _Bail
            if pos > end:
                raise _Bail
        if out is None:
            return None
        out.append(buf[done:end])
        return out

    def values(self, start: int, end: int) -> _Pieces | None:
        """FloatValues/DoubleValues made only of packed records -> references; else None."""
        buf = self.buf
        records = []
        pos = start
        while pos < end:
            self.budget -= 1
            if self.budget < 0:
                raise _Bail
            key, pos = _varint(buf, pos, end)
            if key != (1 << 3) | 2:
                return None  # anything but packed records: leave it to protobuf
            n, pos = _varint(buf, pos, end)
            if n > end - pos:
                raise _Bail
            records.append((pos, n))
            pos += n
        out: _Pieces = []
        for offset, n in records:
            index = len(self.ranges)
            self.ranges.append((offset, n))
            ref = self.tag + index.to_bytes(8, "little")
            out.append(_PAYLOAD_KEY + _encode_varint(len(ref)) + ref)
        return out


_PAYLOAD_KEY = _encode_varint((PAYLOAD_FIELD << 3) | 2)


def strip(data: bytes | bytearray | np.ndarray) -> Stripped | None:
    """``data`` (a serialized Dictionary) with its large payloads replaced by references.

    None when there is nothing to strip or the bytes are not well-formed
    enough to walk; parse ``data`` itself then.
    """
    buf = memoryview(data).cast("B")
    walker = _Walker(buf)
    try:
        pieces = walker.message(_DICT, 0, len(buf), 0)
    except _Bail:
        return None
    if pieces is None:
        return None
    return Stripped(data=b"".join(pieces), tag=walker.tag, ranges=walker.ranges)
