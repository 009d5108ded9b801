"""The MXNet emitter's files: the formats as MXNet reads them, determinism, atomicity,
hostile names, options, and mmtocode/mmtomodel's checks.

The writers never import MXNet; what they write is read back here by the real
mxnet 1.9.1 (``mx.nd.load``, ``mx.sym.load``) in its own env.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters import get_emitter
from mmconv.emitters.mxnet import build, code_to_model, emit_code, emit_model
from mmconv.emitters.mxnet.params import write_params
from mmconv.emitters.mxnet.symbol import MXNET_VERSION, format_attr
from mmconv.errors import MmconvError, UnsupportedError, UsageError
from mmconv.formats.mxnet import checkpoint_prefix
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close

from .. import reference as ref
from ..ir_cases import HOSTILE, conv_net, conv_net_reference, hostile_graph
from .conftest import run_all

X = np.random.default_rng(3).standard_normal((2, 3, 12, 12)).astype(np.float32)


def _in_mxnet(python: str, code: str, *args: object) -> str:
    """Run ``code`` in the mxnet env (isolated); its stdout."""
    proc = subprocess.run([python, "-I", "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# -- the params file -------------------------------------------------------------------------
ARRAYS = [
    ("arg:w", np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7),
    ("aux:m", np.array([1.5, -2.25], np.float64)),
    ("arg:h", np.array([0.5, 3.0, -1.0], np.float16)),
    ("arg:i", np.arange(5, dtype=np.int64) - 2),
    ("arg:j", np.array([[7]], np.int32)),
    ("arg:u", np.array([1, 255], np.uint8)),
    ("arg:s", np.array(2.5, np.float32)),  # 0-d: stored as (1,)
    ("arg:a/b:c ü\n", np.ones((1, 1, 1, 1), np.float32)),
]


@pytest.mark.mxnet
def test_params_read_back_by_mxnet(tmp_path: Path, mxnet_python: str) -> None:
    path = tmp_path / "p.params"
    with path.open("wb") as out:
        write_params(out, ARRAYS)
    code = ("import sys, json, mxnet as mx\n"
            "d = mx.nd.load(sys.argv[1])\n"
            "print(json.dumps({k: [list(v.shape), v.dtype.__name__, v.asnumpy().ravel()"
            ".tolist()] for k, v in d.items()}))")
    got = json.loads(_in_mxnet(mxnet_python, code, path))
    assert list(got) == [k for k, _ in ARRAYS]
    for key, array in ARRAYS:
        shape, dtype, values = got[key]
        assert tuple(shape) == (array.shape or (1,)), key
        assert dtype == array.dtype.name, key
        assert np.array_equal(np.asarray(values, dtype=array.dtype), array.ravel()), key


@pytest.mark.mxnet
def test_params_are_the_bytes_mx_nd_save_writes(tmp_path: Path, mxnet_python: str) -> None:
    ours = io.BytesIO()
    arrays = [(k, a) for k, a in ARRAYS if a.ndim]  # mx.nd.array keeps no 0-d in legacy mode
    write_params(ours, arrays)
    np.savez(tmp_path / "a.npz", **{f"a{i}": a for i, (_, a) in enumerate(arrays)})
    code = ("import sys, json, numpy as np, mxnet as mx\n"
            "names = json.loads(sys.argv[2])\n"
            "with np.load(sys.argv[1]) as f:\n"
            "    d = {n: mx.nd.array(f['a%d' % i], dtype=f['a%d' % i].dtype)"
            " for i, n in enumerate(names)}\n"
            "mx.nd.save(sys.argv[3], d)\n")
    _in_mxnet(mxnet_python, code, tmp_path / "a.npz", json.dumps([k for k, _ in arrays]),
              tmp_path / "theirs.params")
    assert ours.getvalue() == (tmp_path / "theirs.params").read_bytes()


def test_params_layout() -> None:
    out = io.BytesIO()
    write_params(out, [("arg:x", np.array([1.0, 2.0], np.float32))])
    data = out.getvalue()
    assert struct.unpack_from("<QQQ", data) == (0x112, 0, 1)
    assert struct.unpack_from("<IiIq", data, 24) == (0xF993FAC9, 0, 1, 2)
    assert struct.unpack_from("<iii", data, 44) == (1, 0, 0)  # cpu(0), float32
    assert data.endswith(struct.pack("<QQ", 1, 5) + b"arg:x")
    with pytest.raises(ValueError, match="unique"):
        write_params(io.BytesIO(), [("a", np.zeros(1)), ("a", np.zeros(1))])
    with pytest.raises(ValueError, match="no dtype complex64"):
        write_params(io.BytesIO(), [("a", np.zeros(1, np.complex64))])


# -- the symbol file ---------------------------------------------------------------------------
def test_symbol_json_structure(tmp_path: Path) -> None:
    emit_model(conv_net(), tmp_path / "m")
    doc = json.loads((tmp_path / "m-symbol.json").read_text())
    nodes = doc["nodes"]
    assert doc["attrs"] == {"mxnet_version": ["int", MXNET_VERSION]}
    assert doc["arg_nodes"] == [i for i, n in enumerate(nodes) if n["op"] == "null"]
    counts = [3 if n["op"] == "BatchNorm" else 1 for n in nodes]
    assert doc["node_row_ptr"] == list(np.cumsum([0, *counts]))
    assert doc["heads"] == [[len(nodes) - 1, 0, 0]] and nodes[-1]["name"] == "prob"
    for i, node in enumerate(nodes):
        assert all(src < i for src, _, _ in node["inputs"])  # topological
        assert all(isinstance(v, str) for v in node.get("attrs", {}).values())
    bn = next(n for n in nodes if n["op"] == "BatchNorm")
    assert bn["attrs"]["fix_gamma"] == "False" and bn["attrs"]["use_global_stats"] == "True"
    assert len({n["name"] for n in nodes}) == len(nodes)


def test_attr_format() -> None:
    assert format_attr((3, 3)) == "(3, 3)"
    assert format_attr((1,)) == "(1,)"
    assert format_attr((None, 2)) == "(None, 2)"
    assert format_attr(True) == "True" and format_attr(0.1) == "0.1"
    with pytest.raises(ValueError, match="not finite"):
        format_attr(float("inf"))


@pytest.mark.mxnet
def test_symbol_loads_in_mxnet_with_its_params(tmp_path: Path, mxnet_python: str) -> None:
    emit_model(conv_net(), tmp_path / "m")
    code = ("import sys, json, mxnet as mx\n"
            "sym, args, auxs = mx.model.load_checkpoint(sys.argv[1], 0)\n"
            "print(json.dumps([sym.list_arguments(), sym.list_auxiliary_states(),"
            " sorted(args), sorted(auxs), sym.list_outputs()]))")
    arguments, aux_states, args, auxs = json.loads(
        _in_mxnet(mxnet_python, code, tmp_path / "m"))[:4]
    assert sorted(aux_states) == auxs == ["bn1/mean", "bn1/var"]
    assert sorted(a for a in arguments if a != "data") == args


def test_deterministic(tmp_path: Path) -> None:
    for d in ("a", "b"):
        emit_model(conv_net(), tmp_path / d / "m")
        emit_code(conv_net(), tmp_path / d / "m.py", tmp_path / d / "w.params")
    for name in ("m-symbol.json", "m-0000.params", "m.py", "w.params"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# -- atomicity, options, names -------------------------------------------------------------------
def _unsupported_graph() -> Graph:
    """Two nodes MXNet cannot express: a matrix product broadcasting batch axes, padding
    four trailing axes."""
    g = Graph("bad")
    g.add_input("x", "float32", [None, 3, 8, 8])
    g.add_weight("w", np.ones((1, 8, 8), np.float32))
    g.add_node("MatMul", ["x", "w"], "mm")
    g.add_node("Reshape", ["mm"], "five", shape=(0, 3, 2, 4, 8))
    g.add_node("Pad", ["five"], "pad", pads=(0, 1, 1, 1, 1, 0, 1, 1, 1, 1))
    g.outputs = ["pad"]
    return g


def test_unsupported_names_every_node_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "keep-symbol.json").write_text("old")
    with pytest.raises(UnsupportedError, match="2 nodes cannot be emitted as MXNet") as info:
        emit_model(_unsupported_graph(), tmp_path / "keep")
    assert "'mm' (MatMul): matrix product of ranks 4 and 3" in str(info.value)
    assert "'pad' (Pad): padding 4 trailing axes" in str(info.value)
    with pytest.raises(UnsupportedError):
        emit_code(_unsupported_graph(), tmp_path / "c.py", tmp_path / "c.params")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep-symbol.json"]
    assert (tmp_path / "keep-symbol.json").read_text() == "old"


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mmconv.emitters.mxnet.builder as builder

    def broken(out: object, arrays: object) -> None:
        raise OSError("disk full")
    monkeypatch.setattr(builder, "write_params", broken)
    with pytest.raises(OSError, match="disk full"):
        emit_model(conv_net(), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_options_and_names(tmp_path: Path) -> None:
    emitter = get_emitter("mxnet")
    assert emitter.weights_suffix == ".params"
    assert emitter.outputs(tmp_path / "n-0000.params") == [tmp_path / "n-symbol.json",
                                                            tmp_path / "n-0000.params"]
    emit_model(conv_net(), tmp_path / "e", epoch=12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e-0012.params", "e-symbol.json"]
    with pytest.raises(UsageError, match="has no option"):
        emit_model(conv_net(), tmp_path / "x", opset=13)
    with pytest.raises(UsageError, match="epoch"):
        emit_model(conv_net(), tmp_path / "x", epoch=10000)
    with pytest.raises(UsageError, match="emitter code has no option"):
        emit_code(conv_net(), tmp_path / "x.py", tmp_path / "x.params", epoch=1)
    assert checkpoint_prefix("a/b-symbol.json") == "a/b"
    assert checkpoint_prefix("a/b-0003.params") == "a/b"
    assert checkpoint_prefix("a/b.params") == "a/b.params"
    for bad in ("", "out/", "a/-symbol.json", ".."):
        with pytest.raises(UsageError, match="give the MXNet checkpoint a name"):
            checkpoint_prefix(bad)


@pytest.mark.mxnet
def test_hostile_names(tmp_path: Path, mxnet_python: str) -> None:
    """Names with quotes, newlines and keywords are JSON strings in the symbol, strings in
    the params file and repr() literals in the code: all three run in MXNet."""
    g = hostile_graph()
    emit_model(g, tmp_path / "h")
    emit_code(g, tmp_path / "h.py", tmp_path / "h.params")
    code_to_model(tmp_path / "h.py", tmp_path / "h.params", tmp_path / "k")
    assert not (tmp_path / "PWNED").exists()
    text = (tmp_path / "h-symbol.json").read_text(encoding="utf-8")
    assert "\\u" not in text  # MXNet's JSON reader has no \u escapes
    names = {n["name"] for n in json.loads(text, strict=False)["nodes"]}
    assert {v for v in HOSTILE if v in g.values} <= names
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    y = x
    for m in [g.weights[n.inputs[1]] for n in g.nodes if n.op == "Dense"]:
        y = y @ m.T
    y = np.maximum(y * g.weights[g.nodes[4].inputs[1]], 0)
    want = [ref.softmax(y.astype(np.float64), 1).astype(np.float32), y]
    for got in run_all([(tmp_path / "h", g, {g.inputs[0].name: x}),
                        (tmp_path / "k", g, {g.inputs[0].name: x})], mxnet_python):
        for w, h in zip(want, got, strict=True):
            assert_close(w, h)


# -- mmtocode / mmtomodel --------------------------------------------------------------------------
def test_code_is_readable_mx_sym(tmp_path: Path) -> None:
    emit_code(conv_net(), tmp_path / "m.py", tmp_path / "m.params")
    code = (tmp_path / "m.py").read_text()
    assert "import mxnet as mx" in code and "def KitModel(weight_file):" in code
    flat = " ".join(code.split())
    assert "mx.sym.Convolution( data, conv1_W, conv1_b, kernel=(3, 3)" in flat
    assert max(len(line) for line in code.splitlines()) <= 100
    assert "mx.sym.BatchNorm(" in code and "fix_gamma=False" in code
    compile(code, "m.py", "exec")
    assert build(conv_net()).params() and (tmp_path / "m.params").stat().st_size > 1000


@pytest.mark.mxnet
def test_mmtomodel(tmp_path: Path, mxnet_python: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCONV_MXNET_PYTHON", mxnet_python)
    g = conv_net()
    emit_code(g, tmp_path / "m.py", tmp_path / "m.params")
    code_to_model(tmp_path / "m.py", tmp_path / "m.params", tmp_path / "out" / "net")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["net-0000.params",
                                                                    "net-symbol.json"]
    (got,), = run_all([(tmp_path / "out" / "net", g, {"data": X})], mxnet_python, "gluon")
    assert_close(conv_net_reference(g, X), got)
    (tmp_path / "bad.py").write_text("import mxnet as mx\ndef KitModel(w):\n    raise "
                                     "ValueError('no model here')\n")
    with pytest.raises(MmconvError, match="no model here") as info:
        code_to_model(tmp_path / "bad.py", tmp_path / "m.params", tmp_path / "out" / "x")
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["net-0000.params",
                                                                    "net-symbol.json"]


@pytest.mark.mxnet
def test_probe_intermediate_values(tmp_path: Path, mxnet_python: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """--layers support: the values of IR nodes, by IR name, from the checkpoint."""
    from mmconv.emitters.mxnet.probe import probe

    monkeypatch.setenv("MMCONV_MXNET_PYTHON", mxnet_python)
    g = conv_net()
    emit_model(g, tmp_path / "m")
    got = probe(tmp_path / "m", g, {"data": X}, ["relu1", "conv2", "no such value", "prob"])
    assert sorted(got) == ["conv2", "prob", "relu1"]
    conv1 = ref.conv(X, g.weights["conv1/W"], g.weights["conv1/b"], pads=(1, 1, 1, 1))
    w = {k: g.weights[f"bn1/{k}"].reshape(1, -1, 1, 1) for k in ("scale", "B", "mean", "var")}
    bn1 = (conv1 - w["mean"]) / np.sqrt(w["var"] + 1e-5) * w["scale"] + w["B"]
    assert_close(np.maximum(bn1, 0).astype(np.float32), got["relu1"])
    assert_close(conv_net_reference(g, X), got["prob"])
