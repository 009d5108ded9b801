"""End to end against real CNTK: fixture (.v2.model) -> IR -> ONNX -> onnxruntime vs the
outputs CNTK 2.7 computed for the same inputs (``<name>.io.npz``, batch of 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.cli import mmtoir
from mmconv.errors import MmconvError, UnsupportedError
from mmconv.frontends.cntk import convert, read_model
from mmconv.frontends.cntk.builder import convert_model
from mmconv.ir import Graph
from mmconv.verify.compare import assert_close
from tests.frontends.cntk._common import FIXTURES, fixture

onnx_emitter = pytest.importorskip("mmconv.emitters.onnx")
onnx_runner = pytest.importorskip("mmconv.verify.onnx_runner")

#: Every fixture: each one's every op converts and must match CNTK.  float64 runs
#: through onnx.reference (onnxruntime has no float64 Conv kernel).
SUPPORTED = [
    "act_elu", "act_hardmax", "act_leaky_relu", "act_param_relu", "act_selu", "act_softplus",
    "act_sigmoid_tanh", "act_softmax_axis", "alexnet_mini", "bn_per_element", "combine_two",
    "compare_select", "conv1d", "conv_depthwise", "conv_dilation", "conv_even_kernel",
    "conv_even_kernel_strided", "conv_explicit_pads", "conv_groups", "conv_ops_autopad_mixed",
    "conv_strides", "conv_transpose", "conv_transpose_auto", "conv_transpose_explicit_pads",
    "conv_valid", "convnet",
    "dense_chw", "fast_rcnn_mini", "float16", "float64", "inception_mini", "layer_norm", "lrn",
    "math_binary", "math_unary", "math_unary_positive", "mlp", "pool_explicit_pads",
    "pool_variants", "reductions", "residual", "roipooling", "shape_ops", "shape_ops_legacy",
    "times",
    "with_loss", "with_loss_axis", "criteria_only", "const_subgraph",
]
#: Saved with training criteria, which the frontend drops (tests/frontends/cntk/test_criteria.py).
WITH_CRITERIA = ("with_loss", "with_loss_axis", "criteria_only")


def run_graph(graph: Graph, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph as ONNX, run by onnxruntime; by onnx.reference when it holds float64
    values (onnxruntime lacks float64 kernels for Conv and others)."""
    model = onnx_emitter.build_model(graph)
    if any(v.dtype == "float64" for v in graph.values.values()):
        from onnx.reference import ReferenceEvaluator

        return list(ReferenceEvaluator(model).run(None, feed))
    return onnx_runner.run_onnx(model.SerializeToString(), feed)


def _io(name: str) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    io = np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False)
    in_names = [str(n) for n in io["input_names"]]
    out_names = [str(n) for n in io["output_names"]]
    ins = [io[f"in_{i}"] for i in range(len(in_names))]
    outs = [io[f"out_{i}"] for i in range(len(out_names))]
    return ins, outs, in_names, out_names


@pytest.mark.parametrize("name", SUPPORTED)
def test_matches_cntk(name: str) -> None:
    graph = convert(None, str(fixture(name)))
    ins, refs, in_names, out_names = _io(name)
    assert graph.metadata["source_framework"] == "cntk"
    assert graph.metadata["layout"] == "NCHW"
    assert graph.outputs == out_names or name in WITH_CRITERIA
    feed = {n: x for n, x in zip(in_names, ins, strict=True)
            if n in {v.name for v in graph.inputs}}
    got = run_graph(graph, feed)
    by_name = dict(zip(graph.outputs, got, strict=True))
    for out, ref in zip(out_names, refs, strict=True):
        if out not in by_name:
            continue  # a training-only output (WITH_CRITERIA) is dropped on purpose
        assert by_name[out].dtype == ref.dtype, out
        assert_close(ref, by_name[out], name=f"{name}:{out}")


def test_every_fixture_is_classified() -> None:
    names = {p.name[: -len(".v2.model")] for p in FIXTURES.glob("*.v2.model")}
    unknown = names - set(SUPPORTED)
    assert not unknown, f"new fixtures to classify: {sorted(unknown)}"


def test_unsupported_ops_fail_clearly() -> None:
    """Ops without a converter are collected and named, with counts, in one error."""
    model = read_model(fixture("convnet"))
    for f in model.functions:
        if f.op in ("Convolution", "ReLU"):
            f.op = f"Made{f.op}Up"
    with pytest.raises(UnsupportedError, match=r"MadeConvolutionUp x\d+ \(.*MadeReLUUp x"):
        convert_model(model)


def test_training_outputs_dropped_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    graph = convert(None, str(fixture("with_loss")))
    err = caplog.text
    assert "dropped training-only outputs" in err and "CrossEntropyWithSoftmax" in err
    assert "labels" in err
    assert [v.name for v in graph.inputs] == ["features"]


def test_training_outputs_notice_on_cli_stderr(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The notice is a log record; the console scripts print it as one line on stderr."""
    assert mmtoir.main(["-f", "cntk", "-n", str(fixture("with_loss")),
                        "-d", str(tmp_path / "ir")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("mmtoir: dropped training-only outputs"), err
    assert err.count("\n") == 1 and "CrossEntropyWithSoftmax" in err


def test_v1_training_outputs_recognised(caplog: pytest.LogCaptureFixture) -> None:
    """A v1 file has no blocks: the criteria are recognised from their primitives."""
    graph = convert(None, str(fixture("with_loss", "v1")))
    assert len(caplog.records) == 1
    err = caplog.text
    assert "CrossEntropyWithSoftmax" in err and "ClassificationError" in err
    assert "labels" in err
    assert [v.name for v in graph.inputs] == ["features"]
    assert len(graph.outputs) == 1


def test_dst_node_name_picks_outputs() -> None:
    graph = convert(None, str(fixture("combine_two")), output_names=["head_a"])
    assert graph.outputs == ["head_a"]
    with pytest.raises(MmconvError, match="nope"):
        convert(None, str(fixture("combine_two")), output_names=["nope"])


def test_input_shapes_checked() -> None:
    graph = convert(None, str(fixture("convnet")), input_shapes=[(3, 32, 32)])
    assert graph.inputs[0].shape == (None, 3, 32, 32)
    with pytest.raises(MmconvError, match="features"):
        convert(None, str(fixture("convnet")), input_shapes=[(3, 64, 64)])


def test_names_follow_layers() -> None:
    graph = convert(None, str(fixture("convnet")))
    assert any(k.endswith("/W") for k in graph.weights)
    assert any(k.endswith("/mean") for k in graph.weights)
    assert not any(n.op in ("Identity", "Add") for n in graph.nodes)  # dropout gone, bias fused
    convs = [n for n in graph.nodes if n.op == "Conv"]
    assert convs and any(n.input(2) for n in convs)  # conv1 has a bias (conv2 has none)
