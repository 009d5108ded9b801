"""The Keras/TensorFlow emitter as a whole: CNTK fixture networks against CNTK's own
outputs, layout (transposes only at the boundary), hostile names, determinism,
atomic outputs, and the files loading without mmconv."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters import get_emitter
from mmconv.emitters.keras import build_model, emit_code, emit_model, generate
from mmconv.errors import UnsupportedError, UsageError
from mmconv.frontends.cntk import convert
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close

keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "cntk"

#: CNTK fixtures (v2 files) that must match CNTK's stored outputs through Keras.
NETWORKS = [
    "convnet", "mlp", "dense_chw", "residual", "bn_per_element", "inception_mini",
    "alexnet_mini", "conv_strides", "conv_even_kernel", "conv_even_kernel_strided",
    "conv_valid", "conv_groups", "conv_depthwise", "conv_dilation", "conv_explicit_pads",
    "conv_ops_autopad_mixed", "conv_transpose", "conv_transpose_auto",
    "conv_transpose_explicit_pads", "conv1d", "pool_variants", "pool_explicit_pads", "lrn",
    "layer_norm", "act_elu", "act_selu", "act_leaky_relu", "act_softplus", "act_sigmoid_tanh",
    "act_softmax_axis", "act_hardmax", "act_param_relu", "math_unary", "math_unary_positive",
    "math_binary", "compare_select", "shape_ops", "shape_ops_legacy", "reductions", "times",
    "combine_two", "with_loss", "with_loss_axis", "criteria_only", "float64", "float16",
]
#: Fixtures Keras cannot take yet, and why (asserted, so the list stays honest).
NOT_YET = {"roipooling": "MaxRoiPool", "fast_rcnn_mini": "MaxRoiPool"}


def _io(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    io = np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False)
    ins = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
    outs = {str(n): io[f"out_{i}"] for i, n in enumerate(io["output_names"])}
    return ins, outs


def _run(model: object, graph: Graph, ins: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    got = model([ins[v.name] for v in graph.inputs])  # type: ignore[operator]
    return {k: np.asarray(v) for k, v in got.items()}


@pytest.mark.parametrize("name", NETWORKS)
def test_fixture_matches_cntk(name: str) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    ins, refs = _io(name)
    model, _ = build_model(graph)
    got = _run(model, graph, ins)
    assert list(got) == list(graph.outputs) or set(got) == set(graph.outputs)
    for out, ref in refs.items():
        if out not in graph.outputs:
            continue  # with_loss: the training-only outputs are dropped on purpose
        assert got[out].shape == ref.shape and got[out].dtype == ref.dtype, out
        assert_close(ref, got[out], name=f"{name}:{out}")


def test_every_fixture_is_classified() -> None:
    names = {p.name[: -len(".v2.model")] for p in FIXTURES.glob("*.v2.model")}
    assert names - set(NETWORKS) - set(NOT_YET) == set()


@pytest.mark.parametrize("name", sorted(NOT_YET))
def test_unsupported_fixture_names_the_node(name: str) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    with pytest.raises(UnsupportedError, match=NOT_YET[name]):
        generate(graph)


@pytest.mark.parametrize("name", ["convnet", "residual", "inception_mini", "alexnet_mini"])
def test_conv_nets_transpose_once_per_input_and_nowhere_inside(name: str) -> None:
    graph = convert(None, str(FIXTURES / f"{name}.v2.model"))
    gen = generate(graph)
    kinds = [t.kind for t in gen.transposes]
    assert kinds.count("input") == len(graph.inputs)
    assert "internal" not in kinds
    # outputs are class scores (rank 2): nothing to transpose back
    assert "output" not in kinds
    assert gen.code.count("layers.Permute(") == len(graph.inputs)


def test_feature_map_outputs_go_back_to_nchw_and_nhwc_io_has_no_transposes() -> None:
    graph = convert(None, str(FIXTURES / "pool_variants.v2.model"))
    ins, refs = _io("pool_variants")
    gen = generate(graph)
    assert [t.kind for t in gen.transposes] == ["input"] + ["output"] * len(graph.outputs)
    model, gen = build_model(graph, nhwc_io=True)
    assert gen.transposes == []
    got = model([ins["x"].transpose(0, 2, 3, 1)])
    for out, ref in refs.items():
        assert_close(ref, np.asarray(got[out]).transpose(0, 3, 1, 2), name=out)


def test_dense_after_flatten_permutes_weights_not_activations() -> None:
    graph = convert(None, str(FIXTURES / "convnet.v2.model"))
    code = generate(graph).code
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
    got = model([x])
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
    graph = convert(None, str(FIXTURES / "roipooling.v2.model"))
    for target in ("keras", "tensorflow"):
        out = tmp_path / f"m.{target}"
        with pytest.raises(UnsupportedError, match="roipool/pool"):
            get_emitter(target).emit_model(graph, out)
        with pytest.raises(UnsupportedError):
            get_emitter(target).emit_code(graph, tmp_path / "m.py", tmp_path / "w.npz")
    assert list(tmp_path.iterdir()) == []


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    graph = convert(None, str(FIXTURES / "mlp.v2.model"))
    for target in ("keras", "tensorflow"):
        with pytest.raises(UsageError, match="opset"):
            get_emitter(target).emit_model(graph, tmp_path / "m", opset=13)
    assert list(tmp_path.iterdir()) == []


# -- files that load without mmconv ----------------------------------------------------
_LOADER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, tensorflow as tf
assert "mmconv" not in sys.modules
keras_path, sm_path, x_path = sys.argv[1:4]
x = np.load(x_path)
m = keras.models.load_model(keras_path)
a = {k: np.asarray(v) for k, v in m(x).items()}
sig = tf.saved_model.load(sm_path).signatures["serving_default"]
names = list(sig.structured_input_signature[1])
b = {k: v.numpy() for k, v in sig(**{names[0]: tf.constant(x)}).items()}
np.savez(sys.argv[4], **{"k/" + k: v for k, v in a.items()}, **{"t/" + k: v for k, v in b.items()})
print(json.dumps({"inputs": names, "outputs": sorted(b)}))
"""


def test_keras_file_and_saved_model_load_without_mmconv(tmp_path: Path) -> None:
    graph = convert(None, str(FIXTURES / "convnet.v2.model"))
    ins, refs = _io("convnet")
    emit_model(graph, tmp_path / "convnet.keras")
    get_emitter("tensorflow").emit_model(graph, tmp_path / "convnet_tf")
    assert (tmp_path / "convnet_tf" / "saved_model.pb").is_file()
    np.save(tmp_path / "x.npy", ins["features"])
    script = tmp_path / "load.py"
    script.write_text(_LOADER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "convnet.keras"),
         str(tmp_path / "convnet_tf"), str(tmp_path / "x.npy"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info == {"inputs": ["features"], "outputs": ["prob"]}
    with np.load(tmp_path / "out.npz") as data:
        assert_close(refs["prob"], data["k/prob"], name="keras")
        assert_close(refs["prob"], data["t/prob"], name="saved model")
