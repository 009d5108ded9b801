"""The PyTorch emitter as a whole: files, TorchScript, names, determinism, errors, pools."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmconv.emitters.pytorch as torch_emitter
from mmconv.emitters import get_emitter
from mmconv.emitters.pytorch.script import import_code, state_dict_path
from mmconv.errors import UnsupportedError, UsageError
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close
from mmconv.verify.runners import RUNNERS
from tests.emitters import reference as ref
from tests.emitters.ir_cases import conv_net, conv_net_reference

from ._common import run_both


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((3, 3, 12, 12)).astype(np.float32)


# -- mmtocode: the code -------------------------------------------------------------
def test_code_is_idiomatic_and_has_no_transposes(tmp_path: Path) -> None:
    g = conv_net()
    torch_emitter.emit_code(g, tmp_path / "model.py", tmp_path / "weights.pth")
    code = (tmp_path / "model.py").read_text()
    for layer in ("self.conv1 = nn.Conv2d(3, 8, kernel_size=(3, 3), padding=(1, 1))",
                  "self.bn1 = nn.BatchNorm2d(8)",
                  "self.pool1 = nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2), ceil_mode=True)",
                  "self.fc = nn.Linear(16, 10)",
                  "def forward(self, data: torch.Tensor) -> torch.Tensor:",
                  "conv2 = self.conv2(F.pad(pool1, [0, 1, 0, 1]))",
                  "prob = F.softmax(fc, dim=1)"):
        assert layer in code
    assert "permute" not in code and "transpose" not in code
    forward = code.split("def forward")[1].splitlines()[1:]
    assert len(forward) == len(g.nodes) + 1  # one line per node, then return
    assert "\ndef _" not in code  # no helper needed for a plain conv net


def test_weights_are_a_state_dict(tmp_path: Path, data: np.ndarray) -> None:
    g = conv_net()
    torch_emitter.emit_code(g, tmp_path / "model.py", tmp_path / "weights.pth")
    state = torch.load(tmp_path / "weights.pth", weights_only=True)
    np.testing.assert_array_equal(state["conv1.weight"].numpy(), g.weights["conv1/W"])
    assert state["bn1.running_var"].shape == (8,)  # [C,1,1] statistics stored as [C]
    with import_code(tmp_path / "model.py") as module:
        model = module.KitModel(str(tmp_path / "weights.pth"))
        assert not model.training
        assert set(model.state_dict()) == set(state)
        with torch.no_grad():
            got = model(torch.from_numpy(data)).numpy()
    assert_close(conv_net_reference(g, data), got)


def test_deterministic(tmp_path: Path) -> None:
    for run in ("a", "b"):
        torch_emitter.emit_code(conv_net(), tmp_path / f"{run}.py", tmp_path / f"{run}.pth")
    assert (tmp_path / "a.py").read_bytes() == (tmp_path / "b.py").read_bytes()
    assert (tmp_path / "a.pth").read_bytes() == (tmp_path / "b.pth").read_bytes()


HOSTILE = ["conv.1", "conv-1", "1conv", "class", "def", "import os", "a'b", 'a"b', "x\ny",
           "__import__('os').system('echo pwned')", "self", "torch", "forward", "training",
           "F", "register_buffer", "'''", '"""', "# comment", "a\\b", "None", "KitModel"]


def test_hostile_names(tmp_path: Path) -> None:
    """Every name a model can hold ends up as a plain identifier or a repr'd string."""
    g = Graph("'''\n\"\"\"__import__('os')")
    names = iter(HOSTILE)
    g.add_input(next(names), "float32", [None, 4])
    g.add_input(next(names), "float32", [None, 4])
    g.add_weight(next(names), np.arange(4, dtype=np.float32))
    g.add_weight(next(names), np.ones((3, 4), np.float32))
    a, b, w, fc_w = HOSTILE[:4]
    prev = g.add_node("Add", [a, w], next(names)).name
    prev = g.add_node("Mul", [prev, b], next(names)).name
    prev = g.add_node("Dense", [prev, fc_w], next(names)).name
    for name in names:
        prev = g.add_node("Relu" if len(g.nodes) % 2 else "Neg", [prev], name).name
    g.outputs = [prev, HOSTILE[4]]
    torch_emitter.emit_code(g, tmp_path / "m.py", tmp_path / "m.pth")
    code = (tmp_path / "m.py").read_text()
    ast.parse(code)
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id in ("__import__", "eval", "exec")]
    assert not calls
    assert not [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Attribute)
                and n.attr == "system"]
    rng = np.random.default_rng(0)
    feeds = {v.name: rng.standard_normal((2, 4)).astype(np.float32) for v in g.inputs}
    y = (feeds[a] + g.weights[w]) * feeds[b]
    y = y @ g.weights[fc_w].T
    for i in range(len(g.nodes) - 3):
        y = np.maximum(y, 0) if (i + 3) % 2 else -y
    eager, script, _ = run_both(g, feeds)
    for got in (eager, script):
        assert_close(y, got[0])
        np.testing.assert_array_equal(got[1], (feeds[a] + g.weights[w]))
    torch_emitter.emit_model(g, tmp_path / "m.pt")  # scripting copes with the names too


# -- mmconvert / mmtomodel: TorchScript -------------------------------------------------
def _run_pt(path: Path, *args: np.ndarray) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(path))
    with torch.no_grad():
        out = model(*(torch.from_numpy(a) for a in args))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def test_emit_model_torchscript_dynamic_batch(tmp_path: Path, data: np.ndarray) -> None:
    g = conv_net()
    path = tmp_path / "out" / "model.pt"
    get_emitter("pytorch").emit_model(g, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt", "model.pth"]
    for batch in (1, 3):
        (got,) = _run_pt(path, data[:batch])
        assert got.shape == (batch, 10)
        assert_close(conv_net_reference(g, data[:batch]), got)
    state = torch.load(state_dict_path(path), weights_only=True)
    np.testing.assert_array_equal(state["fc.weight"].numpy(), g.weights["fc/W"])


def test_code_to_model_and_load_without_mmconv(tmp_path: Path, data: np.ndarray) -> None:
    g = conv_net()
    torch_emitter.emit_code(g, tmp_path / "model.py", tmp_path / "weights.pth")
    torch_emitter.code_to_model(tmp_path / "model.py", tmp_path / "weights.pth",
                                tmp_path / "model.pt")
    np.save(tmp_path / "x.npy", data)
    script = textwrap.dedent(f"""
        import sys, numpy as np, torch
        m = torch.jit.load({str(tmp_path / 'model.pt')!r})
        y = m(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))).detach().numpy()
        np.save({str(tmp_path / 'y.npy')!r}, y)
        assert not any(k.startswith("mmconv") for k in sys.modules), "mmconv was imported"
    """)
    proc = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_close(conv_net_reference(g, data), np.load(tmp_path / "y.npy"))


def test_runner_for_verify(tmp_path: Path, data: np.ndarray) -> None:
    g = Graph("two")
    g.add_input("b", "float32", [None, 2])
    g.add_input("a", "float32", [None, 2])
    g.add_node("Sub", ["a", "b"], "diff")
    g.add_node("Relu", ["diff"], "r")
    g.outputs = ["r", "diff"]
    torch_emitter.emit_model(g, tmp_path / "m.pt")
    a, b = np.ones((3, 2), np.float32), np.full((3, 2), 2.0, np.float32)
    r, diff = RUNNERS.get("pytorch")(tmp_path / "m.pt", g, {"a": a, "b": b})
    np.testing.assert_array_equal(diff, a - b)
    np.testing.assert_array_equal(r, np.maximum(a - b, 0))


# -- errors and atomicity ------------------------------------------------------------
def _bad_graph() -> Graph:
    g = Graph("bad")
    g.add_input("x", "float32", [None, 4, 5, 6, 7])
    g.add_node("Pad", ["x"], "pad4", pads=(0, 1, 1, 1, 1, 0, 1, 1, 1, 1), mode="reflect")
    g.add_node("Relu", ["pad4"], "ok")
    g.add_weight("W", np.ones((2, 2, 1, 1, 1, 1), np.float32))
    g.add_input("y", "float32", [None, 2, 3, 3, 3, 3])
    g.add_node("Conv", ["y", "W"], "conv4d")
    g.outputs = ["ok", "conv4d"]
    return g


def test_all_unsupported_nodes_in_one_error(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError) as info:
        torch_emitter.emit_code(_bad_graph(), tmp_path / "m.py", tmp_path / "m.pth")
    message = str(info.value)
    assert "2 nodes" in message and "'pad4' (Pad)" in message
    assert "'conv4d' (Conv)" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_failures_leave_no_files(tmp_path: Path) -> None:
    (tmp_path / "m.pt").write_bytes(b"old")
    with pytest.raises(UnsupportedError):
        torch_emitter.emit_model(_bad_graph(), tmp_path / "m.pt")
    with pytest.raises(UsageError, match="no option"):
        torch_emitter.emit_model(conv_net(), tmp_path / "n.pt", opset=13)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert (tmp_path / "m.pt").read_bytes() == b"old"


def test_code_to_model_refuses_mismatched_weights(tmp_path: Path) -> None:
    torch_emitter.emit_code(conv_net(), tmp_path / "model.py", tmp_path / "weights.pth")
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UsageError, match="does not fit"):
        torch_emitter.code_to_model(tmp_path / "model.py", tmp_path / "other.pth",
                                    tmp_path / "model.pt")
    (tmp_path / "junk.pth").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="not a PyTorch state_dict"):
        torch_emitter.code_to_model(tmp_path / "model.py", tmp_path / "junk.pth",
                                    tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


# -- pooling: every way PyTorch's pools can differ from the IR's ---------------------------
_POOL_GRID = [
    (op, kernel, stride, pads, ceil, include)
    for op, kernel, stride, pads, ceil, include in itertools.product(
        ("MaxPool", "AveragePool"), (2, 3), (1, 2, 3),
        ((0, 0), (1, 1), (1, 0), (0, 2), (2, 1)), (False, True), (False, True))
    if not (op == "MaxPool" and include) and max(pads) < kernel
]


@pytest.mark.parametrize(("op", "kernel", "stride", "pads", "ceil", "include"), _POOL_GRID)
def test_pool_grid(op: str, kernel: int, stride: int, pads: tuple[int, int], ceil: bool,
                   include: bool) -> None:
    """Native layer, F.pad + layer, or the _pool helper: always the IR's numbers
    (including ceil_mode with count_include_pad, where the last window's overhang
    beyond the end padding is not counted)."""
    x = np.random.default_rng(5).standard_normal((2, 2, 7, 8)).astype(np.float32)
    attrs: dict[str, object] = {"kernel_shape": (kernel, 2),
                                "strides": (stride, 2),
                                "pads": (pads[0], 0, pads[1], 1), "ceil_mode": ceil}
    if op == "AveragePool":
        attrs["count_include_pad"] = include
    g = Graph("pool")
    g.add_input("x", "float32", [None, 2, 7, 8])
    g.add_node(op, ["x"], "p", **attrs)  # type: ignore[arg-type]
    g.outputs = ["p"]
    want = ref.pool(x, "max" if op == "MaxPool" else "avg", attrs["kernel_shape"],  # type: ignore[arg-type]
                    attrs["strides"], attrs["pads"], ceil_mode=ceil,  # type: ignore[arg-type]
                    count_include_pad=include)
    eager, script, _ = run_both(g, {"x": x})
    assert_close(want.astype(np.float32), eager[0])
    assert_close(want.astype(np.float32), script[0])


def test_pool_paths() -> None:
    """Symmetric pads stay in the layer; asymmetric ones become F.pad; only what PyTorch
    cannot express uses the helper."""
    def forward_line(**attrs: object) -> str:
        g = Graph("p")
        g.add_input("x", "float32", [None, 1, 9, 9])
        g.add_node(str(attrs.pop("op", "AveragePool")), ["x"], "p", **attrs)  # type: ignore[arg-type]
        g.outputs = ["p"]
        return torch_emitter.emit(g).source.split("def forward")[1].splitlines()[1].strip()

    assert forward_line(kernel_shape=(3, 3), pads=(1, 1, 1, 1)) == "p = self.p(x_)"
    assert forward_line(kernel_shape=(3, 3), pads=(1, 1, 1, 2), count_include_pad=True) == (
        "p = self.p(F.pad(x_, [0, 1, 0, 0]))")
    assert forward_line(op="MaxPool", kernel_shape=(3, 3), pads=(0, 1, 0, 0)) == (
        "p = self.p(F.pad(x_, [1, 0, 0, 0], value=-float('inf')))")
    assert forward_line(kernel_shape=(3, 3), pads=(1, 1, 1, 2)).startswith("p = _pool(x_,")


def test_trace_fallback_keeps_dynamic_batch(tmp_path: Path, data: np.ndarray,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Should scripting ever fail, the traced model still takes any batch size."""
    def no_script(*args: object, **kwargs: object) -> None:
        raise RuntimeError("scripting unavailable")

    monkeypatch.setattr(torch.jit, "script", no_script)
    g = conv_net()
    torch_emitter.emit_model(g, tmp_path / "traced.pt")
    monkeypatch.undo()
    for batch in (1, 3):
        (got,) = _run_pt(tmp_path / "traced.pt", data[:batch])
        assert_close(conv_net_reference(g, data[:batch]), got)
