"""The CNTK 2.7 emitter against real CNTK (through the bridge; one CNTK start per batch).

- every IR case of the shared catalogue: code emitted, run by CNTK 2.7 on Python 3.6,
  outputs vs the numpy oracle (int/bool results come back as floats: CNTK has none);
- the CNTK fixtures: CNTK -> IR -> CNTK, saved with Function.save, loaded with
  load_model, outputs vs the ones CNTK computed from the source; no TransposeAxes;
- names, determinism, atomic outputs, options, and the console path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mmconv.emitters.cntk as cntk_emitter
from mmconv.emitters import get_emitter
from mmconv.emitters.cntk.builder import weights_bytes
from mmconv.errors import MmconvError, UnsupportedError, UsageError
from mmconv.frontends.cntk import convert
from mmconv.ir import Graph, all_schemas
from mmconv.runtimes.cntk import run_model, run_script
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES

HERE = Path(__file__).parent
RUN_CODE = HERE / "run_code.py"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "cntk"

#: IR ops with no CNTK handler (the builder names each such node in one error).
EXPECTED_MISSING: set[str] = set()

#: Cases CNTK 2.7 cannot express, each refused with an UnsupportedError naming the node.
EXPECTED_UNSUPPORTED = {
    "argmax_select_last",  # CNTK's argmax returns the first extreme
    "avgpool_ceil_include_pad",  # CNTK's divisor of a partial last window differs
    "avgpool_dilated", "maxpool_dilated",  # CNTK pooling has no dilation
    "concat_channels",  # a constant that differs along the batch axis
    "conv_depthwise_1d",  # grouped 1-D conv: wrong or mkl err -127 on CPU
    "cumsum_batch_axis",  # along the dynamic batch axis
    "gather_runtime_indices_of_activation",  # CNTK's gather wants a weight table
    "max_roi_pool",  # boxes not in the per-sample form of CNTK's roipooling
}

#: Fixtures whose conversion CNTK -> IR -> CNTK is not expected to work (none).
ROUND_TRIP_UNSUPPORTED: set[str] = set()
CONV_NETS = ("convnet", "residual", "inception_mini", "alexnet_mini", "conv_groups",
             "conv_dilation", "pool_variants", "pool_explicit_pads", "conv_transpose",
             "fast_rcnn_mini")


def _run_jobs(jobs: list[dict[str, Any]], tmp: Path) -> None:
    request = tmp / "jobs.json"
    request.write_text(json.dumps(jobs))
    run_script(RUN_CODE, [str(request)], isolated=True, what="CNTK test jobs")


def _result(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files}
    if "error" in out:
        raise AssertionError(f"CNTK failed: {out['error']}")
    return out


# -- every IR case -------------------------------------------------------------------
@pytest.fixture(scope="module")
def case_results(cntk_python: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, Any]:
    """Emit every case and run them all in one CNTK process."""
    tmp = tmp_path_factory.mktemp("cntk_cases")
    results: dict[str, Any] = {}
    jobs = []
    for name in sorted(CASES):
        case = CASES[name]()
        code, weights = tmp / f"{name}.py", tmp / f"{name}.npy"
        try:
            # expand: dilated kernels as dense ones, since CNTK 2.7 dilates on GPU only
            cntk_emitter.emit_code(case.graph, code, weights, dilation="expand")
        except UnsupportedError as exc:
            results[name] = exc
            continue
        feeds = tmp / f"{name}.in.npz"
        np.savez(feeds, **{f"in_{k}": v for k, v in case.feeds.items()})
        out = tmp / f"{name}.out.npz"
        jobs.append({"code": str(code), "weights": str(weights), "inputs_npz": str(feeds),
                     "out_npz": str(out)})
        results[name] = (case, str(out))
    _run_jobs(jobs, tmp)
    return results


@pytest.mark.cntk
@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name: str, case_results: dict[str, Any]) -> None:
    result = case_results[name]
    if name in EXPECTED_UNSUPPORTED:
        assert isinstance(result, UnsupportedError), f"{name} now converts: update the test"
        case = CASES[name]()
        assert f"node {case.node!r}" in str(result) or case.node == ""
        return
    assert not isinstance(result, Exception), result
    case, out = result
    got = _result(out)
    assert len(case.expected) == sum(1 for k in got if k.startswith("out_"))
    for i, want in enumerate(case.expected):
        want = np.asarray(want)
        have = got[f"out_{i}"]
        if want.dtype == bool or want.dtype.kind in "iu":
            # CNTK carries ints and bools as floats (0/1)
            np.testing.assert_array_equal(have, want.astype(have.dtype))
        else:
            assert_close(want.astype(have.dtype), have, name=f"{name} output {i}")


def test_missing_handlers_pinned() -> None:
    missing = set(cntk_emitter.missing_handlers())
    assert missing == EXPECTED_MISSING, (
        f"IR ops without a CNTK handler changed: now {sorted(missing)}; give new ops a "
        "handler or update EXPECTED_MISSING")
    assert all(s.name in cntk_emitter.HANDLERS or s.name in EXPECTED_MISSING
               for s in all_schemas())


def test_all_unsupported_nodes_in_one_error() -> None:
    g = Graph("two_bad")
    g.add_input("x", "float32", [None, 3, 4, 4])
    g.add_node("MaxPool", ["x"], "pool.a", kernel_shape=(2, 2), dilations=(2, 2))
    g.add_node("ArgMax", ["pool.a"], "pad-b", axis=1, select_last_index=True)
    g.outputs = ["pad-b"]
    with pytest.raises(UnsupportedError, match=r"2 nodes.*'pool\.a'.*'pad-b'"):
        cntk_emitter.build_code(g)


# -- CNTK fixtures: CNTK -> IR -> CNTK ------------------------------------------------
def _fixture_names() -> list[tuple[str, str]]:
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())["fixtures"]
    return [(e["name"], fmt) for e in manifest for fmt in e["formats"]
            if e["name"] not in ROUND_TRIP_UNSUPPORTED]


def _io(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    with np.load(FIXTURES / f"{name}.io.npz", allow_pickle=False) as io:
        ins = {str(n): io[f"in_{i}"] for i, n in enumerate(io["input_names"])}
        outs = {str(n): io[f"out_{i}"] for i, n in enumerate(io["output_names"])}
    return ins, outs


@pytest.fixture(scope="module")
def fixture_results(cntk_python: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> dict[str, Any]:
    """Every fixture through the emitter, saved and re-loaded by CNTK, in one process."""
    tmp = tmp_path_factory.mktemp("cntk_fixtures")
    results: dict[str, Any] = {}
    jobs = []
    for name, fmt in _fixture_names():
        key = f"{name}.{fmt}"
        graph = convert(None, str(FIXTURES / f"{key}.model"))
        text, weights = cntk_emitter.build_code(graph, dilation="expand")
        code, npz = tmp / f"{key}.py", tmp / f"{key}.npy"
        code.write_text(text)
        npz.write_bytes(weights_bytes(weights))
        ins, _ = _io(name)
        feeds = tmp / f"{key}.in.npz"
        # v1 files may name inputs differently: by position then
        names = [v.name for v in graph.inputs]
        arrays = [ins[n] for n in names] if all(n in ins for n in names) else list(
            ins.values())
        np.savez(feeds, **{f"in_{n}": a for n, a in zip(names, arrays, strict=True)})
        out = tmp / f"{key}.out.npz"
        jobs.append({"code": str(code), "weights": str(npz), "inputs_npz": str(feeds),
                     "out_npz": str(out), "save": str(tmp / f"{key}.model")})
        results[key] = (graph, str(out))
    _run_jobs(jobs, tmp)
    return results


def _v1_output_order(name: str) -> list[int] | None:
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())["fixtures"]
    entry = next(e for e in manifest if e["name"] == name)
    order = entry.get("v1_outputs")
    return [o["index"] for o in order] if order else None


@pytest.mark.cntk
@pytest.mark.parametrize(("name", "fmt"), _fixture_names())
def test_round_trip_matches_cntk(name: str, fmt: str, fixture_results: dict[str, Any]
                                 ) -> None:
    graph, out = fixture_results[f"{name}.{fmt}"]
    got = _result(out)
    _, refs = _io(name)
    assert [str(n) for n in got["output_names"]] == list(graph.outputs)
    ref_list: list[np.ndarray | None]
    if all(o in refs for o in graph.outputs):
        ref_list = [refs[o] for o in graph.outputs]
    elif fmt == "v1":
        # a v1 file names (and orders) its outputs its own way: MANIFEST says how;
        # training-only outputs the frontend dropped are skipped by shape
        order = _v1_output_order(name)
        assert order is not None
        pending = [list(refs.values())[i] for i in order]
        ref_list = []
        for out_name in graph.outputs:
            shape = tuple(graph.value(out_name).shape[1:])
            while pending and pending[0].shape[1:] != shape:
                pending.pop(0)
            ref_list.append(pending.pop(0) if pending else None)
    else:
        ref_list = [refs.get(o) for o in graph.outputs]
    # criteria_only: CNTK stored only the losses; the converted model computes what they
    # score (the frontend's choice), which has no stored reference: it must run, no more
    for i, (out_name, ref) in enumerate(zip(graph.outputs, ref_list, strict=True)):
        if ref is not None:
            assert_close(ref, got[f"out_{i}"], name=f"{name}.{fmt}:{out_name}")
        else:
            assert name == "criteria_only", f"no reference for {name}.{fmt}:{out_name}"
    ops = [str(o) for o in got["op_names"]]
    if name in CONV_NETS:
        assert ops.count("TransposeAxes") == 0, ops


@pytest.mark.cntk
def test_saved_model_keeps_interface(cntk_python: str, tmp_path: Path) -> None:
    """Inputs keep name, shape and only the batch axis; outputs carry the IR names."""
    from mmconv.runtimes.cntk import model_info

    graph = convert(None, str(FIXTURES / "convnet.v2.model"))
    out = tmp_path / "convnet.model"
    cntk_emitter.emit_model(graph, out)
    info = model_info(out)
    assert [a["name"] for a in info["arguments"]] == ["features"]
    assert info["arguments"][0]["shape"] == [3, 32, 32]
    assert info["arguments"][0]["dynamic_axes"] == ["defaultBatchAxis"]
    assert [o["name"] for o in info["outputs"]] == graph.outputs
    ins, refs = _io("convnet")
    got = run_model(out, {"features": ins["features"]}, output_names=graph.outputs)
    assert_close(refs["prob"], got[0])


# -- names, determinism, atomicity, options -----------------------------------------
HOSTILE = ["conv.1", "1conv", "class", "a'b", 'q"uote', "x\ny",
           "__import__('os').system('echo pwned')", "KitModel", "_w", "C", "np"]


def _hostile_graph() -> Graph:
    rng = np.random.default_rng(3)
    g = Graph("hostile\n'name\"")
    g.add_input("in put'\n", "float32", [None, 2, 5, 5])
    g.add_weight("w.1'\n", rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    prev = g.add_node("Conv", ["in put'\n", "w.1'\n"], HOSTILE[0], pads=(1, 1, 1, 1)).name
    for name in HOSTILE[1:]:
        prev = g.add_node("Relu" if len(name) % 2 else "Sigmoid", [prev], name).name
    g.outputs = [prev, HOSTILE[2]]
    return g


@pytest.mark.cntk
def test_hostile_names(cntk_python: str, tmp_path: Path) -> None:
    g = _hostile_graph()
    code, npz = tmp_path / "m.py", tmp_path / "m.npy"
    cntk_emitter.emit_code(g, code, npz)
    text = code.read_text()
    compile(text, str(code), "exec")
    assert "pwned')\n" not in text and "\nx\n" not in text
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    feeds = tmp_path / "in.npz"
    np.savez(feeds, **{"in_in put'\n": x})
    out = tmp_path / "out.npz"
    _run_jobs([{"code": str(code), "weights": str(npz), "inputs_npz": str(feeds),
                "out_npz": str(out), "save": str(tmp_path / "m.model")}], tmp_path)
    got = _result(str(out))
    assert [str(n) for n in got["output_names"]] == g.outputs
    assert not (tmp_path / "pwned").exists()


def test_deterministic(tmp_path: Path) -> None:
    g1, g2 = _hostile_graph(), _hostile_graph()
    cntk_emitter.emit_code(g1, tmp_path / "a.py", tmp_path / "a.npy")
    cntk_emitter.emit_code(g2, tmp_path / "b.py", tmp_path / "b.npy")
    assert (tmp_path / "a.py").read_bytes() == (tmp_path / "b.py").read_bytes()
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_generated_code_is_python36(tmp_path: Path) -> None:
    """No syntax newer than 3.6 (the CNTK runs prove it too; this needs no CNTK)."""
    text, _ = cntk_emitter.build_code(convert(None, str(FIXTURES / "inception_mini.v2.model")))
    assert 'f"' not in text and "f'" not in text and ":=" not in text
    assert "from __future__ import annotations" not in text
    assert text.count("\n    ") > 10  # one line per layer inside KitModel


def _unsupported_graph() -> Graph:
    g = Graph("bad")
    g.add_input("x", "float32", [None, 3, 4])
    g.add_node("CumSum", ["x"], "edge", axis=0)
    g.outputs = ["edge"]
    return g


def test_failures_leave_no_files(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="'edge'"):
        cntk_emitter.emit_code(_unsupported_graph(), tmp_path / "m.py", tmp_path / "m.npy")
    with pytest.raises(UnsupportedError):
        cntk_emitter.emit_model(_unsupported_graph(), tmp_path / "m.model")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cntk
def test_failed_save_leaves_no_file(cntk_python: str, tmp_path: Path) -> None:
    code, npz = tmp_path / "m.py", tmp_path / "m.npy"
    code.write_text("def KitModel(weight_file):\n    raise ValueError('broken model code')\n")
    npz.write_bytes(weights_bytes({}))
    out_dir = tmp_path / "out"
    with pytest.raises(MmconvError, match="broken model code"):
        cntk_emitter.code_to_model(code, npz, out_dir / "m.model")
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_options() -> None:
    g = _unsupported_graph()
    with pytest.raises(UsageError, match="opset"):
        cntk_emitter.emit_model(g, "x.model", opset=13)
    with pytest.raises(UsageError, match="format"):
        cntk_emitter.emit_model(g, "x.model", format="v3")
    with pytest.raises(UsageError, match="dilation"):
        cntk_emitter.emit_code(g, Path("x.py"), Path("x.npy"), dilation="sometimes")
    assert get_emitter("cntk") is cntk_emitter.EMITTER


# -- console path ----------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmconv", *args], capture_output=True,
                          text=True, check=False)


@pytest.mark.cntk
def test_cli_mmconvert_verify(cntk_python: str, tmp_path: Path) -> None:
    out = tmp_path / "residual.model"
    proc = _cli("mmconvert", "-sf", "cntk", "-iw", str(FIXTURES / "residual.v2.model"),
                "-df", "cntk", "-om", str(out), "--verify")
    assert proc.returncode == 0, proc.stderr
    assert "verify" in proc.stdout and "MISMATCH" not in proc.stdout
    assert out.is_file()


@pytest.mark.cntk
def test_cli_mmtocode_mmtomodel_v1(cntk_python: str, tmp_path: Path) -> None:
    """mmtoir -> mmtocode -> mmtomodel to a .dnn (legacy v1 format), then run it."""
    prefix = tmp_path / "ir"
    proc = _cli("mmtoir", "-f", "cntk", "-iw", str(FIXTURES / "convnet.v2.model"),
                "-o", str(prefix))
    assert proc.returncode == 0, proc.stderr
    code, weights = tmp_path / "kit.py", tmp_path / "kit.npy"
    proc = _cli("mmtocode", "-f", "cntk", "-n", f"{prefix}.pb", "-w", f"{prefix}.npy",
                "-d", str(code), "-dw", str(weights))
    assert proc.returncode == 0, proc.stderr
    assert "def KitModel(weight_file):" in code.read_text()
    model = tmp_path / "convnet.dnn"
    proc = _cli("mmtomodel", "-f", "cntk", "-in", str(code), "-iw", str(weights),
                "-o", str(model))
    assert proc.returncode == 0, proc.stderr
    assert model.read_bytes()[:8] == "BCN\0".encode("utf-16-le")  # legacy v1 magic
    ins, refs = _io("convnet")
    got = run_model(model, [ins["features"]])
    assert_close(refs["prob"], got[0])


def test_every_batch_norm_has_a_named_running_count(tmp_path: Path) -> None:
    """Left to CNTK, BN's sample-count constants get generated uids that collided on
    reload in a fresh process (a float64 ResNet-20 from the zoo check)."""
    graph = convert(None, str(FIXTURES / "residual.v2.model"))
    cntk_emitter.emit_code(graph, tmp_path / "m.py", tmp_path / "m.npy")
    code = (tmp_path / "m.py").read_text()
    n_bn = code.count("C.batch_normalization(")
    assert n_bn > 0
    assert code.count("running_count=C.constant(0, shape=(), dtype=np.float32, name=") == n_bn


@pytest.mark.parametrize("form, why", [
    ("resize_batch", "dynamic"), ("tile_batch", "batch axis"),
    ("expand_moves_batch", "batch axis"), ("gather_runtime_dynamic_axis", "weight"),
])
def test_new_op_forms_refused(form: str, why: str, tmp_path: Path) -> None:
    """Forms of the ONNX/Keras-era ops CNTK 2.7 cannot express: one clear error each."""
    from tests.emitters.ir_cases import refused_forms

    with pytest.raises(UnsupportedError, match=why) as info:
        cntk_emitter.emit_code(refused_forms()[form], tmp_path / "m.py", tmp_path / "m.npy")
    assert "node 'n'" in str(info.value) and "CNTK" in str(info.value)
    assert not (tmp_path / "m.py").exists()
