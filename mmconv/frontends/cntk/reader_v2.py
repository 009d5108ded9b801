"""Reader for CNTK's v2 model format (one protobuf ``Dictionary``) -> :class:`model.Model`.

What a v2 file holds (observed in files written by CNTK 2.7, see
``shared/notes/cntk-format.md``): a top-level ``CompositeFunction`` dictionary
with ``inputs`` (every variable: inputs, parameters, constants, placeholders),
``primitive_functions`` (every function, *including* the functions inside
blocks, flattened into the one list) and ``root`` (uid of the root function).
A function output is referenced as ``<function uid>_Output_<i>``.

Blocks (layers such as ``conv1``) are inlined here, as the contract in
:mod:`mmconv.frontends.cntk.model` requires: the block's placeholders are
bound to the outer values listed in ``block_function_composite_arguments_map_*``,
the block's outputs become its inner root's outputs, and every inner function
records the stack of blocks it came from.

The file is treated as hostile: every count and size read from it is checked
against what the file can hold before anything is allocated, and every problem
becomes a :class:`ModelFormatError` naming the file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError

from mmconv.errors import ModelFormatError, UnsupportedError
from mmconv.frontends.cntk import cntk_v2_pb2 as exact_pb
from mmconv.frontends.cntk import cntk_v2_raw_pb2 as pb
from mmconv.frontends.cntk import v2_payloads
from mmconv.frontends.cntk.model import (
    DELAY_OPS,
    VARIABLE_KINDS,
    Axis,
    BlockInfo,
    Function,
    Model,
    Variable,
)
from mmconv.fsutil import map_file

#: PrimitiveOpType numbers -> names (CNTK's Source/CNTKv2LibraryDll/PrimitiveOpType.h).
OP_NAMES: tuple[str, ...] = (
    "Negate", "Sigmoid", "Tanh", "ReLU", "Exp", "Log", "Sqrt", "Floor", "Abs", "Reciprocal",
    "Softmax", "Hardmax", "TransposeAxes", "Where", "Slice", "Dropout", "Reshape", "Pooling",
    "SumAll", "Plus", "Minus", "ElementTimes", "Equal", "NotEqual", "Less", "LessEqual",
    "Greater", "GreaterEqual", "PackedIndex", "GatherPacked", "ScatterPacked", "Times",
    "TransposeTimes", "Convolution", "SquaredError", "CrossEntropyWithSoftmax",
    "ClassificationError", "PastValue", "FutureValue", "ReduceElements", "BatchNormalization",
    "Clip", "Select", "Splice", "Combine", "RandomSample", "RandomSampleInclusionFrequency",
    "ROIPooling", "Logistic", "OptimizedRNNStack", "ReconcileDynamicAxis", "LogSoftmax",
    "LogPlus", "CosDistance", "Sin", "Cos", "Pass", "Block", "Unpooling", "LambdaRank", "NDCG",
    "EditDistanceError", "NoOp", "LabelsToGraph", "StopGradient", "ELU", "ForwardBackward",
    "CosDistanceWithNegativeSamples", "OneHot", "Pow", "ToSequence", "ToSequenceLike",
    "UnpackSequence", "Assign", "Gather", "StableSigmoid", "RandomDistribution", "Sinh", "Cosh",
    "UnpackBatch", "ToBatch", "Asin", "Acos", "Pad", "Crop", "Atanh", "Asinh", "TopK",
    "Squeeze", "ConstantOp", "LatticeSequenceWithSoftmax", "Cast", "EyeLikeOp",
    "CustomProxyOp", "StraightThrough",
)

#: NDArrayView / variable ``data_type`` numbers -> numpy dtype names.
DTYPES = {1: "float32", 2: "float64", 4: "float16", 5: "int8", 6: "int16"}

#: CNTK's special dimension values (size_t): NDShape::InferredDimension and FreeDimension.
INFERRED_DIM = 2**64 - 1
FREE_DIM = 2**64 - 3
#: Largest real dimension we accept; anything bigger in a model is corruption.
MAX_DIM = 2**31
MAX_RANK = 64

_OUTPUT_REF = re.compile(r"^(.+)_Output_(\d+)$")
_STATIC_AXIS = re.compile(r"^staticAxisIdx=(-?\d+)$")


class _Ctx:
    """The file being read, so every error names it, and where stripped payloads live."""

    def __init__(self, path: str, buffer: bytes | bytearray | np.ndarray,
                 stripped: v2_payloads.Stripped | None) -> None:
        self.path = path
        self.size = len(buffer)
        #: The file's bytes; arrays of stripped payloads are views into them.
        self.buffer = buffer
        self.stripped = stripped

    def fail(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: not a valid CNTK v2 model: {what}")


# -- decoding DictionaryValues ------------------------------------------------
def _shape_dims(ctx: _Ctx, shape: pb.NDShape, what: str, allow_special: bool) -> tuple[int, ...]:
    """Dims as stored (reversed); special dims become -1 (inferred) or -3 (free)."""
    dims = list(shape.shape_dim)
    if len(dims) > MAX_RANK:
        raise ctx.fail(f"{what}: rank {len(dims)} is too large")
    out = []
    for d in dims:
        if d == INFERRED_DIM and allow_special:
            out.append(-1)
        elif d == FREE_DIM and allow_special:
            out.append(-3)
        elif d > MAX_DIM:
            raise ctx.fail(f"{what}: dimension {d} is out of range")
        else:
            out.append(int(d))
    return tuple(out)


def _axis(ctx: _Ctx, msg: pb.Axis) -> Axis:
    """An Axis attribute; the static index is taken from the name when the field is unset."""
    index = msg.static_axis_idx
    m = _STATIC_AXIS.match(msg.name)
    if m:
        index = int(m.group(1))
        if abs(index) > MAX_RANK:
            raise ctx.fail(f"axis index {index} out of range")
    return Axis(static_index=index, name=msg.name, is_ordered_dynamic=msg.is_ordered_dynamic_axis)


def _array(ctx: _Ctx, msg: pb.NDArrayView, what: str) -> np.ndarray:
    """An NDArrayView as a C-ordered numpy array in Python order.

    The stored data is column-major for the stored (reversed) shape, which is
    the same bytes as row-major for the Python-order shape: no copy or
    transpose is needed, only the reversed shape.

    Float and double values never become Python floats (a list of 60 million
    made a 240 MB ResNet-152 take 3x as long as parsing it): large payloads
    are views into the file's buffer (see :mod:`v2_payloads`), the others
    arrive as raw bytes (``cntk_v2_raw.proto``) read with ``np.frombuffer``.
    """
    if msg.storage_format != pb.NDArrayView.Dense:
        raise UnsupportedError(f"{ctx.path}: {what}: sparse parameter values are not supported")
    dtype = DTYPES.get(msg.data_type)
    if dtype is None:
        raise ctx.fail(f"{what}: unknown data type {msg.data_type}")
    stored = _shape_dims(ctx, msg.shape, what, allow_special=False)
    count = math.prod(stored)
    shape = stored[::-1]
    kind = msg.WhichOneof("values")
    if kind is None:
        _check_count(ctx, 0, count, shape, what)
        return np.zeros(shape, dtype=dtype)
    if kind == "float_values":
        arr = _packed(ctx, msg.float_values, exact_pb.NDArrayView.FloatValues, "<f4", shape,
                      what)
    elif kind == "double_values":
        arr = _packed(ctx, msg.double_values, exact_pb.NDArrayView.DoubleValues, "<f8", shape,
                      what)
    elif kind == "bytes_value":
        data = msg.bytes_value.value
        itemsize = np.dtype(dtype).itemsize
        if len(data) % itemsize:
            raise ctx.fail(f"{what}: {len(data)} bytes is not a whole number of {dtype}")
        _check_count(ctx, len(data) // itemsize, count, shape, what)
        # copied: writable like every other value (the bytes object is freed at once)
        arr = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).copy()
    else:
        ints = msg.sint32_values.value
        _check_count(ctx, len(ints), count, shape, what)
        arr = np.asarray(ints, dtype=np.int32)
    # float16 models store float values (CNTK 2.7 converts on save); keep the model dtype.
    # astype also turns a big-endian view of bytes_value into native order.
    if arr.dtype != np.dtype(dtype):
        arr = arr.astype(dtype)
    return arr.reshape(shape)


def _check_count(ctx: _Ctx, n: int, count: int, shape: tuple[int, ...], what: str) -> None:
    """The values must be exactly what the shape says (checked before any array is made)."""
    if n != count:
        raise ctx.fail(f"{what}: holds {n} values, its shape {list(shape)} needs {count}")


def _packed(ctx: _Ctx, msg: Any, exact_type: Any, fmt: str, shape: tuple[int, ...],
            what: str) -> np.ndarray:
    """The values of a FloatValues/DoubleValues message as a 1-D array.

    ``msg.value`` holds the packed records' bytes (one record in every file CNTK
    writes; protobuf concatenates several); ``msg.mmconv_payload`` holds our
    references to records left in the file's buffer.  A record in another
    encoding (unpacked fixed32/fixed64, which proto3 readers accept but CNTK
    never writes) or any other field lands in the unknown fields; then the
    message is re-read with the exact schema, so the result never differs from
    what protobuf itself would decode.  Mixes whose order the raw schema cannot
    keep (packed and unpacked, or referenced and inline records) are refused.
    """
    itemsize = np.dtype(fmt).itemsize
    count = math.prod(shape)
    chunks = msg.value
    refs = msg.mmconv_payload
    if refs:
        ranges = [ctx.stripped.resolve(r) if ctx.stripped else None for r in refs]
        if all(r is not None for r in ranges):
            if chunks or len(unknown_fields.UnknownFieldSet(msg)):
                raise ctx.fail(f"{what}: values are stored in several encodings at once")
            return _from_ranges(ctx, ranges, fmt, shape, what)  # type: ignore[arg-type]
        if any(r is not None for r in ranges):
            raise ctx.fail(f"{what}: values are stored in several encodings at once")
        # The file itself holds our field number: to CNTK's schema it is an unknown field.
    if refs or len(unknown_fields.UnknownFieldSet(msg)):
        exact = exact_type()
        try:
            exact.ParseFromString(msg.SerializeToString())
        except DecodeError as exc:
            raise ctx.fail(f"{what}: bad value encoding ({exc})") from None
        packed_n = sum(len(c) for c in chunks) // itemsize
        if chunks and len(exact.value) != packed_n:
            raise ctx.fail(f"{what}: values mix the packed and unpacked encodings")
        _check_count(ctx, len(exact.value), count, shape, what)
        return np.asarray(exact.value, dtype=fmt)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) % itemsize:
        raise ctx.fail(f"{what}: packed values of {len(data)} bytes are not whole "
                       f"{np.dtype(fmt).name} numbers")
    _check_count(ctx, len(data) // itemsize, count, shape, what)
    # Copied so the array is writable, as values that stay in the file's buffer are; this
    # path holds only payloads too small to strip unless the walk gave up on the file.
    return np.frombuffer(data, dtype=fmt).copy()


def _from_ranges(ctx: _Ctx, ranges: list[tuple[int, int]], fmt: str, shape: tuple[int, ...],
                 what: str) -> np.ndarray:
    """Values left in the file's buffer: a view of it (one record) or their concatenation."""
    itemsize = np.dtype(fmt).itemsize
    total = sum(n for _, n in ranges)
    if total % itemsize:
        raise ctx.fail(f"{what}: packed values of {total} bytes are not whole "
                       f"{np.dtype(fmt).name} numbers")
    _check_count(ctx, total // itemsize, math.prod(shape), shape, what)
    parts = [np.frombuffer(ctx.buffer, dtype=fmt, count=n // itemsize, offset=off)
             for off, n in ranges]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _value(ctx: _Ctx, v: pb.DictionaryValue, what: str) -> Any:
    """A DictionaryValue as a Python value (shapes kept in storage order)."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("bool_value", "int_value", "size_t_value", "float_value", "double_value",
                "string_value"):
        return getattr(v, kind)
    if kind == "nd_shape_value":
        return _shape_dims(ctx, v.nd_shape_value, what, allow_special=True)
    if kind == "axis_value":
        return _axis(ctx, v.axis_value)
    if kind == "vector_value":
        return [_value(ctx, x, what) for x in v.vector_value.value]
    if kind == "dictionary_value":
        return _dict(ctx, v.dictionary_value, what)
    if kind == "nd_array_view_value":
        return _array(ctx, v.nd_array_view_value, what)
    raise ctx.fail(f"{what}: unknown value kind {kind}")


def _dict(ctx: _Ctx, d: pb.Dictionary, what: str) -> dict[str, Any]:
    return {k: _value(ctx, d.data[k], f"{what}.{k}") for k in d.data}


def _get(ctx: _Ctx, d: pb.Dictionary, key: str, kind: str, what: str) -> Any:
    """A required entry of a dictionary, checked to be of the expected value kind."""
    if key not in d.data:
        raise ctx.fail(f"{what}: missing {key!r}")
    v = d.data[key]
    if v.WhichOneof("value") != kind:
        raise ctx.fail(f"{what}: {key!r} is not a {kind.replace('_value', '')}")
    return getattr(v, kind)


def _opt_str(d: pb.Dictionary, key: str) -> str:
    v = d.data.get(key)
    return v.string_value if v is not None and v.WhichOneof("value") == "string_value" else ""


def _strings(ctx: _Ctx, d: pb.Dictionary, key: str, what: str) -> list[str]:
    vec = _get(ctx, d, key, "vector_value", what)
    out = []
    for x in vec.value:
        if x.WhichOneof("value") != "string_value":
            raise ctx.fail(f"{what}: {key!r} holds a non-string")
        out.append(x.string_value)
    return out


# -- variables and functions -------------------------------------------------------
def _variable(ctx: _Ctx, d: pb.Dictionary) -> Variable:
    uid = _get(ctx, d, "uid", "string_value", "variable")
    what = f"variable {uid!r}"
    kind_no = _get(ctx, d, "kind", "size_t_value", what)
    kind = VARIABLE_KINDS.get(kind_no)
    if kind is None:
        raise ctx.fail(f"{what}: unknown kind {kind_no}")
    dt = _get(ctx, d, "data_type", "size_t_value", what)
    dtype = DTYPES.get(dt)
    if dtype is None:
        raise ctx.fail(f"{what}: unknown data type {dt}")
    stored = _shape_dims(ctx, _get(ctx, d, "shape", "nd_shape_value", what), what, True)
    axes: list[str] = []
    if "dynamic_axis" in d.data:
        for a in _get(ctx, d, "dynamic_axis", "vector_value", what).value:
            if a.WhichOneof("value") != "axis_value":
                raise ctx.fail(f"{what}: dynamic_axis holds a non-axis")
            axes.append(a.axis_value.name)
    value = None
    if kind in ("parameter", "constant"):
        value = _array(ctx, _get(ctx, d, "value", "nd_array_view_value", what), what)
        if value.shape != stored[::-1]:
            raise ctx.fail(f"{what}: value shape {value.shape} differs from {stored[::-1]}")
        if value.dtype.name != dtype:
            value = value.astype(dtype)
    return Variable(uid=uid, name=_opt_str(d, "name"), kind=kind, dtype=dtype,
                    shape=stored[::-1], dynamic_axes=tuple(axes), value=value)


class _RawFunction:
    """A function dictionary before block inlining."""

    def __init__(self, ctx: _Ctx, d: pb.Dictionary) -> None:
        self.uid: str = _get(ctx, d, "uid", "string_value", "function")
        what = f"function {self.uid!r}"
        op_no = _get(ctx, d, "op", "size_t_value", what)
        if op_no >= len(OP_NAMES):
            raise ctx.fail(f"{what}: unknown op number {op_no}")
        self.op = OP_NAMES[op_no]
        self.name = _opt_str(d, "name")
        self.inputs = _strings(ctx, d, "inputs", what)
        self.attrs: dict[str, Any] = {}
        if "attributes" in d.data:
            self.attrs = _dict(ctx, _get(ctx, d, "attributes", "dictionary_value", what), what)
        self.block_root = ""
        self.block_op_name = ""
        self.block_keys: list[str] = []
        self.block_values: list[str] = []
        if self.op == "Block":
            comp = _get(ctx, d, "block_function_composite", "dictionary_value", what)
            self.block_root = _get(ctx, comp, "root", "string_value", what)
            self.block_op_name = _opt_str(d, "block_function_op_name")
            self.block_keys = _strings(ctx, d, "block_function_composite_arguments_map_keys", what)
            self.block_values = _strings(
                ctx, d, "block_function_composite_arguments_map_values", what)
            if len(self.block_keys) != len(self.block_values):
                raise ctx.fail(f"{what}: block argument map keys and values differ in number")


def _parse(ctx: _Ctx, data: bytes | bytearray | np.ndarray) -> pb.Dictionary:
    msg = pb.Dictionary()
    try:
        # protobuf takes bytes, bytearray or a memoryview, not a numpy array.
        msg.ParseFromString(data if isinstance(data, bytes | bytearray) else memoryview(data))
    except (DecodeError, RecursionError, ValueError) as exc:
        raise ctx.fail(f"protobuf decoding failed ({exc})") from None
    return msg


def read_v2(path: str | os.PathLike[str], data: bytes | bytearray | np.ndarray | None = None,
            *, strip: bool = True) -> Model:
    """Read a CNTK v2 model file into a :class:`Model` (blocks inlined).

    The file is mapped privately (copy-on-write) rather than read: large parameter
    values are writable views of the mapping, so the 240 MB of a big model are
    neither copied into a buffer nor held twice.  With
    ``strip=False`` every payload goes through protobuf (tests compare both
    paths).
    """
    path = os.fspath(path)
    if data is None:
        try:
            data = np.frombuffer(map_file(path), dtype=np.uint8)
        except OSError as exc:
            raise ModelFormatError(f"{path}: cannot read the model file ({exc.strerror})") from None
    stripped = v2_payloads.strip(data) if strip else None
    ctx = _Ctx(path, data, stripped)
    try:
        top = _parse(ctx, stripped.data if stripped else data)
        if stripped:
            stripped.data = b""  # parsed: only the ranges are needed now
        return _build(ctx, top)
    except RecursionError:
        raise ctx.fail("structure nested too deeply") from None


def _build(ctx: _Ctx, top: pb.Dictionary) -> Model:
    type_ = _opt_str(top, "type")
    if type_ != "CompositeFunction":
        raise ctx.fail(f"top-level type is {type_ or 'missing'!r}, expected 'CompositeFunction'")
    root_uid = _get(ctx, top, "root", "string_value", "model")
    variables: dict[str, Variable] = {}
    for item in _get(ctx, top, "inputs", "vector_value", "model").value:
        if item.WhichOneof("value") != "dictionary_value":
            raise ctx.fail("an entry of 'inputs' is not a dictionary")
        var = _variable(ctx, item.dictionary_value)
        variables[var.uid] = var
    raw: dict[str, _RawFunction] = {}
    order: list[str] = []
    for item in _get(ctx, top, "primitive_functions", "vector_value", "model").value:
        if item.WhichOneof("value") != "dictionary_value":
            raise ctx.fail("an entry of 'primitive_functions' is not a dictionary")
        fn = _RawFunction(ctx, item.dictionary_value)
        if fn.uid in raw:
            raise ctx.fail(f"function uid {fn.uid!r} appears twice")
        raw[fn.uid] = fn
        order.append(fn.uid)
    if root_uid not in raw:
        raise ctx.fail(f"root function {root_uid!r} is not among the functions")
    return _inline(ctx, variables, raw, order, root_uid, _opt_str(top, "name"))


# -- block inlining ----------------------------------------------------------------
def _output_ref(ref: str, raw: dict[str, _RawFunction]) -> tuple[str, int] | None:
    m = _OUTPUT_REF.match(ref)
    if m and m.group(1) in raw:
        index = int(m.group(2))
        return (m.group(1), index) if index < 1024 else None
    return None


def _inline(ctx: _Ctx, variables: dict[str, Variable], raw: dict[str, _RawFunction],
            order: list[str], root_uid: str, name: str) -> Model:
    """Flatten blocks: bind placeholders, alias block outputs, record the block stack."""
    # How many outputs each function has: the highest _Output_<i> anyone references.
    n_out: dict[str, int] = dict.fromkeys(raw, 1)
    refs: list[str] = [r for fn in raw.values() for r in (*fn.inputs, *fn.block_values)]
    refs += [fn.block_root + "_Output_0" for fn in raw.values() if fn.op == "Block"]
    for ref in refs:
        hit = _output_ref(ref, raw)
        if hit:
            n_out[hit[0]] = max(n_out[hit[0]], hit[1] + 1)

    # Rewrites: placeholder -> bound value, block output -> inner root output.
    alias: dict[str, str] = {}
    for fn in raw.values():
        if fn.op != "Block":
            continue
        if fn.block_root not in raw:
            raise ctx.fail(f"block {fn.uid!r}: its root {fn.block_root!r} is not a function")
        for key, value in zip(fn.block_keys, fn.block_values, strict=True):
            if key in alias and alias[key] != value:
                raise UnsupportedError(
                    f"{ctx.path}: placeholder {key!r} is bound by two blocks (shared block "
                    "composites are not supported yet)")
            alias[key] = value
        n_out[fn.uid] = max(n_out[fn.uid], n_out[fn.block_root])
        root = raw[fn.block_root]
        for i in range(n_out[fn.uid]):
            if root.op == "Combine":
                # A block of several outputs (an LSTM cell's h and c) has a Combine as its
                # root: its outputs are the Combine's inputs.
                if i >= len(root.inputs):
                    raise ctx.fail(f"block {fn.uid!r}: output {i} of a {len(root.inputs)}-"
                                   "input Combine")
                alias[f"{fn.uid}_Output_{i}"] = root.inputs[i]
            else:
                alias[f"{fn.uid}_Output_{i}"] = f"{fn.block_root}_Output_{i}"

    def resolve(ref: str) -> str:
        seen = 0
        while ref in alias:
            ref = alias[ref]
            seen += 1
            if seen > len(alias):
                raise ctx.fail(f"reference cycle through {ref!r}")
        return ref

    # Block membership: walk each block's composite from its root back to its placeholders.
    stacks: dict[str, tuple[BlockInfo, ...]] = dict.fromkeys(raw, ())
    def block_info(fn: _RawFunction) -> BlockInfo:
        outs = tuple(resolve(f"{fn.uid}_Output_{i}") for i in range(n_out[fn.uid]))
        return BlockInfo(uid=fn.uid, name=fn.name, op_name=fn.block_op_name,
                         inputs=tuple(resolve(v) for v in fn.block_values), outputs=outs,
                         attrs=fn.attrs)

    _assign_blocks(ctx, raw, stacks, root_uid, (), block_info)

    functions: list[Function] = []
    for uid in order:
        fn = raw[uid]
        if fn.op == "Block":
            continue
        outs = [f"{uid}_Output_{i}" for i in range(n_out[uid])]
        functions.append(Function(uid=uid, name=fn.name, op=fn.op,
                                  inputs=[resolve(r) for r in fn.inputs], outputs=outs,
                                  attrs=fn.attrs, blocks=stacks[uid]))
    by_uid = {f.uid: f for f in functions}
    produced = {out for f in functions for out in f.outputs}
    for f in functions:
        for r in f.inputs:
            if r not in variables and r not in produced:
                raise ctx.fail(f"function {f.uid!r}: input {r!r} is not defined")
    functions = _toposort(ctx, functions)
    for f in functions:
        # Output dtype: v2 files do not store output variables; take the first input's.
        dtype = next((variables[r].dtype for r in f.inputs if r in variables), "float32")
        for i, out in enumerate(f.outputs):
            # Output shapes are not stored in v2 files either: () means "not known here";
            # the converters infer IR shapes instead.
            variables[out] = Variable(uid=out, name=f.name if i == 0 else "", kind="output",
                                      dtype=dtype, shape=(), owner=f.uid)

    root = resolve(f"{root_uid}_Output_0").rsplit("_Output_", 1)[0]
    root_fn = by_uid.get(root)
    if root_fn is None:
        raise ctx.fail(f"root {root_uid!r} resolves to no primitive function")
    outputs = list(root_fn.inputs) if root_fn.op == "Combine" else list(root_fn.outputs)
    # Outputs of a root Block are named after the block (CNTK shows the block's name).
    root_raw = raw[root_uid]
    if root_raw.op == "Block" and root_raw.name:
        for out in root_fn.outputs[:1]:
            if not variables[out].name:
                variables[out].name = root_raw.name
    used = {r for f in functions for r in f.inputs}
    unbound = [v for v in variables.values() if v.kind == "placeholder" and v.uid in used]
    if unbound:
        raise UnsupportedError(
            f"{ctx.path}: the model has unbound placeholders "
            f"({', '.join(v.display_name for v in unbound)}); bind them in CNTK before saving")
    return Model(path=ctx.path, format="v2", variables=variables, functions=functions,
                 outputs=outputs, name=name)


def _assign_blocks(ctx: _Ctx, raw: dict[str, _RawFunction],
                   stacks: dict[str, tuple[BlockInfo, ...]], start: str,
                   stack: tuple[BlockInfo, ...],
                   block_info: Callable[[_RawFunction], BlockInfo]) -> None:
    """Give every function reachable from ``start`` (inside one composite) its block stack.

    Iterative, so a deep network cannot exhaust Python's recursion limit.
    """
    work: list[tuple[str, tuple[BlockInfo, ...], frozenset[str]]] = [(start, stack, frozenset())]
    visited: set[tuple[str, int]] = set()
    while work:
        uid, st, boundary = work.pop()
        if (uid, len(st)) in visited:
            continue
        visited.add((uid, len(st)))
        if len(st) > 256:
            raise ctx.fail("blocks nested too deeply")
        fn = raw[uid]
        if len(st) > len(stacks[uid]):
            stacks[uid] = st
        if fn.op == "Block":
            info = block_info(fn)
            work.append((fn.block_root, (*st, info), frozenset(fn.block_keys)))
            inner_inputs: Iterable[str] = fn.block_values
        else:
            inner_inputs = fn.inputs
        for ref in inner_inputs:
            if ref in boundary:
                continue
            hit = _output_ref(ref, raw)
            if hit:
                work.append((hit[0], st, boundary))


def _toposort(ctx: _Ctx, functions: list[Function]) -> list[Function]:
    """Functions ordered so each comes after the producers of its inputs.

    Recurrence loops (cycles through a PastValue/FutureValue's delayed input) are
    kept: :mod:`mmconv.frontends.cntk.recurrence` recognises them.  Any other
    cycle is a corrupt file."""
    producer = {out: f for f in functions for out in f.outputs}
    done: set[str] = set()
    active: set[str] = set()
    order: list[Function] = []
    for first in functions:
        stack = [(first, 0)]
        while stack:
            f, i = stack.pop()
            if f.uid in done:
                continue
            if i == 0:
                if f.uid in active:
                    raise ctx.fail(f"the function graph has a cycle through {f.uid!r}")
                active.add(f.uid)
            if i < len(f.inputs):
                stack.append((f, i + 1))
                # The delayed input of PastValue/FutureValue closes a recurrence loop: it
                # is the previous (next) step's value, no dependency within a step.
                delayed = f.op in DELAY_OPS and i == 0
                dep = None if delayed else producer.get(f.inputs[i])
                if dep is not None and dep.uid not in done:
                    if dep.uid in active:
                        raise ctx.fail(f"the function graph has a cycle through {dep.uid!r} "
                                       "that no PastValue/FutureValue breaks")
                    stack.append((dep, 0))
                continue
            active.discard(f.uid)
            done.add(f.uid)
            order.append(f)
    return order
