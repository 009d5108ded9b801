"""Every CNTK fixture model (made by real CNTK 2.7) converted to Core ML, both formats.

mmconv's CNTK reader needs no CNTK, so these run everywhere coremltools is
installed.  Each model is read into the IR, written as ``.mlpackage`` and
``.mlmodel``, and checked: it loads in coremltools, declares the IR's inputs
and outputs (names, ranks, shapes with the batch fixed to 1), its ML Program
holds the IR's computation op for op (:func:`check_model`), and every IR
weight is stored bit for bit (read back from ``weight.bin``).

Numbers: the ML Program read back from the file is computed in numpy op by op
(:mod:`mmconv.emitters.coreml.evaluate`: MIL semantics, not the Core ML
runtime, which needs macOS) on the inputs real CNTK 2.7 ran when the fixture
was made, and must give CNTK's outputs (``NAME.io.npz``) within
max|a-b| <= 1e-4 * max(1, max|ref|).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.coreml import emit_model
from mmconv.emitters.coreml.check import check_model
from mmconv.emitters.coreml.evaluate import run_saved_program
from mmconv.errors import UnsupportedError
from mmconv.frontends import cntk
from mmconv.verify.compare import compare
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
    # the saved program, computed in numpy, against what real CNTK computed
    feeds, refs = _io(model, graph)
    got, notice = run_saved_program(path, graph, feeds)
    assert "NOT by Core ML" in notice
    compared = 0
    for name, ref, array in zip(graph.outputs, refs, got, strict=True):
        if ref is not None:
            result = compare(name, ref, array)
            assert result.passed, str(result)
            compared += 1
    assert compared or model.startswith("criteria_only")  # its io holds the criteria only


def _io(model: str, graph) -> tuple[dict[str, np.ndarray], list[np.ndarray | None]]:
    """The fixture's inputs (by IR name) and CNTK's output for each graph output (None:
    not stored).  v2 graphs keep CNTK's output names; a v1 file orders its outputs its
    own way, which MANIFEST's ``v1_outputs`` records (training-only outputs the frontend
    dropped are skipped by shape)."""
    stem = model.split(".")[0]
    with np.load(CNTK_FIXTURES_DIR / f"{stem}.io.npz", allow_pickle=False) as io:
        by_name = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
        ins = [v.name for v in graph.inputs]
        # by name, or by position where a v1 file renamed them
        feeds = dict(zip(ins, [by_name[n] for n in ins] if set(ins) <= set(by_name)
                         else list(by_name.values()), strict=True))
        names = [str(n) for n in io["output_names"]]
        stored = {name: io[f"out_{i}"] for i, name in enumerate(names)}
    if all(o in stored for o in graph.outputs):
        return feeds, [stored[o] for o in graph.outputs]
    manifest = json.loads((CNTK_FIXTURES_DIR / "MANIFEST.json").read_text())
    entry = next(e for e in manifest["fixtures"] if e["name"] == stem)
    arrays = list(stored.values())
    pending = [arrays[o["index"]] for o in entry.get("v1_outputs", [])]
    found: list[np.ndarray | None] = []
    for out in graph.outputs:
        shape = tuple(graph.value(out).shape[1:])
        while pending and pending[0].shape[1:] != shape:
            pending.pop(0)
        found.append(pending.pop(0) if pending else None)
    return feeds, found
