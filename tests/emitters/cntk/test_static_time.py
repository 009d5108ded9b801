"""A recurrent stack with a *static* time axis (what ONNX, Keras and TensorFlow sources
give) is the same CNTK network as with a sequence input (what a CNTK source gives),
plus one ``to_sequence`` in and one ``sequence.unpack`` out per recurrent layer.

That is why the static form runs as fast as the sequence form (docs/benchmarks.md,
"Recurrent": the same CNTK process times both alike): CNTK runs each recurrence on
the sequence axis over the whole batch either way, and the pair of conversions per
layer is a copy of ``[N, T, D]`` (about 35 us for 16 x 50 x 128).  The test pins that
structure (primitive op counts of the saved and reloaded models, run by real CNTK 2.7)
and that both forms compute the IR evaluator's values.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import mmconv.emitters.cntk as cntk_emitter
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.scan import run_graph
from mmconv.runtimes.cntk import run_script
from mmconv.verify.compare import assert_close

RUN_CODE = Path(__file__).with_name("run_code.py")
N, T, D, H = 3, 6, 4, 5


def _bilstm2(sequence: bool) -> Graph:
    """Two stacked bidirectional LSTMs, each Y [N, T, 2, H] merged to [N, T, 2H] (the
    benchmark's graph, small); T is dynamic (a CNTK sequence) when ``sequence``."""
    rng = np.random.default_rng(3)
    g = Graph("bilstm2_sequence" if sequence else "bilstm2_static")
    g.add_input("x", "float32", [None, None if sequence else T, D])
    prev = "x"
    for layer, width in ((1, D), (2, 2 * H)):
        for key, shape in (("W", (2, 4 * H, width)), ("R", (2, 4 * H, H)), ("B", (2, 8 * H))):
            g.add_weight(f"l{layer}/{key}", rng.uniform(-0.5, 0.5, shape).astype(np.float32))
        g.add_node("LSTM", [prev, f"l{layer}/W", f"l{layer}/R", f"l{layer}/B"], f"l{layer}",
                   outputs=[f"l{layer}"], hidden_size=H, direction="bidirectional")
        shape = (0, 0, 2 * H) if sequence else (-1, T, 2 * H)
        prev = g.add_node("Reshape", [f"l{layer}"], f"l{layer}/merged", shape=shape).outputs[0]
    g.outputs = [prev]
    return g


@pytest.mark.cntk
def test_static_time_is_the_sequence_network_plus_one_conversion_pair_per_layer(
        cntk_python: str, tmp_path: Path) -> None:
    x = np.random.default_rng(4).uniform(-1, 1, (N, T, D)).astype(np.float32)
    np.savez(tmp_path / "in.npz", in_x=x)
    jobs = []
    for form in ("static", "sequence"):
        code, weights = tmp_path / f"{form}.py", tmp_path / f"{form}.npy"
        cntk_emitter.emit_code(_bilstm2(form == "sequence"), code, weights)
        jobs.append({"code": str(code), "weights": str(weights),
                     "inputs_npz": str(tmp_path / "in.npz"),
                     "out_npz": str(tmp_path / f"{form}.out.npz"),
                     "save": str(tmp_path / f"{form}.model")})
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    run_script(RUN_CODE, [str(tmp_path / "jobs.json")], isolated=True, what="CNTK test jobs")
    got, ops = {}, {}
    for form in ("static", "sequence"):
        with np.load(tmp_path / f"{form}.out.npz", allow_pickle=False) as data:
            assert "error" not in data.files, str(data["error"])
            got[form] = data["out_0"]
            ops[form] = Counter(str(o) for o in data["op_names"])

    graph = _bilstm2(False)
    infer_shapes(graph)
    (want,) = run_graph(graph, {"x": x})
    for form in ("static", "sequence"):
        assert got[form].shape == (N, T, 2 * H), (form, got[form].shape)
        assert_close(want, got[form], name=form)

    static, sequence = ops["static"], ops["sequence"]
    # one conversion pair per recurrent layer (both directions share it), no more
    assert static["ToSequenceOp"] == 2 and static["UnpackSequenceOp"] == 2, static
    assert sequence["ToSequenceOp"] == 0 and sequence["UnpackSequenceOp"] == 0, sequence
    # and otherwise the same network: the same recurrences, delays and products (the
    # sequence form names its Y with an alias, a NoOp, where the static one unpacks)
    conversions = Counter({"ToSequenceOp": 2, "UnpackSequenceOp": 2})
    assert static - conversions == sequence - Counter({"NoOp": sequence["NoOp"]}), \
        (static, sequence)
    # 2 layers x 2 directions, each cell delaying h and c (forward past, backward future)
    assert (static["LSTM"], static["PastValue"], static["FutureValue"]) == (4, 4, 4), static
