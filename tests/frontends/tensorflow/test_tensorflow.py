"""-sf tensorflow: SavedModels (keras.Model.export, tf.saved_model.save) and frozen GraphDefs
through tf2onnx into the IR, to ONNX and CNTK, against TensorFlow's own output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.frontends.keras._common import keras, randomize

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

from mmconv.cli import mmconvert  # noqa: E402
from mmconv.frontends import tensorflow as tf_frontend  # noqa: E402
from mmconv.verify.compare import compare  # noqa: E402
from mmconv.verify.runners import RUNNERS, TARGET_RUNNERS  # noqa: E402

L = keras.layers


def _net() -> keras.Model:
    inp = keras.Input((12, 11, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(6.0, name="relu6")(x)
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.Add(name="res")([x, y])
    x = L.MaxPooling2D(3, 2, padding="same", name="pool")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return randomize(keras.Model(inp, L.Dense(5, name="logits")(x), name="tfnet"))


def _run(path: Path, target: str, tmp: Path, x: np.ndarray, extra: list[str]) -> np.ndarray:
    suffix = {"onnx": "onnx", "cntk": "model", "pytorch": "pt", "keras": "keras"}[target]
    out = tmp / f"out-{target}.{suffix}"
    assert mmconvert.main(["-sf", "tensorflow", "-iw", str(path), "-df", target, "-om",
                           str(out), *extra]) == 0
    graph = tf_frontend.convert(None, str(path), **_names(extra))
    runner = TARGET_RUNNERS.get(target) or RUNNERS.get(target)
    return runner(out, graph, {graph.inputs[0].name: x})[0]


def _names(extra: list[str]) -> dict:
    kw: dict = {}
    if "--inNodeName" in extra:
        kw["input_names"] = [extra[extra.index("--inNodeName") + 1]]
    if "--dstNodeName" in extra:
        kw["output_names"] = [extra[extra.index("--dstNodeName") + 1]]
    if "--inputShape" in extra:
        kw["input_shapes"] = [tuple(int(d) for d in
                                    extra[extra.index("--inputShape") + 1].split(","))]
    return kw


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """keras.Model.export: a SavedModel with a serving_default signature, no Keras config."""
    tmp = tmp_path_factory.mktemp("tf")
    model = _net()
    path = tmp / "saved"
    model.export(str(path), verbose=False)
    x = np.random.default_rng(3).standard_normal((2, 12, 11, 3)).astype("float32")
    ref = np.asarray(model(x, training=False))
    return path, x, ref


@pytest.mark.parametrize("target", ["onnx", "pytorch", "keras"])
def test_saved_model(exported: tuple, tmp_path: Path, target: str) -> None:
    path, x, ref = exported
    result = compare("saved_model", ref, np.asarray(_run(path, target, tmp_path, x, [])))
    assert result.passed, str(result)


@pytest.mark.cntk
def test_saved_model_to_cntk(exported: tuple, tmp_path: Path, cntk_python: str) -> None:
    """The seed's path: a TensorFlow SavedModel -> CNTK .model through mmconv's IR."""
    path, x, ref = exported
    result = compare("saved_model->cntk", ref, np.asarray(_run(path, "cntk", tmp_path, x, [])))
    assert result.passed, str(result)


def test_saved_model_layout_pass_leaves_boundary_transposes_only(exported: tuple) -> None:
    path, _, _ = exported
    graph = tf_frontend.convert(None, str(path))
    assert sum(n.op == "Transpose" for n in graph.nodes) <= 1  # the NHWC input only


def test_frozen_graph_def(tmp_path: Path) -> None:
    """A frozen GraphDef .pb with --inNodeName/--dstNodeName/--inputShape."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    model = _net()
    fn = tf.function(lambda t: model(t, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([None, 12, 11, 3], tf.float32, name="x"))
    frozen = convert_variables_to_constants_v2(concrete)
    path = tmp_path / "frozen.pb"
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    out_name = frozen.outputs[0].name.split(":")[0]
    x = np.random.default_rng(4).standard_normal((2, 12, 11, 3)).astype("float32")
    ref = np.asarray(model(x, training=False))
    extra = ["--inNodeName", "x", "--dstNodeName", out_name, "--inputShape", "12,11,3"]
    result = compare("graphdef", ref, np.asarray(_run(path, "onnx", tmp_path, x, extra)))
    assert result.passed, str(result)


def test_tf2onnx_failure_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.pb"
    path.write_bytes(b"\x0a\x05hello-not-a-graph")
    proc = subprocess.run([sys.executable, "-m", "mmconv", "mmconvert", "-sf", "tensorflow",
                           "-iw", str(path), "--inNodeName", "x", "--dstNodeName", "y", "-df",
                           "onnx", "-om", str(tmp_path / "o.onnx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("mmconvert")]
    assert len(lines) == 1 and "tf2onnx" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.onnx").exists()


def test_saved_model_channels_first_io(exported: tuple, tmp_path: Path) -> None:
    """--channelsFirstIO: the ONNX model takes NCHW and has no Transpose left; --verify
    feeds the SavedModel NHWC (the layout recorded by the frontend)."""
    import onnx

    path, x, ref = exported
    out = tmp_path / "cf.onnx"
    assert mmconvert.main(["-sf", "tensorflow", "-iw", str(path), "-df", "onnx", "-om",
                           str(out), "--channelsFirstIO", "--verify"]) == 0
    written = onnx.load(str(out))
    assert [n.op_type for n in written.graph.node].count("Transpose") == 0
    graph = tf_frontend.convert(None, str(path), channels_first_io=True)
    assert graph.inputs[0].shape == (None, 3, 12, 11)
    got = TARGET_RUNNERS.get("onnx")(out, graph, {graph.inputs[0].name:
                                                  np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    result = compare("saved_model channels-first", ref, np.asarray(got[0]))
    assert result.passed, str(result)
