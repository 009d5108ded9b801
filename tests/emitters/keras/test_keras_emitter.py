"""The Keras/TensorFlow emitter as a whole: CNTK fixture networks against CNTK's own
outputs, layout (transposes only at the boundary), hostile names, determinism,
atomic outputs, and the files loading without mmconv."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.emitters import get_emitter
from mmconv.emitters.keras import build_model, emit_code, generate
from mmconv.errors import UnsupportedError, UsageError
from mmconv.frontends.cntk import convert
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES as IR_CASES
from .outputs import named

keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "cntk"

#: Every CNTK fixture, as v2 and (where CNTK could save one) as a legacy v1 file; each
#: must match CNTK's stored outputs through Keras.
NAMES = sorted(p.name[: -len(".v2.model")] for p in FIXTURES.glob("*.v2.model"))
MANIFEST = {e["name"]: e for e in json.loads((FIXTURES / "MANIFEST.json").read_text())[
    "fixtures"]}
CASES = [(n, "v2") for n in NAMES] + [
    (n, "v1") for n in NAMES
    if (FIXTURES / f"{n}.v1.model").is_file() and MANIFEST.get(n, {}).get("v1_outputs")]
#: Fixtures whose converted outputs have no stored reference: CNTK saved only the
#: training criteria, the frontend converts what they score; it must run, no more.
NO_REFERENCE = {"criteria_only"}


@functools.cache
def _convert(name: str, fmt: str = "v2") -> Graph:
    """Each fixture is converted once per session (several tests read it)."""
    return convert(None, str(FIXTURES / f"{name}.{fmt}.model"))


def _io(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    io = np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False)
    ins = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
    outs = {str(n): io[f"out_{i}"] for i, n in enumerate(io["output_names"])}
    return ins, outs


def _references(name: str, fmt: str, graph: Graph) -> list[np.ndarray | None]:
    """The stored output for each graph output (None: no reference).

    v2 graphs keep CNTK's output names.  A v1 file names (and orders) its outputs
    its own way: MANIFEST's ``v1_outputs`` lists, in the legacy model's order, which
    ``out_<i>`` each is; training-only outputs the frontend dropped are skipped by shape.
    """
    _, refs = _io(name)
    if fmt == "v2" or all(o in refs for o in graph.outputs):
        return [refs.get(o) for o in graph.outputs]
    stored = list(refs.values())
    pending = [stored[o["index"]] for o in MANIFEST[name]["v1_outputs"]]
    found: list[np.ndarray | None] = []
    for out in graph.outputs:
        shape = tuple(graph.value(out).shape[1:])
        while pending and pending[0].shape[1:] != shape:
            pending.pop(0)
        found.append(pending.pop(0) if pending else None)
    return found


def _feeds(name: str, graph: Graph) -> list[np.ndarray]:
    """Inputs by name, or by position where a v1 file renamed them."""
    ins, _ = _io(name)
    names = [v.name for v in graph.inputs]
    return [ins[n] for n in names] if all(n in ins for n in names) else list(ins.values())


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[f"{n}.{f}" for n, f in CASES])
def test_fixture_matches_cntk(name: str, fmt: str) -> None:
    graph = _convert(name, fmt)
    model, _ = build_model(graph)
    got = named(model(_feeds(name, graph)), graph.outputs)
    for out, ref in zip(graph.outputs, _references(name, fmt, graph), strict=True):
        have = np.asarray(got[out])
        if ref is None:
            assert name in NO_REFERENCE, f"no reference for {name}.{fmt}:{out}"
            assert np.isfinite(have).all()
            continue
        assert have.shape == ref.shape and have.dtype == ref.dtype, out
        assert_close(ref, have, name=f"{name}.{fmt}:{out}")


def test_v1_fixtures_are_checked() -> None:
    """Every v1 file MANIFEST maps is among the cases (the mapping is not silently lost)."""
    v1 = {n for n, f in CASES if f == "v1"}
    assert {"alexnet_mini", "fast_rcnn_mini", "roipooling", "lrn", "convnet"} <= v1
    assert v1 == {n for n in NAMES if (FIXTURES / f"{n}.v1.model").is_file()}


CONV_NETS = [("convnet", "v2"), ("residual", "v2"), ("inception_mini", "v2"),
             ("alexnet_mini", "v2"), ("alexnet_mini", "v1"), ("fast_rcnn_mini", "v2"),
             ("fast_rcnn_mini", "v1"), ("lrn", "v1")]


@pytest.mark.parametrize(("name", "fmt"), CONV_NETS, ids=[f"{n}.{f}" for n, f in CONV_NETS])
def test_conv_nets_transpose_once_per_input_and_nowhere_inside(name: str, fmt: str) -> None:
    """One transpose per NCHW input, none inside (v1 LRN, ROI pooling and Fast R-CNN's
    heads included), none back: the outputs are scores/boxes (no channel axis) or, for
    the lrn fixture, the one feature-map output."""
    graph = _convert(name, fmt)
    gen = generate(graph)
    kinds = [t.kind for t in gen.transposes]
    maps = [v for v in graph.inputs if v.rank == 4]
    assert kinds.count("input") == len(maps)
    assert "internal" not in kinds
    assert kinds.count("output") == sum(graph.value(o).rank == 4 for o in graph.outputs)
    assert gen.code.count("layers.Permute(") == len(kinds)


def test_feature_map_outputs_go_back_to_nchw_and_nhwc_io_has_no_transposes() -> None:
    graph = _convert("pool_variants")
    ins, refs = _io("pool_variants")
    gen = generate(graph)
    assert [t.kind for t in gen.transposes] == ["input"] + ["output"] * len(graph.outputs)
    model, gen = build_model(graph, nhwc_io=True)
    assert gen.transposes == []
    got = named(model([ins["x"].transpose(0, 2, 3, 1)]), graph.outputs)
    for out, ref in refs.items():
        assert_close(ref, np.asarray(got[out]).transpose(0, 3, 1, 2), name=out)


def test_dense_after_flatten_permutes_weights_not_activations() -> None:
    code = generate(_convert("convnet")).code
    flatten = next(line for line in code.splitlines() if "layers.Flatten(" in line)
    assert "Permute" not in flatten and "transpose" not in flatten


# -- hostile names, determinism -----------------------------------------------------
HOSTILE = ["conv.1", "1st-layer", "class", "a'b\"c", "x\ny", "__import__('os').system('x')",
           "add", "exp_1", "ops", "layers", "weights", "model", "get_item", "input_layer"]


def hostile_graph() -> Graph:
    rng = np.random.default_rng(3)
    g = Graph("hostile'name\n")
    g.add_input(HOSTILE[5], "float32", [None, 2, 5, 5])
    g.add_weight("w'", rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    g.add_node("Conv", [HOSTILE[5], "w'"], HOSTILE[0], pads=(1, 1, 1, 1))
    g.add_node("Relu", [HOSTILE[0]], HOSTILE[1])
    g.add_node("Exp", [HOSTILE[1]], HOSTILE[2])
    g.add_node("Add", [HOSTILE[2], HOSTILE[0]], HOSTILE[3])
    prev = HOSTILE[3]
    for name in HOSTILE[4:5] + HOSTILE[6:]:
        g.add_node("Add" if name != "exp_1" else "Exp", [prev, prev] if name != "exp_1"
                   else [prev], name)
        prev = name
    g.add_node("Flatten", [prev], "flat.")
    g.add_weight("fc/W", rng.standard_normal((4, 75)).astype(np.float32))
    g.add_node("Dense", ["flat.", "fc/W"], "out put")
    g.outputs = ["out put", HOSTILE[0]]
    return g


def test_hostile_names_neither_break_nor_inject(tmp_path: Path) -> None:
    g = hostile_graph()
    gen = generate(g)
    tree = ast.parse(gen.code)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)}
    assert calls <= {"load_weights", "KitModel"}, calls  # no __import__ or eval
    assert "__import__(" not in gen.code.replace("'__import__(", "")
    model, _ = build_model(g)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    got = named(model([x]), g.outputs)
    assert set(got) == {"out put", HOSTILE[0]}
    assert got["out put"].shape == (2, 4) and got[HOSTILE[0]].shape == (2, 3, 5, 5)


def test_same_graph_same_bytes(tmp_path: Path) -> None:
    for i in (1, 2):
        emit_code(convert(None, str(FIXTURES / "inception_mini.v2.model")),
                  tmp_path / f"m{i}.py", tmp_path / f"w{i}.npz")
    assert (tmp_path / "m1.py").read_bytes() == (tmp_path / "m2.py").read_bytes()
    assert (tmp_path / "w1.npz").read_bytes() == (tmp_path / "w2.npz").read_bytes()
    with np.load(tmp_path / "w1.npz", allow_pickle=False) as data:
        assert data.files


def test_failed_emit_leaves_no_file(tmp_path: Path) -> None:
    graph = IR_CASES["conv_transpose"]().graph  # grouped ConvTranspose: refused
    for target in ("keras", "tensorflow"):
        out = tmp_path / f"m.{target}"
        with pytest.raises(UnsupportedError, match="grouped transposed convolution"):
            get_emitter(target).emit_model(graph, out)
        with pytest.raises(UnsupportedError):
            get_emitter(target).emit_code(graph, tmp_path / "m.py", tmp_path / "w.npz")
    assert list(tmp_path.iterdir()) == []


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    graph = _convert("mlp")
    for target in ("keras", "tensorflow"):
        with pytest.raises(UsageError, match="opset"):
            get_emitter(target).emit_model(graph, tmp_path / "m", opset=13)
    assert list(tmp_path.iterdir()) == []


# -- files that load without mmconv ----------------------------------------------------
def test_keras_file_and_saved_model_load_without_mmconv(standalone_run: dict[str, Any]
                                                         ) -> None:
    """fast_rcnn_mini (ROI pooling from keras.ops, two inputs, two outputs) as a .keras
    file and a SavedModel, each loaded and run in a fresh interpreter without mmconv
    (see conftest.standalone_run)."""
    run = standalone_run
    assert run["reports"], run["stderr"]
    info = run["reports"][0]
    assert info == {"inputs": ["features", "rois"], "outputs": ["bbox_regr", "cls_prob"],
                    "mmconv_imported": False}, run["stderr"]
    _, refs = _io("fast_rcnn_mini")
    with np.load(run["out"]) as data:
        for out in ("cls_prob", "bbox_regr"):
            assert_close(refs[out], data[f"k/{out}"], name=f"keras {out}")
            assert_close(refs[out], data[f"t/{out}"], name=f"saved model {out}")


def test_one_output_is_a_tensor_several_a_dict(tmp_path: Path) -> None:
    """As keras.applications models: model(x) is the tensor when there is one output."""
    import keras

    one = _convert("convnet")
    assert len(one.outputs) == 1
    model, _ = build_model(one)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert not isinstance(model([x]), dict)
    get_emitter("keras").emit_model(one, tmp_path / "one.keras")
    loaded = keras.models.load_model(tmp_path / "one.keras")
    assert tuple(loaded([x]).shape) == (2, 10)
    two = _convert("combine_two")
    assert len(two.outputs) == 2
    model, _ = build_model(two)
    feeds = [np.zeros((2, *v.shape[1:]), np.float32) for v in two.inputs]
    assert sorted(model(feeds)) == sorted(two.outputs)
