"""IR Scan as one ONNX Scan node: onnxruntime against the IR's numpy evaluator, the node's
form (batch axis kept, reverse by directions, no Transpose), outer weights read from the
outer scope, names that would shadow, and a time axis of any length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from mmconv.emitters.onnx import EmitContext, build_model, emit_model
from mmconv.ir import Graph, infer_shapes
from mmconv.ir.scan import run_graph
from mmconv.ir.usedef import outer_reads
from mmconv.verify.compare import assert_close
from mmconv.verify.onnx_runner import OnnxRunner

from ..ir_cases import CASES, SCAN_CASES, scan_edge_forms


def _ops(graph: onnx.GraphProto) -> list[str]:
    """Op types of ``graph`` and of every subgraph in it."""
    ops = []
    for node in graph.node:
        ops.append(node.op_type)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                ops += _ops(attr.g)
    return ops


def _check_against_evaluator(graph: Graph, model: onnx.ModelProto,
                             feeds: dict[str, np.ndarray], label: str) -> None:
    want = run_graph(infer_shapes(graph), feeds)
    got = OnnxRunner(model).run(feeds)
    assert len(got) == len(want)
    for i, (w, h) in enumerate(zip(want, got, strict=True)):
        assert h.shape == w.shape, (label, i, h.shape, w.shape)
        assert_close(w, h, name=f"{label} output {i}")


@pytest.mark.parametrize("opset", [9, 13, 21])
@pytest.mark.parametrize("name", sorted(SCAN_CASES))
def test_scan_runs_as_the_evaluator_says(name: str, opset: int) -> None:
    c = CASES[name]()
    model = build_model(c.graph, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    _check_against_evaluator(c.graph, model, c.feeds, f"{name}@{opset}")
    ops = _ops(model.graph)
    assert ops.count("Scan") == 1 and "Transpose" not in ops, ops
    (scan,) = [n for n in model.graph.node if n.op_type == "Scan"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in scan.attribute}
    m = attrs["num_scan_inputs"]
    assert attrs["scan_input_axes"] == [1] * m
    reverse = c.graph.nodes[0].attr("reverse")
    assert ("scan_input_directions" in attrs) == bool(reverse)
    # the outer weights the body reads are main-graph initializers, stored once
    body = attrs["body"]
    outer = {t.name for t in model.graph.initializer}
    reads = {i for n in body.node for i in n.input} - {v.name for v in body.input} \
        - {o for n in body.node for o in n.output}
    assert reads == set(outer_reads(c.graph.nodes[0])) and reads <= outer
    assert not {t.name for t in body.initializer} & set(c.graph.weights)


@pytest.mark.parametrize("t", [1, 9])
def test_any_time_length(t: int, tmp_path: Path) -> None:
    """One model file (weights streamed by emit_model) runs sequences of any length."""
    c = CASES["scan_two_states_two_inputs"]()
    path = tmp_path / "m.onnx"
    emit_model(c.graph, path, opset=17)
    rng = np.random.default_rng(t)
    feeds = {"a0": rng.standard_normal((3, 4)).astype(np.float32),
             "u": rng.standard_normal((3, t, 4)).astype(np.float32),
             "v": rng.standard_normal((3, t, 4)).astype(np.float32)}
    _check_against_evaluator(c.graph, onnx.load(str(path)), feeds, f"T={t}")


def test_body_names_that_shadow_outer_names() -> None:
    """A body may reuse outer value names (its own name space in the IR); the ONNX body
    gets fresh names so none shadows an outer one."""
    c = CASES["scan_elman"]()
    body = c.graph.nodes[0].attrs["body"]
    rename = {"h": "h0", "x_t": "x", "h_new": "h_last", "xw": "h_all"}
    for v_index, value in enumerate(body.inputs):
        body.inputs[v_index] = type(value)(rename.get(value.name, value.name), value.dtype,
                                           value.shape)
    for node in body.nodes:
        node.inputs = [rename.get(i, i) for i in node.inputs]
        node.outputs = [rename.get(o, o) for o in node.outputs]
    body.outputs = [rename.get(o, o) for o in body.outputs]
    model = build_model(c.graph, opset=13)
    onnx.checker.check_model(model, full_check=True)
    _check_against_evaluator(c.graph, model, c.feeds, "shadowing names")


def test_a_weight_the_body_reads_counts_as_used() -> None:
    """Handlers may store a weight read once in another layout; a body read is a read."""
    c = CASES["scan_elman"]()
    ctx = EmitContext(infer_shapes(c.graph), 13)
    assert ctx.uses("scan_elman/W") == 1


@pytest.mark.parametrize("opset", [9, 17])
@pytest.mark.parametrize("name", ["map_only", "states_only"])
def test_edge_forms(name: str, opset: int) -> None:
    graph, feeds = scan_edge_forms()[name]
    model = build_model(graph, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    _check_against_evaluator(graph, model, feeds, f"{name}@{opset}")
    body = next(n for n in model.graph.node if n.op_type == "Scan").attribute
    sub = next(a.g for a in body if a.name == "body")
    consts = {t.name for t in sub.initializer}  # the handlers' constants, no IR weight
    assert not consts & set(graph.weights)
    assert ("d/zero_bias" in consts) == (opset < 11)
