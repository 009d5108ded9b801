"""Reading a written ``.mlpackage``'s constants without coremltools' loader.

The model spec (protobuf, parsed by coremltools' own schema) names each
constant's bytes: small ones inline (``immediateValue``), larger ones as an
offset into ``weights/weight.bin``.  That file is read here with ``struct`` and
numpy from its documented layout (a 64-byte header, then per blob a 64-byte
metadata record: sentinel 0xDEADBEEF, data type, size in bytes, data offset),
so the weight check in the tests does not rest on the code it checks
(:mod:`mmconv.emitters.coreml.check` reads them through coremltools).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

#: MIL blob data type codes the tests meet (coremltools' BlobDataType)
_BLOB_DTYPES = {1: np.float16, 2: np.float32}
_SENTINEL = 0xDEADBEEF


def program_consts(package: Path, spec: Any) -> dict[str, np.ndarray]:
    """Const op name -> its value (float tensors only), read from the spec and weight.bin."""
    blob_path = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blob = blob_path.read_bytes() if blob_path.exists() else b""
    fn = spec.mlProgram.functions["main"]
    out: dict[str, np.ndarray] = {}
    for op in fn.block_specializations[fn.opset].operations:
        if op.type != "const":
            continue
        value = op.attributes["val"]
        dims = [int(d.constant.size) for d in value.type.tensorType.dimensions]
        kind = value.WhichOneof("value")
        if kind == "blobFileValue":
            sentinel, code, size, offset = struct.unpack_from("<IIQQ", blob,
                                                              value.blobFileValue.offset)
            assert sentinel == _SENTINEL, f"{op.outputs[0].name}: bad blob metadata"
            dtype = _BLOB_DTYPES.get(code)
            if dtype is None:
                continue
            array = np.frombuffer(blob, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                  offset=offset)
        elif kind == "immediateValue" and value.immediateValue.tensor.HasField("floats"):
            array = np.asarray(value.immediateValue.tensor.floats.values, dtype=np.float32)
        else:
            continue
        out[op.outputs[0].name] = array.reshape(dims)
    return out
