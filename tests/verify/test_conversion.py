"""verify_conversion against real CNTK and onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.onnx import emit_model
from mmconv.errors import UnsupportedError
from mmconv.frontends.cntk import convert
from mmconv.verify.conversion import sample_inputs, verify_conversion


def test_sample_inputs_are_seeded_and_shaped(cntk_fixtures_dir: Path) -> None:
    graph = convert(None, str(cntk_fixtures_dir / "convnet.v2.model"))
    a, b = sample_inputs(graph, batch=3), sample_inputs(graph, batch=3)
    (name,) = a
    assert a[name].shape[0] == 3 and a[name].dtype == np.float32
    np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.cntk
@pytest.mark.parametrize("name", ["combine_two.v2", "with_loss.v2", "residual.v1"])
def test_verify_cntk_against_onnx(cntk_python: str, cntk_fixtures_dir: Path, tmp_path: Path,
                                  name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCONV_CNTK_PYTHON", cntk_python)
    model = cntk_fixtures_dir / f"{name}.model"
    graph = convert(None, str(model))
    onnx_path = tmp_path / "m.onnx"
    emit_model(graph, onnx_path)
    results = verify_conversion(graph, ("cntk", model), ("onnx", onnx_path)).outputs
    assert [r.name for r in results] == graph.outputs
    assert all(r.passed for r in results), [str(r) for r in results]


@pytest.mark.cntk
def test_verify_detects_a_wrong_model(cntk_python: str, cntk_fixtures_dir: Path,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCONV_CNTK_PYTHON", cntk_python)
    model = cntk_fixtures_dir / "convnet.v2.model"
    graph = convert(None, str(model))
    conv_weight = next(k for k in graph.weights if graph.weights[k].ndim == 4)
    graph.weights[conv_weight] = graph.weights[conv_weight] * 1.01
    onnx_path = tmp_path / "m.onnx"
    emit_model(graph, onnx_path)
    (result,) = verify_conversion(graph, ("cntk", model), ("onnx", onnx_path)).outputs
    assert not result.passed


def test_unknown_runner(cntk_fixtures_dir: Path) -> None:
    graph = convert(None, str(cntk_fixtures_dir / "mlp.v2.model"))
    with pytest.raises(UnsupportedError, match="cannot run theano models"):
        verify_conversion(graph, ("theano", Path("x")), ("onnx", Path("y")))
