"""The v2 reader on real CNTK 2.7 files: structure, dtypes, blocks, format probing, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mmconv.errors import ModelFormatError
from mmconv.frontends.cntk import cntk_v2_pb2 as pb
from mmconv.frontends.cntk import probe, read_model
from mmconv.frontends.cntk.reader_v2 import read_v2
from tests.frontends.cntk._common import FIXTURES, fixture


def test_convnet_structure(cntk_manifest: dict) -> None:
    model = read_model(fixture("convnet"))
    entry = cntk_manifest["convnet"]
    assert model.format == "v2"
    assert [(v.name, list(v.shape)) for v in model.inputs] == [
        (i["name"], i["shape"]) for i in entry["inputs"]]
    assert model.inputs[0].dynamic_axes == ("defaultBatchAxis",)
    ops = {f.op for f in model.functions}
    assert {"Convolution", "BatchNormalization", "Pooling", "Times", "Softmax"} <= ops
    assert "Block" not in ops  # blocks are inlined
    # Every function input is a known variable; every parameter has a value of its shape.
    for f in model.functions:
        for uid in f.inputs:
            assert uid in model.variables, (f.uid, uid)
    for v in model.variables.values():
        if v.kind in ("parameter", "constant"):
            assert v.value is not None and v.value.shape == v.shape
    # Conv kernels are OIHW in Python order (stored reversed in the file).
    conv = next(f for f in model.functions if f.op == "Convolution")
    w = model.variables[conv.inputs[0]]
    assert w.value is not None and w.value.ndim == 4 and w.value.shape[1] == 3
    assert conv.blocks and conv.blocks[-1].op_name == "Convolution"
    assert len(model.outputs) == 1


def test_block_stack_and_outputs() -> None:
    model = read_model(fixture("act_softmax_axis"))
    # C.softmax(x, axis) is a block of primitives; the stack records it with its axis.
    inner = [f for f in model.functions if f.blocks]
    assert inner
    block = inner[0].blocks[0]
    assert block.op_name in ("Softmax", "LogSoftmax") and "axis" in block.attrs
    assert block.outputs and all(o in model.variables for o in block.outputs)


def test_combine_gives_several_outputs(cntk_manifest: dict) -> None:
    model = read_model(fixture("combine_two"))
    assert len(model.outputs) == len(cntk_manifest["combine_two"]["outputs"])


@pytest.mark.parametrize(("name", "dtype"), [("float16", "float16"), ("float64", "float64")])
def test_dtypes(name: str, dtype: str) -> None:
    model = read_model(fixture(name))
    params = [v for v in model.variables.values() if v.kind == "parameter"]
    assert params and all(v.value is not None and v.value.dtype == dtype for v in params)
    assert all(v.dtype == dtype for v in model.inputs)


def test_probe(tmp_path: Path) -> None:
    assert probe(fixture("convnet")) == "v2"
    assert probe(fixture("convnet", "v1")) == "v1"
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelFormatError, match=r"junk\.model"):
        probe(junk)
    with pytest.raises(ModelFormatError, match="cannot read"):
        probe(tmp_path / "missing.model")


def _model_with(mutate) -> bytes:
    msg = pb.Dictionary()
    msg.ParseFromString(fixture("mlp").read_bytes())
    mutate(msg)
    return msg.SerializeToString()


def _first_param(msg: pb.Dictionary) -> pb.NDArrayView:
    for item in msg.data["inputs"].vector_value.value:
        d = item.dictionary_value
        if "value" in d.data:
            return d.data["value"].nd_array_view_value
    raise AssertionError("no parameter")


def test_value_count_must_match_shape(tmp_path: Path) -> None:
    def drop_one(msg: pb.Dictionary) -> None:
        del _first_param(msg).float_values.value[-1]

    path = tmp_path / "short.model"
    path.write_bytes(_model_with(drop_one))
    with pytest.raises(ModelFormatError, match=r"short\.model.*holds \d+ values"):
        read_v2(path)


def test_huge_shape_is_rejected_before_allocating(tmp_path: Path) -> None:
    def huge(msg: pb.Dictionary) -> None:
        view = _first_param(msg)
        del view.shape.shape_dim[:]
        view.shape.shape_dim.extend([2**30, 2**30, 2**30])

    path = tmp_path / "huge.model"
    path.write_bytes(_model_with(huge))
    with pytest.raises(ModelFormatError, match=r"huge\.model"):
        read_v2(path)


def test_truncated_and_empty_files(tmp_path: Path) -> None:
    data = fixture("convnet").read_bytes()
    path = tmp_path / "cut.model"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=r"cut\.model"):
        read_model(path)
    empty = tmp_path / "empty.model"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match=r"empty\.model: the file is empty"):
        read_model(empty)


def test_v1_files_route_to_the_v1_reader() -> None:
    model = read_model(fixture("convnet", "v1"))  # a committed fixture: missing is a failure
    assert model.format == "v1"
    assert model.functions and model.outputs


def test_every_v2_fixture_reads() -> None:
    paths = sorted(FIXTURES.glob("*.v2.model"))
    assert paths
    for path in paths:
        model = read_model(path)
        assert model.functions and model.outputs, path.name
        for v in model.variables.values():
            if v.value is not None:
                assert v.value.size == math.prod(v.shape)
                assert np.isfinite(v.value.astype(np.float64)).all()
