"""The v2 reader's fast paths (payloads as raw bytes; large payloads left in the file's
buffer) give exactly what protobuf's own decoding of CNTK's schema gives, on every fixture
and on encodings CNTK never writes; anything else is a clean ModelFormatError."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mmconv.errors import ModelFormatError
from mmconv.frontends.cntk import cntk_v2_pb2 as exact_pb
from mmconv.frontends.cntk import cntk_v2_raw_pb2 as raw_pb
from mmconv.frontends.cntk import v2_payloads
from mmconv.frontends.cntk.model import Model
from mmconv.frontends.cntk.reader_v2 import read_v2
from tests.frontends.cntk._common import FIXTURES, fixture

V2_FIXTURES = sorted(p.name.removesuffix(".v2.model") for p in FIXTURES.glob("*.v2.model"))


# -- the reference: protobuf's decoding of CNTK's schema, values through Python lists ------
def reference_values(data: bytes) -> dict[str, np.ndarray]:
    """uid -> value of every parameter/constant, decoded the slow, obviously right way."""
    top = exact_pb.Dictionary.FromString(data)
    out = {}
    for item in top.data["inputs"].vector_value.value:
        d = item.dictionary_value.data
        if "value" not in d:
            continue
        view = d["value"].nd_array_view_value
        kind = view.WhichOneof("values")
        values = getattr(view, kind).value
        if kind == "float_values":
            arr = np.asarray(values, dtype=np.float32)
        elif kind == "double_values":
            arr = np.asarray(values, dtype=np.float64)
        else:
            raise AssertionError(f"fixture uses {kind}")
        out[d["uid"].string_value] = arr.reshape(tuple(view.shape.shape_dim)[::-1])
    return out


def assert_values(model: Model, expected: dict[str, np.ndarray], writable: bool = True) -> None:
    got = {uid: v.value for uid, v in model.variables.items() if v.value is not None}
    assert got.keys() == expected.keys()
    if writable:  # on every path, as before (unless the caller handed in immutable bytes)
        assert all(v.flags.writeable for v in got.values())
    dtypes = {uid: v.dtype for uid, v in model.variables.items()}
    for uid, ref in expected.items():
        value = got[uid]
        assert value.dtype.name == dtypes[uid]
        assert value.shape == ref.shape
        # bit for bit (NaNs included), after the model's dtype conversion
        assert value.tobytes() == ref.astype(value.dtype).tobytes(), uid


def structure(model: Model) -> list[tuple[object, ...]]:
    fns = [(f.uid, f.op, f.name, tuple(f.inputs), tuple(f.outputs), repr(f.attrs),
            tuple(b.uid for b in f.blocks)) for f in model.functions]
    variables = [(v.uid, v.name, v.kind, v.dtype, v.shape, v.dynamic_axes)
                 for v in model.variables.values()]
    return [*fns, *variables, tuple(model.outputs)]


@pytest.fixture
def strip_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave every payload, however small, in the file's buffer (fixtures are small)."""
    monkeypatch.setattr(v2_payloads, "MIN_DESCEND", 0)


# -- every fixture, every path -------------------------------------------------------------
@pytest.mark.parametrize("name", V2_FIXTURES)
def test_fast_paths_match_protobuf(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fixture(name)
    expected = reference_values(path.read_bytes())
    plain = read_v2(path, strip=False)
    assert_values(plain, expected)
    default = read_v2(path)
    assert_values(default, expected)
    monkeypatch.setattr(v2_payloads, "MIN_DESCEND", 0)
    stripped = read_v2(path)
    assert_values(stripped, expected)
    assert structure(plain) == structure(default) == structure(stripped)


@pytest.mark.parametrize("name", ["float16", "float64"])
def test_dtypes_survive(name: str, strip_all: None) -> None:
    model = read_v2(fixture(name))
    dtypes = {v.value.dtype.name for v in model.variables.values() if v.value is not None}
    assert dtypes == {name}


def test_stripped_values_are_writable_views_of_one_buffer(strip_all: None) -> None:
    model = read_v2(fixture("convnet"))
    values = [v.value for v in model.variables.values()
              if v.value is not None and v.value.size > 1]
    assert values
    bases = {id(_root(v)) for v in values}
    assert len(bases) == 1  # no copies: all views of the file's buffer
    for v in values:
        assert v.flags.writeable


def _root(a: np.ndarray) -> object:
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def test_big_payloads_are_stripped_by_default() -> None:
    data = fixture("convnet").read_bytes()
    stripped = v2_payloads.strip(data)
    assert stripped is not None and stripped.ranges
    assert all(off > 0 and off + n <= len(data) for off, n in stripped.ranges)
    # what protobuf parses is the file minus the payloads, plus ~30 bytes per reference
    removed = sum(n for _, n in stripped.ranges)
    assert len(stripped.data) <= len(data) - removed + 40 * len(stripped.ranges)


def test_given_bytes_are_read_the_same(tmp_path: Path, strip_all: None) -> None:
    data = fixture("residual").read_bytes()
    expected = reference_values(data)
    assert_values(read_v2(tmp_path / "x.model", data=data), expected, writable=False)
    assert_values(read_v2(tmp_path / "x.model", data=bytearray(data)), expected)


# -- encodings CNTK never writes ------------------------------------------------------------
def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _packed(values: np.ndarray, fmt: str = "<f4") -> bytes:
    payload = np.asarray(values, dtype=fmt).tobytes()
    return _key(1, 2) + _varint(len(payload)) + payload


def _unpacked(values: np.ndarray) -> bytes:
    return b"".join(_key(1, 5) + struct.pack("<f", float(v)) for v in values)


def _biggest_float_param(data: bytes) -> tuple[str, int]:
    top = raw_pb.Dictionary.FromString(data)
    best = ("", 0)
    for item in top.data["inputs"].vector_value.value:
        d = item.dictionary_value.data
        if "value" in d and d["value"].nd_array_view_value.HasField("float_values"):
            n = int(np.prod(d["value"].nd_array_view_value.shape.shape_dim))
            if n > best[1]:
                best = (d["uid"].string_value, n)
    return best


def with_float_values(data: bytes, uid: str, content: bytes) -> bytes:
    """The model with variable ``uid``'s FloatValues message replaced by ``content`` (raw wire
    bytes: anything protobuf can carry, including encodings no schema here produces)."""
    top = raw_pb.Dictionary.FromString(data)
    for item in top.data["inputs"].vector_value.value:
        d = item.dictionary_value.data
        if d["uid"].string_value == uid:
            view = d["value"].nd_array_view_value
            view.float_values.Clear()
            # unknown fields survive a parse/serialize round trip: a way to place raw bytes
            view.float_values.MergeFromString(content)
            return top.SerializeToString()
    raise AssertionError(uid)


@pytest.fixture(params=["strip", "no_strip", "strip_all"])
def reader(request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Model]:
    """read_v2 in each of its modes."""
    if request.param == "strip_all":
        monkeypatch.setattr(v2_payloads, "MIN_DESCEND", 0)
    return lambda p: read_v2(p, strip=request.param != "no_strip")


def _case(tmp_path: Path, content_of: Callable[[np.ndarray], bytes],
          ) -> tuple[Path, str, np.ndarray]:
    data = fixture("convnet").read_bytes()
    uid, n = _biggest_float_param(data)
    values = np.random.default_rng(7).normal(size=n).astype(np.float32)
    path = tmp_path / "case.model"
    path.write_bytes(with_float_values(data, uid, content_of(values)))
    return path, uid, values


def test_unpacked_values_read_as_protobuf_does(tmp_path: Path,
                                                reader: Callable[[Path], Model]) -> None:
    path, uid, values = _case(tmp_path, _unpacked)
    assert reference_values(path.read_bytes())[uid].tobytes() == values.tobytes()
    assert reader(path).variables[uid].value.ravel().tobytes() == values.tobytes()


def test_several_packed_records_concatenate(tmp_path: Path,
                                            reader: Callable[[Path], Model]) -> None:
    path, uid, values = _case(tmp_path, lambda v: _packed(v[:1000]) + _packed(v[1000:]))
    assert reference_values(path.read_bytes())[uid].tobytes() == values.tobytes()
    assert reader(path).variables[uid].value.ravel().tobytes() == values.tobytes()


def test_unknown_fields_beside_values_are_ignored(tmp_path: Path,
                                                  reader: Callable[[Path], Model]) -> None:
    # our reference field number, with bytes that are not one of our references
    forged = _key(v2_payloads.PAYLOAD_FIELD, 2) + _varint(24) + b"\0" * 24
    for extra in (_key(7, 0) + _varint(5), forged):
        path, uid, values = _case(tmp_path, lambda v, e=extra: _packed(v) + e)
        assert reader(path).variables[uid].value.ravel().tobytes() == values.tobytes()


@pytest.mark.parametrize("content_of", [
    pytest.param(lambda v: _packed(v[:10]) + _unpacked(v[10:]), id="packed+unpacked"),
    pytest.param(lambda v: _packed(v[:-1]), id="one-value-short"),
    pytest.param(lambda v: _packed(np.concatenate([v, v[:1]])), id="one-value-long"),
    pytest.param(lambda v: _key(1, 2) + _varint(4 * len(v) - 2) + v.tobytes()[:-2],
                 id="not-whole-floats"),
    pytest.param(lambda v: b"", id="no-values"),
])
def test_bad_values_fail_cleanly(tmp_path: Path, reader: Callable[[Path], Model],
                                 content_of: Callable[[np.ndarray], bytes]) -> None:
    path, _, _ = _case(tmp_path, content_of)
    with pytest.raises(ModelFormatError, match=r"case\.model"):
        reader(path)


def test_a_stolen_reference_is_refused(tmp_path: Path) -> None:
    """A reference made for one read means nothing in another (random tag per read)."""
    data = fixture("convnet").read_bytes()
    stripped = v2_payloads.strip(data)
    assert stripped is not None
    path = tmp_path / "stolen.model"
    path.write_bytes(stripped.data)  # references with the tag of a read long gone
    with pytest.raises(ModelFormatError, match="holds 0 values"):
        read_v2(path)


def test_packed_double_values(tmp_path: Path, strip_all: None) -> None:
    data = fixture("float64").read_bytes()
    expected = reference_values(data)
    top = raw_pb.Dictionary.FromString(data)
    for item in top.data["inputs"].vector_value.value:
        view = item.dictionary_value.data["value"].nd_array_view_value \
            if "value" in item.dictionary_value.data else None
        if view is not None and view.HasField("double_values"):
            (chunk,) = view.double_values.value
            # the same values in two packed records
            view.double_values.ClearField("value")
            view.double_values.value.extend([chunk[:8], chunk[8:]])
    path = tmp_path / "f64.model"
    path.write_bytes(top.SerializeToString())
    assert_values(read_v2(path), expected)


# -- the payload walker on its own ----------------------------------------------------------
@pytest.mark.parametrize("blob", [
    b"\x12\x80",                      # truncated varint length
    b"\x12\x05\x01",                  # length past the end
    b"\x13\x14",                      # a group
    b"\x12" + _varint(5000) + b"\0",  # long message, short file
    b"\x0f",                          # wire type 7
])
def test_walker_bails_on_malformed_bytes(blob: bytes, strip_all: None) -> None:
    assert v2_payloads.strip(blob) is None


def test_walker_depth_is_bounded(strip_all: None) -> None:
    # Dictionary.data -> entry.value -> DictionaryValue.dictionary_value -> ... 200 deep
    body = b""
    for _ in range(200):
        dv = _key(12, 2) + _varint(len(body)) + body
        entry = _key(2, 2) + _varint(len(dv)) + dv
        body = _key(2, 2) + _varint(len(entry)) + entry
    assert v2_payloads.strip(body) is None


def test_fuzz_with_everything_stripped(tmp_path: Path, strip_all: None) -> None:
    data = fixture("residual").read_bytes()
    rng = random.Random(31337)
    path = tmp_path / "fuzz.model"
    for i in range(150):
        blob = bytearray(data)
        if i % 2:
            blob = blob[: rng.randrange(len(blob))]
        else:
            for _ in range(rng.randint(1, 16)):
                pos = rng.randrange(len(blob))
                blob[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(blob))
        try:
            fast = read_v2(path)
        except ModelFormatError:
            with pytest.raises(ModelFormatError):
                read_v2(path, strip=False)
            continue
        # when the fast path reads a damaged file, the plain path reads the same values
        slow = read_v2(path, strip=False)
        assert structure(fast) == structure(slow)
        for uid, var in slow.variables.items():
            if var.value is not None:
                assert fast.variables[uid].value.tobytes() == var.value.tobytes()


def test_mixed_references_and_records_are_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that guesses this read's tag still cannot mix its records with ours."""
    tag = b"T" * 16
    monkeypatch.setattr(v2_payloads.os, "urandom", lambda n: tag[:n])
    ours = _key(v2_payloads.PAYLOAD_FIELD, 2) + _varint(24) + tag + bytes(8)
    theirs = _key(v2_payloads.PAYLOAD_FIELD, 2) + _varint(24) + b"X" * 24
    for content_of in (lambda v: _packed(v) + ours, lambda v: ours + theirs):
        path, _, _ = _case(tmp_path, content_of)
        with pytest.raises(ModelFormatError, match="several encodings"):
            read_v2(path)


def test_bad_record_beside_unknown_fields(tmp_path: Path,
                                          reader: Callable[[Path], Model]) -> None:
    path, _, _ = _case(tmp_path, lambda v: _key(1, 2) + _varint(6) + v.tobytes()[:6]
                       + _key(7, 0) + _varint(1))
    with pytest.raises(ModelFormatError, match=r"case\.model"):
        reader(path)


def _with_view(tmp_path: Path, edit: Callable[[raw_pb.NDArrayView, np.ndarray], None],
               ) -> tuple[Path, str]:
    data = fixture("convnet").read_bytes()
    uid, n = _biggest_float_param(data)
    top = raw_pb.Dictionary.FromString(data)
    for item in top.data["inputs"].vector_value.value:
        d = item.dictionary_value.data
        if d["uid"].string_value == uid:
            view = d["value"].nd_array_view_value
            edit(view, np.arange(n, dtype=np.float32) - n // 2)
    path = tmp_path / "view.model"
    path.write_bytes(top.SerializeToString())
    return path, uid


def test_bytes_and_int_encodings(tmp_path: Path, reader: Callable[[Path], Model]) -> None:
    def as_bytes(view: raw_pb.NDArrayView, v: np.ndarray) -> None:
        view.bytes_value.value = v.astype("<f4").tobytes()

    def as_ints(view: raw_pb.NDArrayView, v: np.ndarray) -> None:
        view.sint32_values.value.extend(int(x) for x in v)

    for edit in (as_bytes, as_ints):
        path, uid = _with_view(tmp_path, edit)
        value = reader(path).variables[uid].value
        assert value.dtype == np.float32
        assert np.array_equal(value.ravel(), np.arange(value.size) - value.size // 2)


def test_missing_values(tmp_path: Path, reader: Callable[[Path], Model]) -> None:
    path, _ = _with_view(tmp_path, lambda view, v: view.ClearField("float_values"))
    with pytest.raises(ModelFormatError, match="holds 0 values"):
        reader(path)


def test_walker_gives_up_on_millions_of_tiny_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work is bounded: a file of tiny fields goes to protobuf instead of a long Python loop."""
    monkeypatch.setattr(v2_payloads, "MAX_FIELDS", 1000)
    assert v2_payloads.strip(fixture("convnet").read_bytes()) is not None  # a real model fits
    tiny = (_key(1, 0) + _varint(1)) * 5000  # 5000 Dictionary.version fields
    assert v2_payloads.strip(tiny) is None
