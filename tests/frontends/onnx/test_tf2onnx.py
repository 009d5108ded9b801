"""Keras models converted to ONNX by the real tf2onnx at test time: channels-last graphs
that must land channels-first in the IR, checked on every target against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tf2onnx")

from tests.frontends.onnx import keras_nets
from tests.frontends.onnx._common import convert_and_check


@pytest.fixture(scope="module")
def tf2onnx_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tf2onnx")
    return {
        "cnn": keras_nets.to_onnx(keras_nets.small_cnn(upsample=False), folder / "cnn.onnx"),
        "cnn_upsample": keras_nets.to_onnx(keras_nets.small_cnn(upsample=True),
                                           folder / "cnn_up.onnx"),
    }


@pytest.mark.cntk
def test_channels_last_model_to_every_target_with_one_transpose(
        tf2onnx_models: dict[str, Path], tmp_path: Path, cntk_python: str) -> None:
    """tf2onnx puts NHWC<->NCHW Transposes around every convolution; after conversion only
    the one at the model's NHWC input is left (the source's input layout is kept)."""
    graph = convert_and_check(tf2onnx_models["cnn"], ["onnx", "pytorch", "keras", "cntk"],
                              tmp_path)
    transposes = [n for n in graph.nodes if n.op == "Transpose"]
    assert len(transposes) == 1, [n.name for n in transposes]
    assert transposes[0].inputs == [graph.inputs[0].name]
    assert graph.inputs[0].shape == (None, 15, 15, 3)
    assert {"conv2_1_convolution", "dw_1_depthwise", "fc"} <= {n.name for n in graph.nodes}


def test_upsampling_shape_subgraphs_fold(tf2onnx_models: dict[str, Path],
                                         tmp_path: Path) -> None:
    """Keras 3's UpSampling2D comes out of tf2onnx as Shape/Slice/Concat/Tile/Reshape on
    the dynamic batch; it converts with static reshapes (0 for the batch)."""
    graph = convert_and_check(tf2onnx_models["cnn_upsample"], ["onnx", "pytorch", "keras"],
                              tmp_path)
    reshapes = [n for n in graph.nodes if n.op == "Reshape"]
    assert reshapes and all(n.attrs["shape"][0] in (0, -1) for n in reshapes), \
        [n.attrs["shape"] for n in reshapes]
    assert graph.inputs[0].shape[0] is None
