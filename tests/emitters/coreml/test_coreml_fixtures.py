"""Every CNTK fixture model (made by real CNTK 2.7) converted to Core ML, both formats.

mmconv's CNTK reader needs no CNTK, so these run everywhere coremltools is
installed.  Each model is read into the IR, written as ``.mlpackage`` and
``.mlmodel``, and checked: it loads in coremltools, declares the IR's inputs
and outputs (names, ranks, shapes with the batch fixed to 1), its ML Program
holds the IR's computation op for op (:func:`check_model`), and every IR
weight is stored bit for bit (read back from ``weight.bin``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.coreml import emit_model
from mmconv.emitters.coreml.check import check_model
from mmconv.errors import UnsupportedError
from mmconv.frontends import cntk
from tests.conftest import CNTK_FIXTURES_DIR

from .blobs import program_consts

MODELS = sorted(p.name for p in CNTK_FIXTURES_DIR.glob("*.model"))

#: fixture stem (before .v1/.v2) -> (suffix or "*", part of the refusal)
REFUSED = {
    "fast_rcnn_mini": ("*", "Core ML has no max ROI pooling"),
    "roipooling": ("*", "Core ML has no max ROI pooling"),
    "float64": ("*", "is float64; Core ML model inputs hold"),
    # a Pow with a constant exponent: coremltools 9's NeuralNetwork backend hands protobuf 7
    # a numpy scalar where a float is wanted
    "math_unary_positive": (".mlmodel", "cannot write this program as a neuralnetwork"),
}


@pytest.mark.parametrize("suffix", [".mlpackage", ".mlmodel"])
@pytest.mark.parametrize("model", MODELS)
def test_fixture(ct, model: str, suffix: str, tmp_path: Path) -> None:
    graph = cntk.convert(None, str(CNTK_FIXTURES_DIR / model))
    path = tmp_path / f"{model}{suffix}"
    refused = REFUSED.get(model.split(".")[0])
    if refused and refused[0] in ("*", suffix):
        with pytest.raises(UnsupportedError, match=refused[1]):
            emit_model(graph, path)
        assert list(tmp_path.iterdir()) == []
        return
    emitted = emit_model(graph, path)
    report = check_model(path, emitted)
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    assert [f.shortDescription for f in spec.description.input] == [
        v.name for v in graph.inputs]
    assert [f.shortDescription for f in spec.description.output] == graph.outputs
    for feature, name in zip(spec.description.output, graph.outputs, strict=True):
        ir_shape = [1 if d is None else d for d in graph.values[name].shape]
        assert list(feature.type.multiArrayType.shape) == ir_shape
    if suffix == ".mlmodel":
        assert report.ops >= 1
        return
    consts = program_consts(path, spec)
    by_key = {key: mil for mil, key in emitted.const_keys.items()}
    for key, ir_name in emitted.weight_keys.items():
        ir = np.asarray(graph.weights[ir_name])
        if ir.dtype == np.float32:
            np.testing.assert_array_equal(consts[by_key[key]].reshape(-1), ir.reshape(-1))
