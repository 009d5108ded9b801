"""The emitter skeleton: descriptions, the registry built from them, options, the base
context's shared behaviour."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmconv.dispatch import Registry
from mmconv.emitters import PACKAGES, all_emitters, get_emitter
from mmconv.emitters.base import (
    EmitContextBase,
    Emitter,
    Option,
    check_handlers,
    emit_all,
    missing_handlers,
    norm_axis,
)
from mmconv.errors import UnsupportedError, UsageError
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_describes_one_emitter() -> None:
    emitters = all_emitters()
    assert len(emitters) == len(PACKAGES)
    for name, emitter in emitters.items():
        assert isinstance(emitter, Emitter) and emitter.name == name
        assert callable(emitter.emit_code) and callable(emitter.emit_model)
        assert callable(emitter.code_to_model)
        assert isinstance(emitter.handlers, Registry) and len(list(emitter.handlers)) > 10


def test_names_and_aliases_are_unique_and_case_insensitive() -> None:
    seen: set[str] = set()
    for emitter in all_emitters().values():
        for key in (emitter.name, *emitter.aliases):
            assert key == key.lower() and key not in seen
            seen.add(key)
            assert get_emitter(key.upper()) is emitter
    assert get_emitter("torch") is get_emitter("pytorch")
    with pytest.raises(UsageError, match=r"'nope' is not supported yet \(supported: onnx"):
        get_emitter("nope")


def test_options_are_typed_and_named() -> None:
    onnx = get_emitter("onnx")
    assert onnx.check_options({"opset": 13}) == {"opset": 13}
    with pytest.raises(UsageError, match="opset must be int"):
        onnx.check_options({"opset": "13"})
    with pytest.raises(UsageError, match="opset must be int"):
        onnx.check_options({"opset": True})
    with pytest.raises(UsageError, match=r"no option\(s\) nhwc_io \(it takes: opset\)"):
        onnx.check_options({"nhwc_io": True})
    cntk = get_emitter("cntk")
    with pytest.raises(UsageError, match=r"v3.*is not one of v2, v1"):
        cntk.check_options({"format": "v3"})
    # format is for model files only; dilation also for code
    with pytest.raises(UsageError, match=r"code has no option\(s\) format"):
        cntk.check_options({"format": "v2"}, code=True)
    assert cntk.check_options({"dilation": "expand"}, code=True) == {"dilation": "expand"}
    opt = Option("k", int, "k", choices=(1, 2))
    assert opt.check(2, "t") == 2


def test_cli_names_the_targets_a_flag_applies_to(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmconv", "mmtocode", "-f", "pytorch", "-n", "x.pb",
         "-d", str(tmp_path / "m.py"), "--opset", "13"],
        capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "--opset applies to the onnx target only, not pytorch" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_norm_axis() -> None:
    assert norm_axis(-1, 4) == 3 and norm_axis(2, 4) == 2 and norm_axis(0, 0) == 0
    for bad in (4, -5):
        with pytest.raises(ValueError, match="out of range"):
            norm_axis(bad, 4)


class _Ctx(EmitContextBase):
    handlers: Registry = Registry("test emit handler")
    target = "test target"

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.seen: list[str] = []


@_Ctx.handlers.register("Relu")
def _relu(ctx: _Ctx, node) -> None:  # type: ignore[no-untyped-def]
    assert ctx.node is node
    ctx.seen.append(node.name)


@_Ctx.handlers.register("Softmax")
def _softmax(ctx: _Ctx, node) -> None:  # type: ignore[no-untyped-def]
    axis = ctx.axis_attr(node)
    if axis != 1:
        raise ctx.unsupported(node, f"softmax over axis {axis}")
    ctx.seen.append(node.name)


def _graph() -> Graph:
    g = Graph("g")
    g.add_input("x", "float32", [None, 3, 4])
    g.add_node("Relu", ["x"], "relu", ["r"])
    g.add_node("Softmax", ["r"], "soft", ["s"], axis=-1)
    g.add_node("Sigmoid", ["s"], "sig", ["y"])
    g.add_node("Relu", ["r"], "r-2", ["y2"])
    g.outputs = ["y", "y2"]
    infer_shapes(g)
    return g


def test_context_base_dispatch_errors_names_uses() -> None:
    g = _graph()
    ctx = _Ctx(g)
    with pytest.raises(UnsupportedError) as info:
        emit_all(ctx, g.nodes, "test")
    text = str(info.value)
    assert text.startswith("2 nodes cannot be emitted as test: ")
    assert "node 'soft' (Softmax): softmax over axis 2 (test target)" in text
    assert "node 'sig' (Sigmoid): IR op Sigmoid has no test emit handler (test target)" in text
    assert ctx.seen == ["relu", "r-2"] and ctx.node is None
    assert ctx.uses("r") == 2 and ctx.uses("y") == 1 and ctx.uses("x") == 1
    assert ctx.uses("nothing") == 0
    assert ctx.fresh("r") == "r_1" and ctx.fresh("r") == "r_2" and ctx.fresh("new") == "new"
    assert ctx.fresh("relu") == "relu_1"  # node names are taken too
    assert missing_handlers(_Ctx.handlers, g) == ["Sigmoid"]
    assert "Relu" not in missing_handlers(_Ctx.handlers)
    with pytest.raises(UnsupportedError, match=r"no test emitter for 1 node\(s\): 'sig'"):
        check_handlers(g, _Ctx.handlers, "test")
    np.testing.assert_equal(ctx.shape("x"), (None, 3, 4))


def test_verify_and_cli_use_only_the_descriptions() -> None:
    """verify/ and cli/ import ``mmconv.emitters`` (the registry) and nothing inside a target."""
    for folder in ("verify", "cli", "docgen"):
        for path in (ROOT / "mmconv" / folder).glob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    mod = node.module
                elif isinstance(node, ast.Import):
                    mod = node.names[0].name
                else:
                    continue
                assert not (mod.startswith("mmconv.emitters.")
                            and mod not in ("mmconv.emitters.base",)), (path, mod)
