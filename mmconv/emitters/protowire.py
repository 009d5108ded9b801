"""Writing protobuf messages whose big byte fields stream from numpy buffers.

Serializing a model message copies every weight twice (into the message, then
into the output bytes).  Emitters that write protobuf model files (ONNX's
ModelProto, Caffe's NetParameter) write the small part with
``SerializeToString`` and each weight's bytes straight from its array, framed
by the tag and length helpers here.  Protobuf readers accept fields in any
order and concatenated messages merge, so the result is an ordinary message.
"""

from __future__ import annotations

import numpy as np


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_header(number: int, length: int) -> bytes:
    """Tag and length of a length-delimited protobuf field (wire type 2)."""
    return varint(number << 3 | 2) + varint(length)


def little_endian(array: np.ndarray) -> np.ndarray:
    """C-ordered little-endian data, as protobuf stores raw and packed numbers (no copy
    when it already is; unlike np.ascontiguousarray this keeps 0-d arrays 0-d)."""
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)
