"""ONNX code output: ``emit_code`` writes a script, ``code_to_model`` runs it.

The script's model must be ``build_model``'s message for message (so mmtocode +
mmtomodel and mmconvert give the same file), run in onnxruntime like the IR
cases say, and survive hostile names without breaking or injecting code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import mmconv.emitters.onnx as onnx_emitter
from mmconv.errors import ModelFormatError, UnsupportedError, UsageError
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close
from mmconv.verify.onnx_runner import OnnxRunner

from ..ir_cases import CASES, HOSTILE, conv_net, conv_net_reference, dtypes_graph, hostile_graph

#: The lowest opset, CNTK 2.7's importer's, a middle one, the default and the top.
OPSETS = (7, 9, 13, onnx_emitter.DEFAULT_OPSET, onnx_emitter.MAX_OPSET)


def code_model(graph: Graph, tmp_path: Path, opset: int | None = None) -> onnx.ModelProto:
    """emit_code, then code_to_model into a file, loaded back."""
    code, weights, out = tmp_path / "model.py", tmp_path / "weights.npy", tmp_path / "m.onnx"
    onnx_emitter.emit_code(graph, code, weights, opset)
    ast.parse(code.read_text(encoding="utf-8"))
    onnx_emitter.code_to_model(code, weights, out)
    return onnx.load(str(out))


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_ir_case_code_equals_model_and_runs(name: str, opset: int, tmp_path: Path) -> None:
    c = CASES[name]()
    if opset < c.min_opset:
        with pytest.raises(UnsupportedError, match=f"node '{c.node}'"):
            onnx_emitter.emit_code(c.graph, tmp_path / "m.py", tmp_path / "w.npy", opset)
        assert list(tmp_path.iterdir()) == []
        return
    model = code_model(c.graph, tmp_path, opset)
    assert model == onnx_emitter.build_model(c.graph, opset)
    got = OnnxRunner(model).run(c.feeds)
    for i, (want, have) in enumerate(zip(c.expected, got, strict=True)):
        want = np.asarray(want)
        if want.dtype == bool or want.dtype.kind in "iu":
            np.testing.assert_array_equal(have, want)
        else:
            assert_close(want.astype(have.dtype), have, name=f"{name} output {i}")


def test_conv_net_code_reads_like_onnx_helper(tmp_path: Path) -> None:
    g = conv_net()
    g.metadata = {"source_framework": "cntk"}
    onnx_emitter.emit_code(g, tmp_path / "model.py", tmp_path / "weights.npy", 9)
    text = (tmp_path / "model.py").read_text()
    assert text.count("helper.make_node(") == len(g.nodes)
    assert "def KitModel(weight_file):" in text and 'if __name__ == "__main__":' in text
    assert "epsilon=1e-05" in text  # float32 attributes in their shortest exact form
    assert "allow_pickle=False" in text
    with np.load(tmp_path / "weights.npy", allow_pickle=False) as data:
        assert sorted(data.files) == sorted(g.weights)
        assert data["bn1/scale"].shape == (8,)  # stored as the ONNX model holds it
    model = code_model(g, tmp_path, 9)
    assert model == onnx_emitter.build_model(g, 9)
    x = np.random.default_rng(3).standard_normal((2, 3, 12, 12)).astype(np.float32)
    assert_close(conv_net_reference(g, x), OnnxRunner(model).run([x])[0])


def test_deterministic(tmp_path: Path) -> None:
    outs = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        onnx_emitter.emit_code(conv_net(), tmp_path / sub / "m.py", tmp_path / sub / "w.npy")
        outs.append(((tmp_path / sub / "m.py").read_bytes(),
                     (tmp_path / sub / "w.npy").read_bytes()))
    assert outs[0] == outs[1]


def test_script_main_saves_the_model(tmp_path: Path) -> None:
    g = conv_net()
    onnx_emitter.emit_code(g, tmp_path / "model.py", tmp_path / "weights.npy")
    args = [tmp_path / "model.py", tmp_path / "weights.npy", tmp_path / "out.onnx"]
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert onnx.load(str(tmp_path / "out.onnx")) == onnx_emitter.build_model(g)


def test_dtypes_and_byte_order(tmp_path: Path) -> None:
    """Every weight dtype, a big-endian weight and a 0-d one: same message as build_model."""
    g = dtypes_graph()
    weights = g.weights
    model = code_model(g, tmp_path, 13)
    assert model == onnx_emitter.build_model(g, 13)
    outs = OnnxRunner(model).run([np.ones((2, 3), np.float32)])
    np.testing.assert_array_equal(outs[1], 1 + np.arange(3, dtype=np.float32)[None].repeat(2, 0))
    for got, name in zip(outs[2:], g.outputs[2:], strict=True):
        assert got.dtype == weights[name].dtype and np.array_equal(got, weights[name])


def test_inline_constants_exact(tmp_path: Path) -> None:
    """Handler constants written in the code (shapes, eps, Clip bounds) keep their bits."""
    g = Graph("consts")
    g.add_input("x", "float32", [None, 2, 3])
    g.add_weight("s", np.ones(3, np.float32))
    g.add_node("LayerNormalization", ["x", "s"], "ln", epsilon=1.2345678e-7)
    g.add_node("Clip", ["ln"], "clip", min=-0.1, max=float(np.float32(1 / 3)))
    g.add_node("Reshape", ["clip"], "flat", shape=(0, -1))
    g.outputs = ["flat"]
    for opset in (11, 16, 17):
        model = code_model(g, tmp_path, opset)
        assert model == onnx_emitter.build_model(g, opset)


@pytest.mark.parametrize("opset", [9, 17])
def test_hostile_names(tmp_path: Path, opset: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    g = hostile_graph()
    model = code_model(g, tmp_path, opset)
    assert not (tmp_path / "PWNED").exists()
    assert model == onnx_emitter.build_model(g, opset)
    values = {v for n in model.graph.node for v in (*n.input, *n.output)}
    assert set(HOSTILE) <= values | {n.name for n in model.graph.node} | {
        t.name for t in model.graph.initializer}
    assert model.graph.name == g.name
    with np.load(tmp_path / "weights.npy", allow_pickle=False) as data:
        assert set(data.files) == set(g.weights)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    want = OnnxRunner(onnx_emitter.build_model(g, opset)).run([x])
    for a, b in zip(want, OnnxRunner(model).run([x]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_code_errors_are_one_line_and_leave_no_file(tmp_path: Path) -> None:
    g = conv_net()
    code, weights, out = tmp_path / "m.py", tmp_path / "w.npy", tmp_path / "m.onnx"
    onnx_emitter.emit_code(g, code, weights)
    with np.load(weights, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "fc/b"}
    np.savez(tmp_path / "short.npy", **arrays)
    # weights that do not fit the code: a usage error (exit 2), as in every target
    with pytest.raises(UsageError, match=r"short\.npy\.npz: does not fit the code .*m\.py "
                       r"\(KeyError: 'fc/b'\)"):
        onnx_emitter.code_to_model(code, tmp_path / "short.npy.npz", out)
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(ModelFormatError, match="defines no KitModel"):
        onnx_emitter.code_to_model(bad, weights, out)
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def KitModel(weight_file):\n    return 42\n")
    with pytest.raises(ModelFormatError, match="returned int"):
        onnx_emitter.code_to_model(wrong, weights, out)
    invalid = tmp_path / "invalid.py"
    invalid.write_text("from onnx import helper\n\ndef KitModel(weight_file):\n"
                       "    return helper.make_model(helper.make_graph(\n"
                       "        [helper.make_node('Relu', ['nope'], ['y'])], 'g', [], []))\n")
    with pytest.raises(ModelFormatError, match=r"fails onnx\.checker"):
        onnx_emitter.code_to_model(invalid, weights, out)
    assert not out.exists()
    assert "KitModel" not in sys.modules and not any(
        m.startswith("_mmconv_onnx_code") for m in sys.modules)


def test_emit_code_refuses_what_the_opset_cannot_express(tmp_path: Path) -> None:
    g = Graph("r")
    g.add_input("x", "float32", [None, 4])
    g.add_node("Round", ["x"], "round")
    g.outputs = ["round"]
    with pytest.raises(UnsupportedError, match=r"node 'round' \(Round\).*opset >= 11"):
        onnx_emitter.emit_code(g, tmp_path / "m.py", tmp_path / "w.npy", 9)
    assert list(tmp_path.iterdir()) == []
