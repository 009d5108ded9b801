"""IR files: PREFIX.pb / .json / .npy round trip, no pickle, hostile and mismatched files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
from google.protobuf import json_format

from mmconv.errors import IRError, ModelFormatError
from mmconv.ir import Graph, graph_pb2, serde


def sample_graph() -> Graph:
    rng = np.random.default_rng(0)
    g = Graph("sample")
    g.metadata["source"] = "test"
    g.add_input("data", "float32", (None, 3, 8, 8))
    g.add_weight("conv1/W", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    g.add_weight("conv1/B", rng.standard_normal(4).astype(np.float32))
    g.add_node("Conv", ["data", "conv1/W", "conv1/B"], "conv1", pads=(1, 1, 1, 1))
    for p in ("scale", "B", "mean", "var"):
        g.add_weight(f"bn1/{p}", rng.random(4).astype(np.float32) + 0.5)
    g.add_node("BatchNormalization", ["conv1", "bn1/scale", "bn1/B", "bn1/mean", "bn1/var"],
               "bn1", epsilon=1e-3)
    g.add_node("MaxPool", ["bn1"], "pool1", kernel_shape=(2, 2), strides=(2, 2),
               ceil_mode=True)
    g.add_node("Flatten", ["pool1"], "flat")
    g.add_weight("fc/W", rng.standard_normal((10, 64)).astype(np.float64))
    g.add_node("Dense", ["flat", "fc/W"], "fc")
    g.add_node("Softmax", ["fc"], "prob")
    g.outputs = ["prob"]
    return g


def test_round_trip(tmp_path: Path) -> None:
    g = sample_graph()
    pb_path, json_path, npy_path = serde.save(g, tmp_path / "m")
    assert [p.name for p in (pb_path, json_path, npy_path)] == ["m.pb", "m.json", "m.npy"]
    back = serde.load(pb_path, npy_path)
    assert [n.name for n in back.nodes] == [n.name for n in g.nodes]
    assert back.nodes[0].attrs == {"pads": (1, 1, 1, 1)}
    assert back.nodes[2].attr("ceil_mode") is True
    assert back.metadata == {"source": "test"}
    assert back.value("prob").shape == (None, 10)
    for name, array in g.weights.items():
        np.testing.assert_array_equal(back.weights[name], array)
        assert back.weights[name].dtype == array.dtype


def test_weights_load_with_plain_numpy_without_pickle(tmp_path: Path) -> None:
    g = sample_graph()
    _, _, npy = serde.save(g, tmp_path / "m")
    with np.load(npy, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(g.weights)
        np.testing.assert_array_equal(archive["conv1/W"], g.weights["conv1/W"])


def test_json_is_the_same_graph(tmp_path: Path) -> None:
    pb_path, json_path, _ = serde.save(sample_graph(), tmp_path / "m")
    data = json.loads(json_path.read_text())
    assert [n["op"] for n in data["nodes"]][:3] == ["Conv", "BatchNormalization", "MaxPool"]
    from_json = json_format.ParseDict(data, graph_pb2.Graph())
    from_pb = graph_pb2.Graph.FromString(pb_path.read_bytes())
    assert from_json == from_pb


def test_save_is_deterministic(tmp_path: Path) -> None:
    a = serde.save(sample_graph(), tmp_path / "a")
    b = serde.save(sample_graph(), tmp_path / "b")
    for pa, pb_ in zip(a, b, strict=True):
        assert pa.read_bytes() == pb_.read_bytes()


def test_weight_mismatch_is_reported(tmp_path: Path) -> None:
    pb_path, _, npy = serde.save(sample_graph(), tmp_path / "m")
    weights = serde.load_weights(npy)
    weights["conv1/W"] = weights["conv1/W"][:2]
    with open(tmp_path / "bad.npy", "wb") as f:
        np.savez(f, **weights)
    with pytest.raises(IRError, match=r"weight 'conv1/W' is float32\[2, 3, 3, 3\]"):
        serde.load(pb_path, tmp_path / "bad.npy")
    del weights["conv1/W"]
    with open(tmp_path / "short.npy", "wb") as f:
        np.savez(f, **weights)
    with pytest.raises(IRError, match="lacks 1 weights"):
        serde.load(pb_path, tmp_path / "short.npy")


def test_pickled_weights_refused(tmp_path: Path) -> None:
    pb_path, _, _ = serde.save(sample_graph(), tmp_path / "m")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFormatError, match=r"obj\.npy"):
        serde.load(pb_path, tmp_path / "obj.npy")


def test_garbage_graph_file(tmp_path: Path) -> None:
    _, _, npy = serde.save(sample_graph(), tmp_path / "m")
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xfe not a protobuf \x00\x01" * 10)
    with pytest.raises(ModelFormatError, match=r"bad\.pb"):
        serde.load(bad, npy)
    with pytest.raises(ModelFormatError, match="no such file"):
        serde.load(tmp_path / "nothing.pb", npy)


def test_unknown_op_in_file_rejected_on_load(tmp_path: Path) -> None:
    pb_path, _, npy = serde.save(sample_graph(), tmp_path / "m")
    msg = graph_pb2.Graph.FromString(pb_path.read_bytes())
    msg.nodes[1].op = "MysteryOp"
    pb_path.write_bytes(msg.SerializeToString())
    with pytest.raises(IRError, match=r"m\.pb: unknown IR op 'MysteryOp'"):
        serde.load(pb_path, npy)


def test_failed_save_leaves_no_files(tmp_path: Path) -> None:
    g = sample_graph()
    g.outputs = ["not_there"]
    with pytest.raises(IRError):
        serde.save(g, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# -- the weights file writer ------------------------------------------------------
def _varied_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "conv1/W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "fc/W_fortran": np.asfortranarray(rng.standard_normal((5, 7))),
        "big/W": rng.standard_normal(400_000).astype(np.float32),  # CRC on the second thread
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), np.int64),
        "bigendian": np.arange(6, dtype=">i4").reshape(2, 3),
        "mask": np.array([True, False]),
        "strided": np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2],
        "nön-ascii/名": np.ones(3, np.float16),
    }


def _zipfile_reference(weights: dict[str, np.ndarray], f: BinaryIO | None = None) -> bytes:
    """What Python's zipfile (as numpy.savez uses it) writes for ``weights`` at a fixed
    time, into ``f`` from its position (a BytesIO by default)."""
    import io
    import zipfile

    buf = io.BytesIO() if f is None else f
    position = buf.tell()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in weights.items():
            array = np.asarray(value)
            if not (array.flags.c_contiguous or array.flags.f_contiguous):
                array = np.ascontiguousarray(array)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)
    buf.seek(position)
    return buf.read()


def test_weights_file_is_what_zipfile_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """Without the alignment padding the archive is byte for byte zipfile's (numpy.savez's
    with a fixed timestamp): headers, ZIP64 extra fields, central directory, end record."""
    import io

    monkeypatch.setattr(serde, "_DATA_ALIGN", 1)
    weights = _varied_weights()
    buf = io.BytesIO()
    serde.write_weights(buf, weights)
    assert buf.getvalue() == _zipfile_reference(weights)


def test_weights_file_zip64_offsets_are_what_zipfile_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Members beyond 2 GiB in the file get ZIP64 offsets in the central directory and the
    ZIP64 end records, as zipfile writes them (a sparse file: nothing is really written)."""
    monkeypatch.setattr(serde, "_DATA_ALIGN", 1)
    weights = {"a": np.arange(10, dtype=np.float32), "b": np.ones((2, 2))}
    start = 3 << 30
    path = tmp_path / "far.npz"
    with open(path, "wb") as f:
        f.seek(start)
        serde.write_weights(f, weights)
    with open(path, "rb") as f:
        f.seek(start)
        ours = f.read()
    with open(tmp_path / "reference.npz", "w+b") as f:
        f.seek(start)
        assert ours == _zipfile_reference(weights, f)
    assert b"PK\x06\x06" in ours and b"PK\x06\x07" in ours


def test_weights_file_loads_everywhere_aligned(tmp_path: Path) -> None:
    import zipfile

    weights = _varied_weights()
    path = tmp_path / "w.npy"
    serde.save_weights(path, weights)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert [i.filename for i in zf.infolist()] == [k + ".npy" for k in weights]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == list(weights)
        for key, array in weights.items():
            np.testing.assert_array_equal(archive[key], array)
            assert archive[key].dtype == array.dtype and archive[key].shape == array.shape
        assert archive["fc/W_fortran"].flags.f_contiguous
    data = path.read_bytes()
    for offset in _data_offsets(data):
        assert offset % 64 == 0
    serde.save_weights(tmp_path / "again.npy", weights)
    assert (tmp_path / "again.npy").read_bytes() == data  # deterministic


def _data_offsets(data: bytes) -> list[int]:
    """Where each member's array data starts (after the zip local header and .npy header)."""
    import io
    import struct
    import zipfile

    offsets = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            n, m = struct.unpack_from("<HH", data, info.header_offset + 26)
            start = info.header_offset + 30 + n + m
            (hlen,) = struct.unpack_from("<H", data, start + 8)
            offsets.append(start + 10 + hlen)
    return offsets


def test_weights_file_refuses_what_npz_cannot_hold(tmp_path: Path) -> None:
    g = sample_graph()
    g.weights["conv1/W"] = np.array([{"a": 1}] * 108, dtype=object).reshape(4, 3, 3, 3)
    with pytest.raises(IRError, match="dtype object"):
        serde.save(g, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(IRError, match="NUL"):
        serde.save_weights(tmp_path / "w.npy", {"a\0b": np.zeros(2)})
    assert list(tmp_path.iterdir()) == []


# -- loading: members mapped in place, hostile files --------------------------------
def test_load_maps_members_in_place(tmp_path: Path) -> None:
    import mmap

    weights = _varied_weights()
    path = tmp_path / "w.npy"
    serde.save_weights(path, weights)
    before = path.read_bytes()
    loaded = serde.load_weights(path)
    assert list(loaded) == list(weights)
    for key, array in weights.items():
        got = loaded[key]
        np.testing.assert_array_equal(got, array)
        assert got.dtype == array.dtype and got.shape == array.shape
        assert got.flags.writeable and got.flags.aligned
        if got.size:
            base = got
            while isinstance(base, np.ndarray):
                base = base.base
            base = base.obj if isinstance(base, memoryview) else base
            assert isinstance(base, mmap.mmap), key  # a view of the file, not a copy
    assert loaded["fc/W_fortran"].flags.f_contiguous
    loaded["big/W"][:] = 0  # copy-on-write: the file does not change
    assert path.read_bytes() == before


def test_load_reads_numpy_written_files(tmp_path: Path) -> None:
    """np.savez (unaligned members: copied) and np.savez_compressed (read by numpy)."""
    weights = {k: v for k, v in _varied_weights().items() if k != "strided"}
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, **weights)
        loaded = serde.load_weights(path)
        for key, array in weights.items():
            np.testing.assert_array_equal(loaded[key], array)
            assert loaded[key].dtype == array.dtype and loaded[key].flags.aligned


def _rewrite(path: Path, edit: Callable[[bytearray], None]) -> Path:
    data = bytearray(path.read_bytes())
    edit(data)
    out = path.with_name("edited.npy")
    out.write_bytes(bytes(data))
    return out


def test_load_refuses_hostile_members(tmp_path: Path) -> None:
    import struct
    import zipfile

    path = tmp_path / "w.npy"
    serde.save_weights(path, {"a": np.arange(1000, dtype=np.float32),
                              "b": np.arange(1000, dtype=np.float32)})
    data = path.read_bytes()
    (a_off, b_off) = _data_offsets(data)
    with zipfile.ZipFile(path) as zf:
        a_info, b_info = zf.infolist()

    def shape(n: int) -> Callable[[bytearray], None]:
        def edit(d: bytearray) -> None:  # member a's header says shape (n,), same length
            start, end = d.rfind(b"{", 0, a_off), a_off - 1
            text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({n},), }}"
            d[start:end] = text.encode().ljust(end - start)
        return edit

    cases = {
        "needs": shape(1001),  # more elements than the member holds
        "needs 40000000000": shape(10_000_000_000),
        "negative": shape(-5),
        "outside": lambda d: struct.pack_into("<L", d, _central_offset(d, 0) + 42, len(d) + 10),
        "bad local header": lambda d: d.__setitem__(slice(0, 4), b"XXXX"),
        "overlap": lambda d: struct.pack_into("<L", d, _central_offset(d, 1) + 42,
                                              a_info.header_offset),
        "runs past": lambda d: struct.pack_into("<H", d, b_info.header_offset + 28, 60000),
    }
    for message, edit in cases.items():
        with pytest.raises(ModelFormatError, match=message):
            serde.load_weights(_rewrite(path, edit))
    assert b_off > a_off


def _central_offset(data: bytearray, index: int) -> int:
    """Where the ``index``-th central directory entry starts."""
    pos = data.find(b"PK\x01\x02")
    for _ in range(index):
        pos = data.find(b"PK\x01\x02", pos + 4)
    return pos


def test_load_refuses_objects_and_other_members(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "o.npy"
    np.savez(path, a=np.zeros(2))
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ModelFormatError, match=r"readme\.txt"):
        serde.load_weights(path)
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w") as zf, zf.open("x.npy", "w") as out:
        np.save(out, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFormatError, match="never loaded"):
        serde.load_weights(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy parsing garbage headers
def test_load_fuzz_only_mmconv_errors(tmp_path: Path) -> None:
    """Truncations, flipped bytes and overwritten words: ModelFormatError or arrays."""
    import random

    path = tmp_path / "w.npy"
    serde.save_weights(path, {k: v for k, v in _varied_weights().items() if k != "big/W"})
    base = path.read_bytes()
    rng = random.Random(7)
    target = tmp_path / "fuzz.npy"
    for i in range(400):
        data = bytearray(base)
        if i % 3 == 0:
            data = data[: rng.randrange(len(data))]
        elif i % 3 == 1:
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            pos = rng.randrange(len(data) - 8)
            data[pos : pos + 8] = rng.getrandbits(64).to_bytes(8, "little")
        target.write_bytes(bytes(data))
        try:
            loaded = serde.load_weights(target)
        except ModelFormatError:
            continue
        for array in loaded.values():
            assert isinstance(array, np.ndarray)
            array.sum()  # every byte of every array lies inside the file


def test_weight_names_longer_than_a_zip_name_are_refused(tmp_path: Path) -> None:
    """The zip format keeps a member name's length in 16 bits: one clear IRError, and a
    name just under the limit still round-trips."""
    for length, ok in ((65531, True), (65532, False), (200_000, False)):
        g = Graph("long")
        g.add_weight("w" * length, np.arange(4, dtype=np.float32))
        target = tmp_path / f"w{length}.npy"
        if ok:
            with target.open("wb") as f:
                serde.write_weights(f, g.weights)
            with np.load(target, allow_pickle=False) as data:
                assert data["w" * length].tolist() == [0, 1, 2, 3]
        else:
            with pytest.raises(IRError, match=r"at most 65531 bytes") as info, \
                    target.open("wb") as f:
                serde.write_weights(f, g.weights)
            assert len(str(info.value)) < 300
