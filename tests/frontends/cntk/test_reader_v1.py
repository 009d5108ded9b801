"""The legacy v1 CNTK reader: same model as the v2 reader, same outputs as CNTK, hostile files.

Each fixture exists in both formats (``NAME.v1.model`` / ``NAME.v2.model``,
written by real CNTK 2.7 from the same function), so the v2 reader is the
oracle for what the v1 reader must produce: the same variables (uids, kinds,
Python-order shapes, values, dynamic axes) and the same functions (ops,
inputs, attributes), modulo the differences the v1 format imposes (listed in
``_normalize_attrs``).
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.errors import MmconvError, ModelFormatError
from mmconv.frontends.cntk import V1_MAGIC as MAGIC
from mmconv.frontends.cntk.model import Model
from mmconv.frontends.cntk.reader_v1 import parse_v1, read_v1
from mmconv.frontends.cntk.reader_v2 import read_v2

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk"
V1_FILES = sorted(FIXTURES.glob("*.v1.model"))
NAMES = [p.name[: -len(".v1.model")] for p in V1_FILES]


def _both(name: str) -> tuple[Model, Model]:
    return read_v1(FIXTURES / f"{name}.v1.model"), read_v2(FIXTURES / f"{name}.v2.model")


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _normalize_attrs(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Drop what the v1 format cannot carry, so v1 and v2 attributes compare equal.

    - BatchNormalization ``useCuDNNEngine``: v1 stores the opposite engine flag and
      CNTK's loader reports False; inference does not depend on it.
    - Dropout ``dropoutRate``: not saved in v1 files (CNTK reports 0.0).
    - Pooling shapes: v1 pooling nodes keep an explicit channel entry (``(2, 2, 1)``
      where v2 has ``(2, 2)``); trailing ones / zeros / False describe the channel axis,
      and a single value stands for all axes.
    - Slice: ``sliceStrides`` 1 (the default) is written in v2 files only.
    - ReduceElements: a single axis is ``axis`` in some v2 files and ``axisVec`` in
      others; v1 (like CNTK's loader) always gives ``axisVec``.
    """
    a = {k: _freeze(v) for k, v in attrs.items()}
    if op == "BatchNormalization":
        a.pop("useCuDNNEngine", None)
    if op == "Dropout":
        a.pop("dropoutRate", None)
    if op == "Pooling":
        for key, fill in (("poolingWindowShape", 1), ("strides", 1), ("lowerPad", 0),
                          ("upperPad", 0), ("autoPadding", False)):
            if key in a:
                v = list(a[key])
                while len(v) > 1 and v[-1] == fill:
                    v.pop()
                if len(set(v)) == 1:  # one value stands for every axis
                    v = v[:1]
                a[key] = tuple(v)
    if op == "Slice":  # stride 1 is the default: v2 files spell it out, v1 cannot
        if a.get("sliceStrides") == 1:
            a.pop("sliceStrides")
        if set(a.get("sliceStridesVec", (2,))) == {1}:
            a.pop("sliceStridesVec")
    if op == "ReduceElements" and "axis" in a and "axisVec" not in a:
        a["axisVec"] = (a.pop("axis"),)
    return a


@pytest.mark.parametrize("name", NAMES)
def test_variables_match_v2(name: str) -> None:
    m1, m2 = _both(name)
    assert m1.format == "v1"
    leaves1 = {u: v for u, v in m1.variables.items() if v.kind != "output"}
    assert leaves1, "no inputs or parameters read"
    for uid, v in leaves1.items():
        w = m2.variables.get(uid)
        assert w is not None, f"{uid} ({v.kind} {v.name}) not in the v2 model"
        assert (v.kind, v.name, v.shape, v.dtype, v.dynamic_axes) == (
            w.kind, w.name, w.shape, w.dtype, w.dynamic_axes), uid
        if v.value is not None:
            assert v.value.shape == v.shape
            np.testing.assert_array_equal(v.value, w.value, err_msg=uid)
    # every v2 input, parameter and constant is in the v1 model too
    for uid, w in m2.variables.items():
        if w.kind in ("input", "parameter", "constant"):
            assert uid in m1.variables, f"v2 {w.kind} {uid} ({w.name}) missing from v1"


@pytest.mark.parametrize("name", NAMES)
def test_functions_match_v2(name: str) -> None:
    m1, m2 = _both(name)
    f2 = {f.uid: f for f in m2.functions}
    assert m1.functions
    for f in m1.functions:
        g = f2.get(f.uid)
        assert g is not None, f"v1 function {f.op} {f.uid} not in the v2 model"
        assert f.op == g.op, f.uid
        assert f.inputs == g.inputs, f"{f.op} {f.uid}"
        assert _normalize_attrs(f.op, f.attrs) == _normalize_attrs(g.op, g.attrs), (
            f"{f.op} {f.uid}")
        assert f.outputs == [f"{f.uid}_Output_0"]
        assert m1.variables[f.outputs[0]].owner == f.uid
    # outputs: the same set (v1 lists them sorted by node name, as CNTK's loader does)
    assert sorted(m1.outputs) == sorted(m2.outputs)
    # topological order
    seen = {u for u, v in m1.variables.items() if v.kind != "output"}
    for f in m1.functions:
        assert all(i in seen for i in f.inputs), f.uid
        seen.update(f.outputs)


def _onnx_outputs(model: Model, io: Any) -> list[np.ndarray]:
    """Model -> IR -> ONNX, run on the fixture's inputs (by onnx.reference where the
    model holds float64 values: onnxruntime has no float64 Conv kernel)."""
    ort = pytest.importorskip("onnxruntime")
    from onnx.reference import ReferenceEvaluator

    from mmconv.emitters.onnx import build_model
    from mmconv.frontends.cntk.builder import convert_model

    graph = convert_model(model)
    onnx_model = build_model(graph)
    names = [str(n) for n in io["input_names"]]
    feeds = {}
    for i, inp in enumerate(onnx_model.graph.input):
        key = f"in_{names.index(inp.name)}" if inp.name in names else f"in_{i}"
        feeds[inp.name] = io[key]
    if any(v.dtype == "float64" for v in graph.values.values()):
        return list(ReferenceEvaluator(onnx_model).run(None, feeds))
    sess = ort.InferenceSession(onnx_model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


#: criteria forms of a v1 file have their own end-to-end tests (test_criteria.py)
CRITERIA_FIXTURES = ("with_loss_axis", "criteria_only")


@pytest.mark.parametrize("name", [n for n in NAMES if n not in CRITERIA_FIXTURES])
def test_end_to_end_onnx_matches_cntk(name: str) -> None:
    """v1 file -> Model -> IR -> ONNX -> onnxruntime equals CNTK's stored outputs.

    v1 files have no blocks: layers the v2 converters take whole (LeakyReLU,
    softmax with an axis, cross entropy...) arrive as their primitives and must
    convert and match too.  Training criteria of a v1 file are recognised by their
    shape and dropped (with_loss), so fewer outputs than the file's may come back.
    """
    from mmconv.verify.compare import assert_close

    io = np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False)
    m1, m2 = _both(name)
    got = _onnx_outputs(m1, io)
    outputs = m1.outputs if name != "with_loss" else [
        u for u in m1.outputs if m1.variables[u].owner and next(
            f for f in m1.functions if f.uid == m1.variables[u].owner).op != "Minus"]
    assert len(got) == len(outputs)
    for uid, out in zip(outputs, got, strict=True):
        ref = io[f"out_{m2.outputs.index(uid)}"]
        assert out.dtype == ref.dtype, uid
        assert_close(ref, out.reshape(ref.shape) if out.size == ref.size else out,
                     name=f"{name}:{uid}")


@pytest.mark.cntk
@pytest.mark.parametrize("name", ["convnet", "residual", "combine_two", "with_loss"])
def test_outputs_and_arguments_as_cntk_loads_them(name: str, cntk_python: str) -> None:
    """Our outputs (order included) and inputs are what ``cntk.load_model`` reports."""
    from mmconv.runtimes.cntk import model_info

    assert name in NAMES, f"committed fixture {name}.v1.model is missing"
    info = model_info(FIXTURES / f"{name}.v1.model", python=cntk_python)
    m1 = read_v1(FIXTURES / f"{name}.v1.model")
    assert [o["uid"] for o in info["outputs"]] == [u.rsplit("_Output_", 1)[0] + "_Output_0"
                                                    for u in m1.outputs]
    args = {a["uid"]: a for a in info["arguments"]}
    assert set(args) == {v.uid for v in m1.inputs}
    for v in m1.inputs:
        assert tuple(args[v.uid]["shape"]) == v.shape
        assert tuple(args[v.uid]["dynamic_axes"]) == v.dynamic_axes[::-1] or tuple(
            args[v.uid]["dynamic_axes"]) == v.dynamic_axes


# ---------------------------------------------------------------------------
# hostile input
# ---------------------------------------------------------------------------


def _w(s: str) -> bytes:
    return s.encode("utf-16-le") + b"\0\0"


def _header(version: int = 31, nodes: int = 1) -> bytes:
    return (_w("BCN") + _w("BVersion") + version.to_bytes(8, "little") + _w("EVersion")
            + nodes.to_bytes(8, "little") + _w("BNodeList"))


def _param(rows: int, cols: int, data: bytes = b"") -> bytes:
    return (_w("float") + _w("LearnableParameter") + _w("p") + np.float32(1).tobytes()
            + (1).to_bytes(4, "little") + rows.to_bytes(4, "little") + b"d" + _w("BMAT")
            + (4).to_bytes(8, "little") + _w("") + (0).to_bytes(4, "little")
            + rows.to_bytes(8, "little") + cols.to_bytes(8, "little") + data)


def _expect_format_error(data: bytes, match: str) -> None:
    with pytest.raises(ModelFormatError, match=match):
        parse_v1(data, "hostile.model")


def test_not_v1() -> None:
    _expect_format_error(b"\x08\x01garbage", "BCN")


def test_version_too_new() -> None:
    _expect_format_error(_header(version=99), "version 99")


def test_node_count_beyond_file() -> None:
    _expect_format_error(_header(nodes=1 << 40), "node count")


def test_matrix_beyond_file() -> None:
    _expect_format_error(_header() + _param(1 << 20, 1 << 20), "larger than the rest")


def test_unterminated_string() -> None:
    _expect_format_error(_header() + "float".encode("utf-16-le"), "unterminated")


def test_shape_rank_beyond_file() -> None:
    data = (_header() + _w("float") + _w("LearnableParameter") + _w("p")
            + np.float32(1).tobytes() + (0xFFFFFFF0).to_bytes(4, "little"))
    _expect_format_error(data, "rank")


def test_valid_small_file_roundtrip() -> None:
    """A hand-made minimal file (one parameter, no functions) parses: the helpers are right."""
    tail = (_w("EMAT") + _w("ENodeList") + _w("BRelation") + _w("p") + (0).to_bytes(8, "little")
            + _w("ERelation") + _w("BRootNodes") + _w("ELabelNodes") + _w("ERootNodes")
            + _w("ECN"))
    data = _header() + _param(2, 1, np.arange(2, dtype=np.float32).tobytes()) + tail
    assert data.startswith(MAGIC)
    net = parse_v1(data, "mini.model")
    assert net.nodes["p"].fields["sampleLayout"] == (2,)
    np.testing.assert_array_equal(net.nodes["p"].fields["value"], [0.0, 1.0])


def _mutations(seed: int, base: bytes, n: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:  # truncation
            out.append(base[: rng.randrange(len(base))])
        elif kind == 1:  # bit flips
            b = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(len(b))
                b[pos] ^= 1 << rng.randrange(8)
            out.append(bytes(b))
        elif kind == 2:  # a random 8-byte word overwritten (lengths, counts, dims)
            b = bytearray(base)
            pos = rng.randrange(len(b) - 8)
            b[pos : pos + 8] = rng.getrandbits(64).to_bytes(8, "little")
            out.append(bytes(b))
        else:  # random bytes behind a valid magic
            out.append(MAGIC + rng.randbytes(rng.randrange(2000)))
    return out


def test_fuzz_only_mmconv_errors(tmp_path: Path) -> None:
    """Truncations, bit flips, overwritten words and random files: MmconvError or success."""
    bases = [p.read_bytes() for p in V1_FILES if p.stat().st_size < 200_000][:6]
    assert bases
    start = time.perf_counter()
    target = tmp_path / "fuzz.model"
    cases = 0
    for k, base in enumerate(bases):
        for data in _mutations(1234 + k, base, 60):
            target.write_bytes(data)
            with contextlib.suppress(MmconvError):
                read_v1(target)
            cases += 1
    elapsed = time.perf_counter() - start
    assert cases >= 300
    assert elapsed < 20, f"{cases} fuzz cases took {elapsed:.1f}s"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="cannot read"):
        read_v1(tmp_path / "nope.model")


def test_values_are_writable_views_of_a_private_mapping(tmp_path: Path) -> None:
    """The file is mapped copy-on-write (not read): parameters view the mapping, and
    writing to one changes neither the file nor needs a copy first."""
    import shutil

    target = tmp_path / "m.v1.model"
    shutil.copyfile(FIXTURES / "convnet.v1.model", target)
    before = target.read_bytes()
    model = read_v1(target)
    values = [v.value for v in model.variables.values() if v.value is not None and v.value.size]
    assert values
    for value in values:
        assert value.flags.writeable
        value[...] = 0
    assert target.read_bytes() == before


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.model").write_bytes(b"")
    with pytest.raises(ModelFormatError, match=r"empty\.model"):
        read_v1(tmp_path / "empty.model")
