"""Every IR op case (tests/emitters/ir_cases.py) as an ML Program and a NeuralNetwork.

Core ML models cannot run off macOS, so each case is checked structurally:
the file loads with coremltools, declares the IR's inputs and outputs (names,
ranks, shapes), holds the MIL ops the IR op maps to, and stores every IR weight
bit for bit (read back from ``weight.bin`` by :mod:`.blobs`, independently of
the emitter's own checker).  The ML Program read back from the file is also
computed in numpy (:mod:`mmconv.emitters.coreml.evaluate`, MIL semantics, not
the Core ML runtime) and compared with the case's numpy oracle.  What Core ML
cannot express is pinned as a refusal with its message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.coreml import HANDLERS, emit_model, missing_handlers
from mmconv.emitters.coreml.check import check_model
from mmconv.emitters.coreml.evaluate import run_saved_program
from mmconv.errors import UnsupportedError
from mmconv.verify.compare import compare

from ..ir_cases import CASES, RECURRENT_CASES, RECURRENT_OPS, SCAN_CASES, SCAN_OPS
from .blobs import program_consts

#: (case, suffix or "*") -> part of the one-line refusal
REFUSED = {
    ("maxpool_dilated", "*"): "dilated pooling has no Core ML op",
    ("avgpool_dilated", "*"): "dilated pooling has no Core ML op",
    ("argmax_select_last", "*"): "select_last_index",
    ("max_roi_pool", "*"): "Core ML has no max ROI pooling",
    # a constant joined to the batch: the fixed batch must be the constant's (batch=2 works)
    ("concat_channels", "*"): "the dynamic batch was fixed to 1",
    # ops on constants alone: coremltools' NeuralNetwork backend writes them twice
    ("const_sigmoid_gate", ".mlmodel"): "cannot write this program as a neuralnetwork",
    ("const_chain_shape_ops", ".mlmodel"): "cannot write this program as a neuralnetwork",
    # Resize: only integer nearest upsampling, where every coordinate mode agrees
    **{(case, "*"): "nearest-neighbour upsampling by integer factors only" for case in (
        "resize_nearest_sizes_round_prefer_ceil", "resize_linear_2x_half_pixel",
        "resize_linear_align_corners_sizes", "resize_linear_asymmetric_2x",
        "resize_linear_pytorch_half_pixel_down", "resize_linear_fractional_scales")},
    ("resize_linear_3d_half_pixel", "*"): "H and W of a rank-4 input only",
    ("resize_nearest_1d_sizes_asymmetric", "*"): "H and W of a rank-4 input only",
}

#: IR op -> MIL op types of which at least one must be in its ML Program
MIL_OPS = {
    "Conv": {"conv"}, "ConvTranspose": {"conv_transpose"}, "MaxPool": {"max_pool"},
    "AveragePool": {"avg_pool"}, "GlobalAveragePool": {"reduce_mean"},
    "GlobalMaxPool": {"reduce_max"}, "BatchNormalization": {"batch_norm", "mul"},
    "LRN": {"local_response_norm"}, "LayerNormalization": {"layer_norm"},
    "Dense": {"linear", "matmul"}, "MatMul": {"matmul"}, "Relu": {"relu"},
    "Sigmoid": {"sigmoid"}, "Tanh": {"tanh"}, "Elu": {"elu"}, "LeakyRelu": {"leaky_relu"},
    "PRelu": {"prelu", "relu"}, "Softmax": {"softmax"}, "LogSoftmax": {"reduce_log_sum_exp"},
    "Softplus": {"softplus"}, "HardSigmoid": {"sigmoid_hard"}, "Selu": {"elu"},
    "Hardmax": {"one_hot"}, "Add": {"add"}, "Sub": {"sub"}, "Mul": {"mul"},
    "Div": {"real_div"}, "Pow": {"pow"}, "Max": {"maximum"}, "Min": {"minimum"},
    "Concat": {"concat"}, "Reshape": {"reshape"}, "Flatten": {"reshape"},
    "Transpose": {"transpose"}, "Slice": {"slice_by_index"}, "Pad": {"pad"},
    "Clip": {"clip", "maximum", "minimum"}, "ReduceMean": {"reduce_mean"},
    "ReduceSum": {"reduce_sum"}, "ReduceMax": {"reduce_max"}, "CumSum": {"cumsum"},
    "ArgMax": {"reduce_argmax"}, "ArgMin": {"reduce_argmin"}, "Where": {"select"},
    "Cast": {"cast"}, "Reciprocal": {"real_div"}, "Neg": {"mul"}, "Log": {"log"},
    "Gelu": {"gelu"}, "HardSwish": {"sigmoid_hard"}, "Mish": {"softplus"},
    "Softsign": {"softsign"}, "Erf": {"erf"}, "Sin": {"sin"}, "Cos": {"cos"},
    "And": {"logical_and"}, "Or": {"logical_or"}, "Xor": {"logical_xor"},
    "Mod": {"mod", "floor"}, "InstanceNormalization": {"instance_norm"},
    "ReduceL2": {"reduce_l2_norm"}, "Tile": {"tile"}, "Expand": {"tile"},
    "Gather": {"gather"}, "DepthToSpace": {"depth_to_space", "pixel_shuffle"},
    "SpaceToDepth": {"space_to_depth"}, "Resize": {"upsample_nearest_neighbor"},
    # with a fixed time length (test_coreml_recurrent.py)
    "LSTM": {"lstm"}, "GRU": {"gru"}, "RNN": {"rnn"},
}

SUFFIXES = (".mlpackage", ".mlmodel")


def _refusal(name: str, suffix: str) -> str | None:
    return REFUSED.get((name, suffix)) or REFUSED.get((name, "*"))


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("name", sorted(set(CASES) - RECURRENT_CASES - SCAN_CASES))
def test_case(ct, name: str, suffix: str, tmp_path: Path) -> None:
    case = CASES[name]()
    path = tmp_path / f"m{suffix}"
    refusal = _refusal(name, suffix)
    if refusal is not None:
        with pytest.raises(UnsupportedError, match=refusal.replace("(", r"\(")):
            emit_model(case.graph, path)
        assert not path.exists()
        assert list(tmp_path.iterdir()) == []  # no temp folder left behind
        return
    # the model's batch is the feeds' (an op over the batch axis must see all of it)
    batch = max([a.shape[0] for a in case.feeds.values() if a.ndim] or [1])
    emitted = emit_model(case.graph, path, batch=batch)
    report = check_model(path, emitted)
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    # the interface: IR names (sanitized), ranks and shapes, batch fixed to 1
    assert [f.shortDescription for f in spec.description.input] == [
        v.name for v in case.graph.inputs]
    assert [f.shortDescription for f in spec.description.output] == case.graph.outputs
    for feature, value in zip(spec.description.input, case.graph.inputs, strict=True):
        want = [batch if d is None else d for d in value.shape]
        assert list(feature.type.multiArrayType.shape) == want
    if suffix == ".mlmodel":
        assert report.ops >= 1
        return
    ops = {op for op, _ in emitted.ops}
    for node in case.graph.nodes:
        if node.op in MIL_OPS:
            assert ops & MIL_OPS[node.op], (node.op, ops)
    # every IR weight the program reads, bit for bit from weight.bin / the spec
    consts = program_consts(path, spec)
    by_key = {key: mil for mil, key in emitted.const_keys.items()}
    checked = 0
    for key, ir_name in emitted.weight_keys.items():
        ir = np.asarray(case.graph.weights[ir_name])
        if ir.dtype.kind != "f" or by_key[key] not in consts:
            continue
        stored = consts[by_key[key]]
        np.testing.assert_array_equal(stored.reshape(-1), ir.reshape(-1).astype(stored.dtype))
        checked += 1
    float_weights = [k for k, n in emitted.weight_keys.items()
                     if np.asarray(case.graph.weights[n]).dtype == np.float32]
    assert checked == len(float_weights)
    # the program read back from the file, computed in numpy (MIL semantics), against the
    # case's numpy oracle of the IR semantics
    got, _ = run_saved_program(path, case.graph, case.feeds)
    for name, ref, array in zip(case.graph.outputs, case.expected, got, strict=True):
        result = compare(name, np.asarray(ref), array, rtol=1e-4)  # float32 tolerance
        assert result.passed, str(result)


def test_concat_with_a_batch_two_constant_builds_with_batch_2(ct, tmp_path: Path) -> None:
    case = CASES["concat_channels"]()
    path = tmp_path / "m.mlpackage"
    check_model(path, emit_model(case.graph, path, batch=2))


def test_every_ir_op_has_a_handler() -> None:
    """A new IR op must get a Core ML handler (which may refuse it with a reason)."""
    # Scan is refused (test_recurrent_cases_refused); LSTM/GRU/RNN: test_coreml_recurrent.py
    assert sorted(missing_handlers()) == sorted(SCAN_OPS)
    assert set(HANDLERS) >= RECURRENT_OPS
    assert "MaxRoiPool" in HANDLERS  # refuses, by name, rather than "no handler"


def test_every_ir_op_has_its_mil_ops_pinned() -> None:
    """MIL_OPS above names what each IR op becomes; a new op must be added there."""
    from mmconv.ir.registry import all_schemas

    unpinned = {s.name for s in all_schemas()} - set(MIL_OPS) - {
        "MaxRoiPool", "Abs", "Ceil", "Floor", "Exp", "Sqrt", "Round", "Sign", "Not", "Identity",
        "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "ReduceMin", "ReduceProd",
        "ReduceLogSumExp"} - SCAN_OPS  # refused (test_recurrent_cases_refused)
    assert unpinned == set()


@pytest.mark.parametrize("name", sorted(RECURRENT_CASES | SCAN_CASES))
def test_recurrent_cases_refused(ct, name: str, tmp_path: Path) -> None:
    """As the cases stand (a dynamic time axis) LSTM/GRU/RNN are refused in one line that
    says to fix the steps with --inputShape (with them fixed: test_coreml_recurrent.py);
    Scan is refused by name.  Nothing is written."""
    case = CASES[name]()
    with pytest.raises(UnsupportedError) as info:
        emit_model(case.graph, tmp_path / "m.mlpackage")
    message = str(info.value)
    assert "\n" not in message
    assert repr(case.node) in message or "dynamic time axis" in message, message
    if name in RECURRENT_CASES:
        assert "--inputShape" in message, message
    assert list(tmp_path.iterdir()) == []
