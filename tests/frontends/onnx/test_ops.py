"""Single ONNX ops at the opsets where their form changes, converted and run on each
target against onnxruntime on the source file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.frontends.onnx._common import convert_and_check, model, rand, save

N = "N"  # the dynamic batch


def _conv_auto(mode: str) -> tuple:
    return ([helper.make_node("Conv", ["x", "w", "b"], ["y"], auto_pad=mode, strides=[2, 2])],
            [("x", [N, 3, 9, 8])], ["y"], {"w": rand(4, 3, 4, 3), "b": rand(4)})


CASES: dict[str, tuple] = {
    # name: (nodes, inputs, outputs, initializers, opset)
    "conv_same_upper": (*_conv_auto("SAME_UPPER"), 11),
    "conv_same_lower": (*_conv_auto("SAME_LOWER"), 11),
    "conv_valid": (*_conv_auto("VALID"), 11),
    "conv_group_dilation": (
        [helper.make_node("Conv", ["x", "w"], ["y"], group=2, dilations=[2, 1],
                          pads=[1, 0, 2, 1])],
        [("x", [N, 4, 7, 7])], ["y"], {"w": rand(6, 2, 3, 3)}, 13),
    "convtranspose_output_shape": (
        [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2],
                          output_shape=[10, 9])],
        [("x", [N, 3, 5, 5])], ["y"], {"w": rand(3, 2, 3, 3), "b": rand(2)}, 13),
    "convtranspose_same_upper": (
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2],
                          auto_pad="SAME_UPPER")],
        [("x", [N, 3, 5, 4])], ["y"], {"w": rand(3, 2, 3, 3)}, 13),
    "maxpool_same_ceil": (
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                          auto_pad="SAME_UPPER")],
        [("x", [N, 2, 8, 7])], ["y"], {}, 11),
    "avgpool_ceil_pads": (
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                          pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)],
        [("x", [N, 2, 8, 7])], ["y"], {}, 11),
    "softmax_opset11_flattens": (
        [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
        [("x", [N, 3, 4])], ["y"], {}, 11),
    "logsoftmax_opset13_axis": (
        [helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)],
        [("x", [N, 3, 4])], ["y"], {}, 13),
    "clip_attrs_opset7": (
        [helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.7)],
        [("x", [N, 5])], ["y"], {}, 7),
    "clip_inputs_opset11": (
        [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
        [("x", [N, 5])], ["y"], {"lo": np.array(-0.3, np.float32),
                                 "hi": np.array(0.4, np.float32)}, 11),
    "clip_relu6_no_min": (
        [helper.make_node("Clip", ["x", "", "hi"], ["y"])],
        [("x", [N, 5])], ["y"], {"hi": np.array(0.4, np.float32)}, 12),
    "reduce_axes_attr": (
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, -1], keepdims=0)],
        [("x", [N, 3, 4, 5])], ["y"], {}, 13),
    "reduce_axes_input_18": (
        [helper.make_node("ReduceMax", ["x", "ax"], ["y"], keepdims=1)],
        [("x", [N, 3, 4, 5])], ["y"], {"ax": np.array([2], np.int64)}, 18),
    "reducesum_axes_input_13": (
        [helper.make_node("ReduceSum", ["x", "ax"], ["y"], keepdims=0)],
        [("x", [N, 3, 4])], ["y"], {"ax": np.array([1], np.int64)}, 13),
    "reduce_l1_sumsquare_logsum": (
        [helper.make_node("ReduceL1", ["x"], ["a"], axes=[1]),
         helper.make_node("ReduceSumSquare", ["x"], ["b"], axes=[1]),
         helper.make_node("Abs", ["x"], ["ax"]),
         helper.make_node("ReduceLogSum", ["ax"], ["c"], axes=[2]),
         helper.make_node("Add", ["a", "b"], ["ab"]),
         helper.make_node("Mul", ["ab", "c"], ["y"])],
        [("x", [N, 3, 4])], ["y"], {}, 13),
    "gemm_transA_alpha_beta": (
        [helper.make_node("Gemm", ["x", "w", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)],
        [("x", [6, 3])], ["y"], {"w": rand(6, 4), "c": rand(1, 4)}, 11),
    "gemm_transB": (
        [helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=1.5)],
        [("x", [N, 6])], ["y"], {"w": rand(4, 6), "c": rand(4)}, 9),
    "matmul_batched": (
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [("x", [N, 3, 6])], ["y"], {"w": rand(6, 5)}, 13),
    "squeeze_unsqueeze_attr": (
        [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[1, -1]),
         helper.make_node("Squeeze", ["u"], ["y"], axes=[1])],
        [("x", [N, 3, 4])], ["y"], {}, 11),
    "squeeze_unsqueeze_input": (
        [helper.make_node("Unsqueeze", ["x", "a"], ["u"]),
         helper.make_node("Squeeze", ["u", "b"], ["y"])],
        [("x", [N, 3, 4])], ["y"], {"a": np.array([0, 3], np.int64),
                                    "b": np.array([3], np.int64)}, 13),
    "split_attr_opset11": (
        [helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]),
         helper.make_node("Concat", ["b", "a"], ["y"], axis=1)],
        [("x", [N, 4, 4])], ["y"], {}, 11),
    "split_input_opset13": (
        [helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1),
         helper.make_node("Split", ["x", "s"], ["c", "d"], axis=-1),
         helper.make_node("Concat", ["b", "a"], ["ba"], axis=1),
         helper.make_node("Concat", ["d", "c"], ["dc"], axis=2),
         helper.make_node("Add", ["ba", "dc"], ["y"])],
        [("x", [N, 4, 4])], ["y"], {"s": np.array([3, 1], np.int64)}, 13),
    "slice_attrs_opset9": (
        [helper.make_node("Slice", ["x"], ["y"], starts=[1, -3], ends=[100, -1], axes=[1, 2])],
        [("x", [N, 4, 6])], ["y"], {}, 9),
    "slice_inputs_steps": (
        [helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])],
        [("x", [N, 4, 6])], ["y"], {"s": np.array([5, 0], np.int64),
                                    "e": np.array([-100, 4], np.int64),
                                    "a": np.array([2, 1], np.int64),
                                    "t": np.array([-2, 3], np.int64)}, 13),
    "pad_attr_reflect": (
        [helper.make_node("Pad", ["x"], ["y"], pads=[0, 0, 1, 2, 0, 0, 2, 1], mode="reflect")],
        [("x", [N, 2, 5, 5])], ["y"], {}, 10),
    "pad_inputs_constant": (
        [helper.make_node("Pad", ["x", "p", "v"], ["y"])],
        [("x", [N, 2, 5])], ["y"], {"p": np.array([0, 1, 2, 0, 0, 1], np.int64),
                                    "v": np.array(1.5, np.float32)}, 11),
    "pad_negative_edge": (
        [helper.make_node("Pad", ["x", "p"], ["y"], mode="edge")],
        [("x", [N, 2, 5])], ["y"], {"p": np.array([0, 0, -1, 0, 0, 2], np.int64)}, 13),
    "flatten_transpose": (
        [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
         helper.make_node("Flatten", ["t"], ["y"], axis=-2)],
        [("x", [N, 2, 3, 4])], ["y"], {}, 13),
    "shape_gather_concat_reshape": (
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
         helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
         helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
         helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [("x", [N, 2, 3, 4])], [("y", [N, 24])],
        {"i0": np.array(0, np.int64), "ax0": np.array([0], np.int64),
         "m1": np.array([-1], np.int64)}, 13),
    "shape_slice_mul_reshape": (
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Slice", ["s", "z", "one"], ["n"]),
         helper.make_node("Slice", ["s", "two", "four"], ["hw"]),
         helper.make_node("ReduceProd", ["hw"], ["p"], keepdims=1),
         helper.make_node("Mul", ["n", "c"], ["nc"]),
         helper.make_node("Concat", ["one", "nc", "p"], ["shape"], axis=0),
         helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [("x", [N, 2, 3, 4])], [("y", [1, "M", 12])],
        {"z": np.array([0], np.int64), "one": np.array([1], np.int64),
         "two": np.array([2], np.int64), "four": np.array([4], np.int64),
         "c": np.array([2], np.int64)}, 13),
    "constantofshape_range_expand": (
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("ConstantOfShape", ["s"], ["ones"],
                          value=helper.make_tensor("v", 1, [1], [0.5])),
         helper.make_node("Range", ["r0", "r4", "r1"], ["r"]),
         helper.make_node("Cast", ["r"], ["rf"], to=1),
         helper.make_node("Mul", ["x", "ones"], ["xo"]),
         helper.make_node("Add", ["xo", "rf"], ["xa"]),
         helper.make_node("Expand", ["b", "s"], ["be"]),
         helper.make_node("Add", ["xa", "be"], ["y"])],
        [("x", [N, 3, 4])], ["y"],
        {"r0": np.array(0, np.int64), "r4": np.array(4, np.int64),
         "r1": np.array(1, np.int64), "b": rand(3, 1)}, 13),
    "resize_nearest_asymmetric_floor": (
        [helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                          coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
        [("x", [N, 2, 4, 5])], ["y"], {"sc": np.array([1, 1, 2, 1.5], np.float32)}, 13),
    "resize_linear_half_pixel_sizes": (
        [helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="linear")],
        [("x", [1, 2, 4, 5])], ["y"], {"sz": np.array([1, 2, 7, 3], np.int64)}, 13),
    "resize_linear_align_corners": (
        [helper.make_node("Resize", ["x", "r", "sc"], ["y"], mode="linear",
                          coordinate_transformation_mode="align_corners")],
        [("x", [N, 2, 4, 5])], ["y"], {"r": np.zeros(0, np.float32),
                                       "sc": np.array([1, 1, 2, 2], np.float32)}, 11),
    "upsample_opset9": (
        [helper.make_node("Upsample", ["x", "sc"], ["y"], mode="nearest")],
        [("x", [N, 2, 3, 3])], ["y"], {"sc": np.array([1, 1, 2, 3], np.float32)}, 9),
    "activations": (
        [helper.make_node("LeakyRelu", ["x"], ["a"], alpha=0.2),
         helper.make_node("Elu", ["a"], ["b"], alpha=0.7),
         helper.make_node("Selu", ["b"], ["c"]),
         helper.make_node("HardSigmoid", ["c"], ["d"], alpha=0.3, beta=0.4),
         helper.make_node("PRelu", ["x", "slope"], ["e"]),
         helper.make_node("Softplus", ["e"], ["f"]),
         helper.make_node("Add", ["d", "f"], ["y"])],
        [("x", [N, 3, 4])], ["y"], {"slope": rand(3, 1)}, 9),
    "batchnorm_erf_sum_mean": (
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"],
                          epsilon=1e-3),
         helper.make_node("Erf", ["bn"], ["e"]),
         helper.make_node("Sum", ["bn", "e", "x"], ["s3"]),
         helper.make_node("Mean", ["s3", "x"], ["y"])],
        [("x", [N, 3, 4, 4])], ["y"],
        {"s": rand(3), "b": rand(3, seed=1), "m": rand(3, seed=2),
         "v": np.abs(rand(3, seed=3)) + 0.5}, 9),
    "where_compare_cast": (
        [helper.make_node("Greater", ["x", "t"], ["g"]),
         helper.make_node("Not", ["g"], ["ng"]),
         helper.make_node("Where", ["ng", "x", "t"], ["w"]),
         helper.make_node("Cast", ["g"], ["gf"], to=1),
         helper.make_node("Max", ["w", "gf", "x"], ["y"])],
        [("x", [N, 3])], ["y"], {"t": rand(3)}, 13),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", ["onnx", "pytorch"])
def test_op_case(case: str, target: str, tmp_path: Path) -> None:
    nodes, inputs, outputs, inits, opset = CASES[case]
    path = save(model(nodes, inputs, outputs, inits, opset=opset), tmp_path / f"{case}.onnx")
    convert_and_check(path, [target], tmp_path)


def test_batch_stays_dynamic_and_reshape_is_static(tmp_path: Path) -> None:
    nodes, inputs, outputs, inits, opset = CASES["shape_slice_mul_reshape"]
    path = save(model(nodes, inputs, outputs, inits, opset=opset), tmp_path / "m.onnx")
    graph = convert_and_check(path, ["onnx"], tmp_path)
    assert graph.inputs[0].shape == (None, 2, 3, 4)
    reshape = next(n for n in graph.nodes if n.op == "Reshape")
    assert reshape.attrs["shape"] == (1, -1, 12)
    assert not any(n.op in ("Shape", "Gather", "Concat") for n in graph.nodes)


def test_dst_node_name_picks_an_inner_value(tmp_path: Path) -> None:
    """--dstNodeName (output_names) with an ONNX value inside the graph: the IR stops
    there and --verify reads that value from the source file in onnxruntime."""
    nodes = [helper.make_node("Relu", ["x"], ["inner.relu"]),
             helper.make_node("Sigmoid", ["inner.relu"], ["y"])]
    path = save(model(nodes, [("x", [N, 3])], ["y"]), tmp_path / "m.onnx")
    graph = convert_and_check(path, ["onnx"], tmp_path, output_names=["inner.relu"])
    assert [n.op for n in graph.nodes] == ["Relu"]
    assert graph.outputs == ["inner_relu"]
