"""Reading and validating an ONNX file before anything is converted.

The order is the seed article's: ``onnx.checker`` (full check, which also runs
strict shape inference), then shape inference on the loaded graph, then the
builder lists every unsupported op at once.  Tensor data is read without
copying it twice: inline ``raw_data`` becomes a numpy view of the protobuf's
bytes, external data (``model.onnx`` + ``model.onnx.data``, what
``torch.onnx.export(dynamo=True)`` writes) becomes a view of a read-only
memory map of the data file, after its location, offset and length have been
checked against the file.  The checker is given the *path*, so models whose
data exceeds protobuf's 2 GiB limit are checked without loading it.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, RuntimeUnavailableError, UnsupportedError

#: Protobuf cannot parse one message of 2 GiB or more; bigger models keep their
#: tensors in external data files.
PROTOBUF_LIMIT = 2**31 - 1
#: Tensors up to this many bytes are kept inline for shape inference (shape constants);
#: bigger ones are only their dims there.
_SMALL = 4096
#: The external-data location of a tensor whose bytes the reader already holds.
_ABSENT = "__mmconv_in_memory__"
#: The oldest opset read: from 7 ONNX broadcasts like numpy (the IR's rule).
MIN_OPSET = 7

#: TensorProto.DataType -> little-endian numpy dtype (the IR's dtypes).
_DTYPES: dict[int, str] = {1: "<f4", 2: "u1", 3: "i1", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?",
                           10: "<f2", 11: "<f8", 4: "<u2", 12: "<u4", 13: "<u8"}
#: TensorProto field holding each type's values when raw_data is not used.
_TYPED_FIELDS = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data",
                 5: "int32_data", 6: "int32_data", 7: "int64_data", 9: "int32_data",
                 10: "int32_data", 11: "double_data", 12: "uint64_data", 13: "uint64_data"}
#: IR dtype of each ONNX element type the IR can hold (uint16/32/64 have no IR dtype).
IR_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
             9: "bool", 10: "float16", 11: "float64"}


def import_onnx() -> Any:
    """The ``onnx`` package (a dependency of mmconv, but a broken install is a user error)."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is a hard dependency
        raise RuntimeUnavailableError(
            f"the onnx package cannot be imported ({exc}); reinstall it: pip install onnx"
        ) from None
    return onnx


def first_line(exc: BaseException) -> str:
    """onnx's messages run over several lines (with C++ context); the first says what."""
    text = " ".join(str(exc).split("\n")[0].split())
    return text or type(exc).__name__


@dataclass
class OnnxModel:
    """A validated ONNX model: the proto (tensor data not copied) and its arrays."""

    path: str
    proto: Any
    opset: int
    #: initializer / Constant-tensor name -> array (views of the file where possible)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: value name -> (elem_type, dims with None for unknown) from shape inference
    value_info: dict[str, tuple[int, tuple[int | str | None, ...]]] = field(default_factory=dict)
    _maps: list[mmap.mmap] = field(default_factory=list, repr=False)

    @property
    def graph(self) -> Any:
        return self.proto.graph


def _check(path: str) -> None:
    onnx = import_onnx()
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as exc:  # onnx raises ValidationError, InferenceError, DecodeError...
        raise ModelFormatError(
            f"{path}: not a valid ONNX model, onnx.checker says: {first_line(exc)}") from None


def _load(path: str) -> Any:
    onnx = import_onnx()
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise ModelFormatError(f"{path}: cannot parse the ONNX file ({first_line(exc)})") from None


def _opset(path: str, proto: Any) -> int:
    onnx = import_onnx()
    versions = {o.domain: o.version for o in proto.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    newest = onnx.defs.onnx_opset_version()
    if version is None:
        raise ModelFormatError(f"{path}: the model imports no version of the default ONNX "
                               "domain (opset_import)")
    if not MIN_OPSET <= version <= newest:
        raise UnsupportedError(
            f"{path}: opset {version} is not supported (mmconv reads opsets {MIN_OPSET} to "
            f"{newest}, the newest the installed onnx knows); convert it with "
            "onnx.version_converter.convert_version first")
    return version


def _expected_size(path: str, tensor: Any) -> tuple[np.dtype, int]:
    if tensor.data_type not in _DTYPES:
        raise UnsupportedError(
            f"{path}: tensor {tensor.name!r} has element type {tensor.data_type}, which mmconv "
            "cannot read (strings, bfloat16, float8, complex and 4-bit types are not supported)")
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ModelFormatError(f"{path}: tensor {tensor.name!r} has a negative dimension {dims}")
    count = 1
    for d in dims:
        count *= d
    return np.dtype(_DTYPES[tensor.data_type]), count


class _DataFiles:
    """Read-only maps of external data files, each opened once, confined to the model's folder."""

    def __init__(self, model_path: str) -> None:
        self.model_path = model_path
        self.base = Path(model_path).resolve().parent
        self.maps: dict[Path, mmap.mmap | bytes] = {}

    def get(self, location: str, tensor_name: str) -> mmap.mmap | bytes:
        rel = Path(location)
        if not location or rel.is_absolute() or ".." in rel.parts:
            raise ModelFormatError(
                f"{self.model_path}: tensor {tensor_name!r} points at external data "
                f"{location!r} outside the model's folder; refusing to read it")
        path = (self.base / rel).resolve()
        if self.base not in path.parents:
            raise ModelFormatError(
                f"{self.model_path}: tensor {tensor_name!r}: external data {location!r} "
                "resolves outside the model's folder; refusing to read it")
        if path not in self.maps:
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    self.maps[path] = (mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                                       if size else b"")
            except OSError as exc:
                raise ModelFormatError(
                    f"{self.model_path}: tensor {tensor_name!r}: cannot read its external data "
                    f"file {location!r} ({exc.strerror}); keep it beside the .onnx file"
                ) from None
        return self.maps[path]


def tensor_array(path: str, tensor: Any, files: _DataFiles | None = None) -> np.ndarray:
    """A TensorProto's values as a numpy array, viewing the data rather than copying it.

    Every size is checked against the bytes actually present, so a hostile file
    cannot make this allocate more than it holds or read past its end.
    """
    dtype, count = _expected_size(path, tensor)
    dims = tuple(tensor.dims)
    if tensor.data_location == 1:  # EXTERNAL
        info = {e.key: e.value for e in tensor.external_data}
        if files is None:
            files = _DataFiles(path)
        data = files.get(info.get("location", ""), tensor.name)
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else count * dtype.itemsize
        except ValueError:
            raise ModelFormatError(f"{path}: tensor {tensor.name!r}: external data offset/length "
                                   "are not integers") from None
        if length != count * dtype.itemsize or offset < 0 or offset + length > len(data):
            raise ModelFormatError(
                f"{path}: tensor {tensor.name!r} {list(dims)}: external data at offset {offset} "
                f"length {length} does not fit its data file ({len(data)} bytes) or its shape "
                f"({count * dtype.itemsize} bytes)")
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset) if count else \
            np.zeros(0, dtype)
        return flat.reshape(dims)
    if tensor.HasField("raw_data"):
        raw = tensor.raw_data
        if len(raw) != count * dtype.itemsize:
            raise ModelFormatError(
                f"{path}: tensor {tensor.name!r} {list(dims)} holds {len(raw)} bytes, its shape "
                f"needs {count * dtype.itemsize}")
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(dims)
    values = getattr(tensor, _TYPED_FIELDS[tensor.data_type])
    if len(values) != count:
        raise ModelFormatError(
            f"{path}: tensor {tensor.name!r} {list(dims)} holds {len(values)} values, its shape "
            f"needs {count}")
    if tensor.data_type == 10:  # float16 stored as the bits in int32_data
        return np.asarray(values, dtype=np.uint16).view(np.float16).reshape(dims)
    return np.asarray(values, dtype=dtype).reshape(dims)


def _inline_functions(path: str, proto: Any) -> Any:
    if not len(proto.functions):
        return proto
    onnx = import_onnx()
    try:
        return onnx.inliner.inline_local_functions(proto)
    except Exception as exc:
        raise ModelFormatError(f"{path}: cannot inline the model's local functions "
                               f"({first_line(exc)})") from None


def _infer(path: str, proto: Any) -> dict[str, tuple[int, tuple]]:
    """Shapes and types of every value from onnx's shape inference (strict)."""
    onnx = import_onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True,
                                                     data_prop=True)
    except Exception as exc:
        raise ModelFormatError(
            f"{path}: ONNX shape inference fails: {first_line(exc)}") from None
    info: dict[str, tuple[int, tuple]] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            continue
        dims = None
        if t.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") else
                         (d.dim_param or None) for d in t.shape.dim)
        info[vi.name] = (t.elem_type, dims)  # type: ignore[assignment]
    return info


def read_model(path: str | os.PathLike[str]) -> OnnxModel:
    """Validate and load an ONNX file (see the module docstring for the steps)."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read the model file ({exc.strerror})") from None
    if size > PROTOBUF_LIMIT:
        raise ModelFormatError(
            f"{path}: {size} bytes; a .onnx file of 2 GiB or more is not a valid protobuf "
            "(save big models with external data: onnx.save(..., save_as_external_data=True))")
    _check(path)
    proto = _load(path)
    opset = _opset(path, proto)
    proto = _inline_functions(path, proto)
    model = OnnxModel(path, proto, opset)
    files = _DataFiles(path)
    for tensor in proto.graph.initializer:
        array = tensor_array(path, tensor, files)
        if tensor.HasField("raw_data") and array.nbytes > _SMALL:
            # protobuf hands out a copy of raw_data, which the array views; dropping the
            # proto's own bytes keeps the weights in memory once
            tensor.ClearField("raw_data")
            tensor.data_location = 1
            tensor.external_data.add(key="location", value=_ABSENT)
        model.arrays[tensor.name] = array
    for sparse in proto.graph.sparse_initializer:
        raise UnsupportedError(f"{path}: sparse initializer {sparse.values.name!r} is not "
                               "supported; densify it first")
    model._maps = [m for m in files.maps.values() if isinstance(m, mmap.mmap)]
    model.value_info = _infer(path, _without_data(proto))
    return model


def _without_data(proto: Any) -> Any:
    """The model without big tensor bytes, for shape inference: inference needs the dims
    (and the values of small shape tensors), and copying the data would hold the
    weights twice.  Big initializers are marked external with an absent location."""
    onnx = import_onnx()
    light = onnx.ModelProto()
    light.ir_version = proto.ir_version
    light.opset_import.extend(proto.opset_import)
    g, lg = proto.graph, light.graph
    lg.name = g.name
    for part in ("node", "input", "output", "value_info"):
        getattr(lg, part).extend(getattr(g, part))
    for tensor in g.initializer:
        if tensor.data_location == 1 or (tensor.HasField("raw_data")
                                         and len(tensor.raw_data) > _SMALL):
            stub = lg.initializer.add(name=tensor.name, data_type=tensor.data_type,
                                      dims=tensor.dims, data_location=1)
            stub.external_data.add(key="location", value=_ABSENT)
        else:
            lg.initializer.append(tensor)
    return light
