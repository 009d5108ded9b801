"""Validation before conversion: the checker's verdict, every unsupported op at once,
external data confined and checked, hostile files refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from mmconv.errors import MmconvError, ModelFormatError, UnsupportedError, UsageError
from mmconv.frontends.onnx import convert, read_model
from tests.frontends.onnx._common import model, rand, save

ROOT = Path(__file__).resolve().parents[3]


def _unsupported_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="ok_relu"),
        helper.make_node("Resize", ["r", "", "sc"], ["c"], name="up_cubic", mode="cubic"),
        helper.make_node("Det", ["m"], ["d"], name="det1"),
        helper.make_node("Det", ["m"], ["d2"], name="det2"),
        helper.make_node("Einsum", ["c", "c"], ["e"], name="einsum", equation="bchw,bchw->b"),
        helper.make_node("Add", ["d", "d2"], ["dd"]),
        helper.make_node("Unsqueeze", ["dd", "ax"], ["du"]),
        helper.make_node("Add", ["e", "du"], ["y"]),
    ]
    return model(nodes, [("x", ["N", 2, 3, 3])], ["y"],
                 {"sc": np.array([1, 1, 2, 2], np.float32), "m": rand(3, 3),
                  "ax": np.array([0], np.int64)}, opset=13)


def test_every_unsupported_op_in_one_error(tmp_path: Path) -> None:
    path = save(_unsupported_model(), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedError) as err:
        convert(str(path), None)
    text = str(err.value)
    assert "\n" not in text
    assert "Det x2 (det1, det2)" in text
    assert "Einsum x1 (einsum)" in text
    assert "Resize(mode=cubic) x1 (up_cubic)" in text
    assert "Relu" not in text


def test_cli_unsupported_exit_1_and_no_output(tmp_path: Path) -> None:
    path = save(_unsupported_model(), tmp_path / "m.onnx")
    out = tmp_path / "out.onnx"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mmconv", "mmconvert", "-sf", "onnx", "-iw",
                           str(path), "-df", "onnx", "-om", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Det x2" in lines[0] and "Einsum" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_checker_failure_is_refused_with_its_message(tmp_path: Path) -> None:
    proto = model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 3])], ["y"])
    proto.graph.node[0].input[0] = "nowhere"
    path = save(proto, tmp_path / "bad.onnx")
    with pytest.raises(ModelFormatError, match=r"onnx\.checker says: .*nowhere") as err:
        read_model(path)
    assert "\n" not in str(err.value)


def test_opset_outside_the_supported_range(tmp_path: Path) -> None:
    proto = model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 3])], ["y"], opset=6)
    path = save(proto, tmp_path / "old.onnx")
    with pytest.raises(UnsupportedError, match="opset 6 is not supported"):
        read_model(path)


def test_other_domains_and_control_flow_are_listed(tmp_path: Path) -> None:
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", 1, [1, 3])])
    nodes = [helper.make_node("Greater", ["x", "z"], ["g"]),
             helper.make_node("Cast", ["g"], ["gf"], to=1),
             helper.make_node("ReduceMin", ["gf"], ["m"], keepdims=0),
             helper.make_node("Cast", ["m"], ["c"], to=9),
             helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then,
                              else_branch=then)]
    proto = model(nodes, [("x", [1, 3])], [("y", [1, 3])], {"z": np.zeros(3, np.float32)})
    path = save(proto, tmp_path / "if.onnx")
    with pytest.raises(UnsupportedError, match=r"If \(control flow\) x1 \(branch\)"):
        convert(str(path), None)


def test_free_non_batch_dims_need_input_shape(tmp_path: Path) -> None:
    proto = model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["N", "C", 4])], ["y"])
    path = save(proto, tmp_path / "free.onnx")
    with pytest.raises(UsageError, match="--inputShape"):
        convert(str(path), None)
    graph = convert(str(path), None, input_shapes=[(3, 4)])
    assert graph.inputs[0].shape == (None, 3, 4)


# -- external data ------------------------------------------------------------------------
def _external(tmp_path: Path) -> Path:
    w = rand(8, 4)
    proto = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", ["N", 8])], ["y"],
                  {"w": w})
    path = tmp_path / "ext.onnx"
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.onnx.data", size_threshold=0)
    return path


def test_external_data_is_mapped_not_copied(tmp_path: Path) -> None:
    path = _external(tmp_path)
    m = read_model(path)
    array = m.arrays["w"]
    assert array.shape == (8, 4) and not array.flags.owndata and not array.flags.writeable
    graph = convert(str(path), None)
    assert np.array_equal(next(iter(graph.weights.values())), rand(8, 4).T)


def test_external_data_shorter_than_declared(tmp_path: Path) -> None:
    path = _external(tmp_path)
    data = path.with_name("ext.onnx.data")
    data.write_bytes(data.read_bytes()[:-4])
    with pytest.raises(MmconvError) as err:
        convert(str(path), None)
    assert "\n" not in str(err.value) and "ext.onnx" in str(err.value)


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    w = rand(8, 4)
    (tmp_path / "secret.bin").write_bytes(w.tobytes())
    proto = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", ["N", 8])], ["y"],
                  {"w": w})
    tensor = proto.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../secret.bin")
    path = tmp_path / "sub" / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelFormatError) as err:
        read_model(path)
    assert "\n" not in str(err.value)


# -- hostile input --------------------------------------------------------------------------
def _base_bytes() -> bytes:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Shape", ["c"], ["s"]),
             helper.make_node("Gather", ["s", "i"], ["n"]),
             helper.make_node("Unsqueeze", ["n", "a"], ["n1"]),
             helper.make_node("Concat", ["n1", "m"], ["shape"], axis=0),
             helper.make_node("Reshape", ["c", "shape"], ["y"])]
    proto = model(nodes, [("x", ["N", 2, 4, 4])], [("y", ["N", 48])],
                  {"w": rand(3, 2, 3, 3), "i": np.array(0, np.int64),
                   "a": np.array([0], np.int64), "m": np.array([-1], np.int64)})
    return proto.SerializeToString()


def test_fuzzed_files_fail_in_one_line(tmp_path: Path) -> None:
    """Seeded mutations of a valid model (flipped bytes, truncation, splices): each either
    converts or fails with one MmconvError line; never another exception, never a hang."""
    base = _base_bytes()
    rng = np.random.default_rng(1234)
    path = tmp_path / "fuzz.onnx"
    outcomes = {"converted": 0, "refused": 0}
    for i in range(60):
        data = bytearray(base)
        kind = i % 3
        if kind == 0:
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
                data[pos] = int(rng.integers(0, 256))
        elif kind == 1:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            a, b = sorted(int(v) for v in rng.integers(0, len(data), size=2))
            data[a:a] = data[b:b + int(rng.integers(1, 64))]
        path.write_bytes(bytes(data))
        try:
            convert(str(path), None)
            outcomes["converted"] += 1
        except MmconvError as exc:
            assert "\n" not in str(exc), str(exc)
            assert str(exc), "empty message"
            outcomes["refused"] += 1
    assert outcomes["refused"] > 20, outcomes
    assert outcomes["converted"] > 0, outcomes


def test_huge_constant_of_shape_is_refused(tmp_path: Path) -> None:
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["big"]),
             helper.make_node("ReduceSum", ["big"], ["t"], keepdims=0),
             helper.make_node("Add", ["x", "t"], ["y"])]
    proto = model(nodes, [("x", [1])], [("y", [1])],
                  {"s": np.array([1 << 20, 1 << 20], np.int64)})
    path = save(proto, tmp_path / "big.onnx")
    with pytest.raises(ModelFormatError, match="elements at conversion time"):
        convert(str(path), None)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(ModelFormatError) as err:
        read_model(path)
    assert "\n" not in str(err.value)
