"""IR Scan through the Keras emitter: ``layers.RNN`` over the custom ScanCell.

The shared Scan cases (tests/emitters/ir_cases.py SCAN_CASES) run in test_keras_ops;
here, what they do not reach: a body with a trainable layer (Dense) and multi-axis
states and step values (the cell flattens and reshapes them), a [N]-per-step input
and output, the shared edge forms (no state, no step output, a rank-1 state), body
names repeating outer ones, float64, a [1, H] state fed at run time, the ``.keras``
file saved and loaded in a fresh interpreter (the body's config nests in the cell's)
and gradients reaching the body's layer.  Oracle: the IR's numpy evaluator
(``mmconv.ir.scan.run_graph``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.keras import build_model, code_to_model, emit_code
from mmconv.errors import UnsupportedError
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.scan import run_graph
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES, scan_edge_forms
from .outputs import named

keras = pytest.importorskip("keras")
RNG = np.random.default_rng(11)


def _rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.uniform(-1, 1, size=shape) * scale).astype(np.float32)


def dense_loop(reverse: int = 0) -> tuple[Graph, dict[str, np.ndarray]]:
    """m [N, 2, 3] (a matrix state), c [1, 4] constant initial state broadcast to the
    batch; scan inputs x [N, T, 2, 3] and a per-step scalar s [N, T]:
        m' = tanh(m * x_t + s_t),  c' = relu(Dense(flatten(m')) + c)
    outputs m'(the final), c', the steps of c' and of sum(m', axes 1, 2) ([N, T])."""
    g = Graph("dense_loop")
    g.add_input("m0", "float32", [None, 2, 3])
    g.add_input("x", "float32", [None, None, 2, 3])
    g.add_input("s", "float32", [None, None])
    g.add_weight("loop/c0", _rand(1, 4))
    g.add_weight("loop/W", _rand(4, 6, scale=0.8))
    g.add_weight("loop/B", _rand(4, scale=0.5))
    b = Graph("step")
    b.add_input("m", "float32", [None, 2, 3])
    b.add_input("c", "float32", [None, 4])
    b.add_input("x_t", "float32", [None, 2, 3])
    b.add_input("s_t", "float32", [None])
    b.add_node("Mul", ["m", "x_t"], "mx")
    b.add_node("Reshape", ["s_t"], "s_col", shape=(-1, 1, 1))
    b.add_node("Add", ["mx", "s_col"], "m_pre")
    b.add_node("Tanh", ["m_pre"], "m_new")
    b.add_node("Flatten", ["m_new"], "m_flat", axis=1)
    b.add_node("Dense", ["m_flat", "loop/W", "loop/B"], "fc")
    b.add_node("Add", ["fc", "c"], "c_pre")
    b.add_node("Relu", ["c_pre"], "c_new")
    b.add_node("ReduceSum", ["m_new"], "m_sum", axes=(1, 2), keepdims=False)
    b.outputs = ["m_new", "c_new", "c_new", "m_sum"]
    g.add_node("Scan", ["m0", "loop/c0", "x", "s"], "loop",
               outputs=["m_last", "c_last", "cs", "sums"], body=b, num_states=2,
               reverse=reverse)
    g.outputs = ["m_last", "c_last", "cs", "sums"]
    n, t = 3, 5
    feeds = {"m0": _rand(n, 2, 3), "x": _rand(n, t, 2, 3, scale=1.5), "s": _rand(n, t)}
    return infer_shapes(g), feeds


def _check(graph: Graph, feeds: dict[str, np.ndarray], got: dict) -> None:
    want = run_graph(graph, feeds)
    for out, ref in zip(graph.outputs, want, strict=True):
        have = np.asarray(got[out])
        assert have.shape == ref.shape, (out, have.shape, ref.shape)
        assert_close(ref, have, name=out)


@pytest.mark.parametrize("reverse", [0, 1])
def test_body_with_a_layer_and_multi_axis_values(reverse: int) -> None:
    graph, feeds = dense_loop(reverse)
    model, gen = build_model(graph)
    assert "ScanCell(" in gen.code and "layers.Dense(" in gen.code
    _check(graph, feeds, named(model([feeds[v.name] for v in graph.inputs]), graph.outputs))
    # the body's Dense trains with the model
    names = [w.path for w in model.trainable_weights]
    assert names == ["fc/kernel", "fc/bias"], names


@pytest.mark.parametrize("name", ["map_only", "states_only"])
def test_edge_forms(name: str) -> None:
    """No state (a map over time; the cell carries one zero column); no step output (one
    zero column out), a rank-1 [1] state, a weight read inside and outside the loop."""
    graph, feeds = scan_edge_forms()[name]
    model, _ = build_model(infer_shapes(graph))
    _check(graph, feeds, named(model([feeds[v.name] for v in graph.inputs]), graph.outputs))


def test_gradients_reach_the_body_layer() -> None:
    import tensorflow as tf

    graph, feeds = dense_loop()
    model, _ = build_model(graph)
    with tf.GradientTape() as tape:
        out = named(model([feeds[v.name] for v in graph.inputs]), graph.outputs)
        loss = tf.reduce_sum(out["cs"]) + tf.reduce_sum(out["sums"])
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_dynamic_step_dims_refused_in_one_line() -> None:
    g = Graph("dyn")
    g.add_input("x", "float32", [None, None, None])
    b = Graph("step")
    b.add_input("x_t", "float32", [None, None])
    b.add_node("Relu", ["x_t"], "y")
    b.outputs = ["y"]
    g.add_node("Scan", ["x"], "loop", outputs=["ys"], body=b, num_states=0)
    g.outputs = ["ys"]
    with pytest.raises(UnsupportedError, match=r"node 'loop' \(Scan\): scan input 'x' has "
                                               "dynamic non-batch dims") as err:
        build_model(g)
    assert "\n" not in str(err.value)


_FRESH = r"""
import importlib.util, sys
import numpy as np, keras
code, saved, feeds_path, order = sys.argv[1:5]
feeds = dict(np.load(feeds_path))
spec = importlib.util.spec_from_file_location("model", code)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = keras.models.load_model(saved)
out = model([feeds[k] for k in order.split(",")])
np.savez(feeds_path + ".out.npz", **{k: np.asarray(v) for k, v in out.items()})
print("MMCONV", "mmconv" in sys.modules)
"""


def test_keras_file_loads_in_a_fresh_interpreter(tmp_path: Path) -> None:
    graph, feeds = dense_loop(reverse=1)
    code, weights, saved = tmp_path / "model.py", tmp_path / "weights.npz", \
        tmp_path / "model.keras"
    emit_code(graph, code, weights)
    code_to_model(code, weights, saved)
    np.savez(tmp_path / "in.npz", **feeds)
    (tmp_path / "fresh.py").write_text(_FRESH)
    done = subprocess.run([sys.executable, str(tmp_path / "fresh.py"), str(code), str(saved),
                           str(tmp_path / "in.npz"), ",".join(v.name for v in graph.inputs)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["MMCONV", "False"], done.stdout
    _check(graph, feeds, dict(np.load(tmp_path / "in.npz.out.npz")))


def test_float64_reverse_loop_keeps_its_dtype() -> None:
    """h = tanh(flatten(x_t) W + h) backwards from a constant [1, 4] state, in float64."""
    g = Graph("f64_loop")
    g.add_input("x", "float64", [None, None, 3, 2])
    g.add_weight("h0", RNG.uniform(-1, 1, (1, 4)))
    g.add_weight("W", RNG.uniform(-1, 1, (6, 4)))
    b = Graph("step")
    b.add_input("h", "float64", [None, 4])
    b.add_input("x_t", "float64", [None, 3, 2])
    b.add_node("Flatten", ["x_t"], "xf", axis=1)
    b.add_node("MatMul", ["xf", "W"], "xw")
    b.add_node("Add", ["xw", "h"], "pre")
    b.add_node("Tanh", ["pre"], "hn")
    b.outputs = ["hn", "hn"]
    g.add_node("Scan", ["h0", "x"], "loop", outputs=["last", "all"], body=b, num_states=1,
               reverse=1)
    g.outputs = ["last", "all"]
    infer_shapes(g)
    feeds = {"x": RNG.uniform(-1, 1, (2, 5, 3, 2))}
    model, _ = build_model(g)
    got = named(model([feeds["x"]]), g.outputs)
    assert all(np.asarray(v).dtype == np.float64 for v in got.values())
    _check(g, feeds, got)


def test_runtime_state_of_batch_one_is_broadcast() -> None:
    """A state input fed [1, H] while the scan input has N = 3 rows (s = s + x_t)."""
    g = Graph("sum_loop")
    g.add_input("s0", "float32", [None, 4])
    g.add_input("x", "float32", [None, None, 4])
    b = Graph("step")
    b.add_input("s", "float32", [None, 4])
    b.add_input("x_t", "float32", [None, 4])
    b.add_node("Add", ["s", "x_t"], "s_new")
    b.outputs = ["s_new", "s_new"]
    g.add_node("Scan", ["s0", "x"], "loop", outputs=["last", "sums"], body=b, num_states=1)
    g.outputs = ["last", "sums"]
    infer_shapes(g)
    feeds = {"s0": _rand(1, 4), "x": _rand(3, 5, 4)}
    model, _ = build_model(g)
    _check(g, feeds, named(model([feeds["s0"], feeds["x"]]), g.outputs))


def test_body_names_that_repeat_outer_names() -> None:
    """A body's values may be named like outer ones (its own name space in the IR) or
    like an outer weight (which it then shadows): no generated variable is reused."""
    c = CASES["scan_elman"]()
    body = c.graph.nodes[0].attrs["body"]
    rename = {"h": "h0", "x_t": "x", "h_new": "h_last", "xw": "h_all", "hr": "scan/b"}
    body.inputs = [type(v)(rename.get(v.name, v.name), v.dtype, v.shape) for v in body.inputs]
    for node in body.nodes:
        node.inputs = [rename.get(i, i) for i in node.inputs]
        node.outputs = [rename.get(o, o) for o in node.outputs]
    body.outputs = [rename.get(o, o) for o in body.outputs]
    # "pre_b" read the outer bias "scan/b", now shadowed by the body's own "scan/b" (hr)
    graph = infer_shapes(c.graph)
    model, _ = build_model(graph)
    _check(graph, c.feeds, named(model([c.feeds[v.name] for v in graph.inputs]),
                                 graph.outputs))



def test_a_body_node_keras_cannot_express_is_named_in_one_line() -> None:
    """A dilated average pool in a step: refused naming the Scan and the body node."""
    g = Graph("pool_loop")
    g.add_input("x", "float32", [None, None, 2, 6, 6])
    b = Graph("step")
    b.add_input("x_t", "float32", [None, 2, 6, 6])
    b.add_node("AveragePool", ["x_t"], "pooled", kernel_shape=(2, 2), dilations=(2, 2))
    b.add_node("Flatten", ["pooled"], "y", axis=1)
    b.outputs = ["y"]
    g.add_node("Scan", ["x"], "loop", outputs=["ys"], body=b, num_states=0)
    g.outputs = ["ys"]
    with pytest.raises(UnsupportedError) as err:
        build_model(g)
    text = str(err.value)
    assert text.startswith("node 'loop' (Scan): its body cannot be emitted: node 'pooled' "
                           "(AveragePool)") and "dilated pooling" in text, text
    assert "\n" not in text and text.count("(Keras target)") == 1, text


def test_per_layer_probe_reads_a_model_with_a_loop(tmp_path: Path) -> None:
    """``mmverify --layers``: the probe loads the file (registering the cells) and reads
    the values the loop's outputs are written to."""
    from mmconv.emitters.keras import emit_model
    from mmconv.emitters.keras.probe import probe

    graph, feeds = dense_loop()
    emit_model(graph, tmp_path / "m.keras")
    got = probe(tmp_path / "m.keras", graph, feeds, ["m_last", "cs"])
    assert "m_last" in got
    want = dict(zip(graph.outputs, run_graph(graph, feeds), strict=True))
    for name, value in got.items():
        assert_close(want[name], value, name=name)
