"""Training criteria saved with a model are recognised and dropped in both formats,
including the forms zoo_check found unrecognised: per-row criteria (``axis=1``, as
Fast R-CNN trains) and ``squared_error`` in a legacy file, and a model saved as its
criteria only (then the prediction they score is converted)."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.frontends.cntk import convert
from mmconv.verify.compare import assert_close
from tests.frontends.cntk._common import FIXTURES, fixture

onnx_emitter = pytest.importorskip("mmconv.emitters.onnx")
onnx_runner = pytest.importorskip("mmconv.verify.onnx_runner")


def _io(name: str) -> dict[str, np.ndarray]:
    io = np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False)
    return {k: io[k] for k in io.files}


def _run(graph, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return onnx_runner.run_onnx(onnx_emitter.build_model(graph).SerializeToString(), feed)


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_per_row_criteria_and_squared_error_dropped(fmt: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    graph = convert(None, str(fixture("with_loss_axis", fmt)))
    err = caplog.text
    for kind in ("CrossEntropyWithSoftmax", "ClassificationError", "SquaredError"):
        assert kind in err, err
    assert "row_labels" in err and "row_targets" in err
    assert [v.name for v in graph.inputs] == ["rows"]
    assert len(graph.outputs) == 1
    io = _io("with_loss_axis")
    names = [str(n) for n in io["input_names"]]
    (got,) = _run(graph, {"rows": io[f"in_{names.index('rows')}"]})
    assert_close(io["out_0"], got, name="scores")  # out_0: the prediction z


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_criteria_only_converts_the_prediction(fmt: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    graph = convert(None, str(fixture("criteria_only", fmt)))
    err = caplog.text
    assert "converting what they score instead" in err
    assert [v.name for v in graph.inputs] == ["features"]
    assert len(graph.outputs) == 1
    io = _io("criteria_only")
    names = [str(n) for n in io["input_names"]]
    x, y = io[f"in_{names.index('features')}"], io[f"in_{names.index('labels')}"]
    (z,) = _run(graph, {"features": x})
    assert z.shape == (2, 5)
    # CNTK's own loss and error of these inputs, recomputed from the converted prediction
    zd = z.astype(np.float64)
    loss = np.log(np.exp(zd).sum(axis=1)) - (zd * y).sum(axis=1)
    error = 1.0 - y[np.arange(2), zd.argmax(axis=1)]
    out_names = [str(n) for n in io["output_names"]]
    assert_close(io[f"out_{out_names.index('loss')}"].reshape(-1), loss, name="loss")
    assert_close(io[f"out_{out_names.index('error')}"].reshape(-1), error, name="error")
