"""The Core ML emitter end to end: files, code, CLI, names, failures.

- determinism: the same graph gives the same model spec and weight bytes (the
  package's Manifest.json carries random item identifiers coremltools makes);
- atomicity: a failed build leaves no .mlpackage folder and keeps an old one;
- hostile names cannot break or inject code and reach Core ML sanitized, with
  the originals in the metadata;
- mmtocode + mmtomodel give the model mmconvert gives;
- ``mmconvert --verify -df coreml`` checks the file, computes an .mlpackage's program
  in numpy against the source (saying it is not Core ML), and for an .mlmodel says
  plainly that nothing was compared numerically.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.coreml import code_to_model, emit, emit_code, emit_model
from mmconv.emitters.coreml.check import check_model
from mmconv.errors import UnsupportedError, UsageError, VerificationError
from mmconv.ir import Graph, serde
from tests.conftest import CNTK_FIXTURES_DIR

from ..ir_cases import conv_net, hostile_graph
from .blobs import program_consts

ROOT = Path(__file__).resolve().parents[3]
SPEC = Path("Data") / "com.apple.CoreML" / "model.mlmodel"
WEIGHTS = Path("Data") / "com.apple.CoreML" / "weights" / "weight.bin"


def _mmconv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmconv", *args], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT),
                                                    "PATH": "/usr/bin:/bin", **(env or {})},
                          check=False)


def test_conv_net_program_is_the_ir_op_for_op(ct, tmp_path: Path) -> None:
    g = conv_net()
    path = tmp_path / "net.mlpackage"
    emitted = emit_model(g, path)
    report = check_model(path, emitted)
    assert [op for op, _ in emitted.ops if op != "const"] == [
        "conv", "batch_norm", "relu", "max_pool", "conv", "avg_pool", "reshape", "linear",
        "softmax"]
    assert report.weights_checked == len(g.weights)
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    # float32 compute: no fp16 anywhere in the program
    assert "fp16" not in str(spec.mlProgram).lower()
    consts = program_consts(path, spec)
    np.testing.assert_array_equal(consts["conv1_W"], g.weights["conv1/W"])
    np.testing.assert_array_equal(consts["fc_W"], g.weights["fc/W"])


def test_mlmodel_is_a_neural_network(ct, tmp_path: Path) -> None:
    path = tmp_path / "net.mlmodel"
    report = check_model(path, emit_model(conv_net(), path))
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "neuralNetwork"
    assert report.op_types == {"convolution": 2, "batchnorm": 1, "activation": 1,
                               "pooling": 2, "reshapeStatic": 1, "innerProduct": 1,
                               "softmaxND": 1}


def test_same_graph_same_bytes(ct, tmp_path: Path) -> None:
    for i in range(2):
        emit_model(conv_net(), tmp_path / f"{i}.mlpackage")
        emit_model(conv_net(), tmp_path / f"{i}.mlmodel")
    a, b = tmp_path / "0.mlpackage", tmp_path / "1.mlpackage"
    assert (a / SPEC).read_bytes() == (b / SPEC).read_bytes()
    assert (a / WEIGHTS).read_bytes() == (b / WEIGHTS).read_bytes()
    assert (tmp_path / "0.mlmodel").read_bytes() == (tmp_path / "1.mlmodel").read_bytes()
    # only the Manifest's random item identifiers differ
    manifests = [json.loads((p / "Manifest.json").read_text()) for p in (a, b)]
    assert [sorted(e["path"] for e in m["itemInfoEntries"].values()) for m in manifests] == [
        ["com.apple.CoreML/model.mlmodel", "com.apple.CoreML/weights"]] * 2


def test_failed_build_leaves_no_package_and_keeps_the_old_one(ct, tmp_path: Path) -> None:
    path = tmp_path / "net.mlpackage"
    bad = Graph("bad")
    bad.add_input("x", "float32", [None, 2, 4, 4])
    bad.add_input("rois", "float32", [3, 5])
    bad.add_node("MaxRoiPool", ["x", "rois"], "roi", pooled_shape=(2, 2))
    bad.add_node("Relu", ["x"], "r")
    bad.outputs = ["roi", "r"]
    with pytest.raises(UnsupportedError, match=r"'roi' \(MaxRoiPool\)"):
        emit_model(bad, path)
    assert list(tmp_path.iterdir()) == []
    emit_model(conv_net(), path)
    before = (path / SPEC).read_bytes()
    with pytest.raises(UnsupportedError):
        emit_model(bad, path)
    assert (path / SPEC).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.mlpackage"]


def test_failure_while_coremltools_writes_leaves_nothing(ct, tmp_path: Path) -> None:
    """The program builds, coremltools' NeuralNetwork backend then refuses it."""
    from ..ir_cases import CASES

    path = tmp_path / "gate.mlmodel"
    with pytest.raises(UnsupportedError, match=r"try an \.mlpackage"):
        emit_model(CASES["const_sigmoid_gate"]().graph, path)
    assert list(tmp_path.iterdir()) == []


def test_bad_suffix_and_option_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.mlpackage \(ML Program\) or \.mlmodel"):
        emit_model(conv_net(), tmp_path / "net.onnx")
    with pytest.raises(UsageError, match="batch"):
        emit_model(conv_net(), tmp_path / "net.mlpackage", batch=0)
    with pytest.raises(UsageError, match="no option"):
        emit_model(conv_net(), tmp_path / "net.mlpackage", opset=13)


HOSTILE = ["in put.0", "x", "class", "0abc", "a'b\"c\n;import os", "naïve-ß", ""]


def _hostile_graph() -> Graph:
    g = Graph("hostile\n'''")
    g.add_input(HOSTILE[0], "float32", [None, 3])
    g.add_input(HOSTILE[1], "float32", [None, 3])
    g.add_weight(HOSTILE[4], np.arange(3, dtype=np.float32))
    g.add_node("Add", [HOSTILE[0], HOSTILE[1]], HOSTILE[2])
    g.add_node("Mul", [HOSTILE[2], HOSTILE[4]], HOSTILE[3])
    g.add_node("Relu", [HOSTILE[3]], HOSTILE[5])
    g.outputs = [HOSTILE[5], HOSTILE[3]]
    return g


def test_hostile_names(ct, tmp_path: Path) -> None:
    g = _hostile_graph()
    source = emit(g).source
    tree = ast.parse(source)  # still valid Python
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert {a.name for n in imports for a in n.names} == {
        "json", "Path", "coremltools", "numpy", "Builder", "Function", "Program", "types"}
    path = tmp_path / "h.mlpackage"
    check_model(path, emit_model(g, path))
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    names = [f.name for f in spec.description.input] + [f.name for f in spec.description.output]
    assert names == ["in_put_0", "x", "naive", "v_0abc"]
    for name in names:
        assert name.replace("_", "a").isalnum()
    meta = spec.description.metadata.userDefined
    assert json.loads(meta["mmconv.inputs"]) == {"in put.0": "in_put_0", "x": "x"}
    assert json.loads(meta["mmconv.outputs"]) == {HOSTILE[5]: "naive", "0abc": "v_0abc"}
    assert [f.shortDescription for f in spec.description.output] == [HOSTILE[5], "0abc"]
    # the same through mmtocode's file and mmtomodel
    emit_code(g, tmp_path / "h.py", tmp_path / "h.npz")
    code_to_model(tmp_path / "h.py", tmp_path / "h.npz", tmp_path / "h2.mlpackage")
    assert (tmp_path / "h2.mlpackage" / SPEC).read_bytes() == (path / SPEC).read_bytes()


def test_shared_hostile_graph(ct, tmp_path: Path) -> None:
    """The emitters' common hostile-name graph: code stays valid, the model checks."""
    g = hostile_graph()
    emitted = emit(g)
    tree = ast.parse(emitted.source)
    calls = {n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "__import__" not in calls and "exec" not in calls and "eval" not in calls
    path = tmp_path / "h.mlpackage"
    check_model(path, emit_model(g, path))
    emit_code(g, tmp_path / "h.py", tmp_path / "h.npz")
    code_to_model(tmp_path / "h.py", tmp_path / "h.npz", tmp_path / "h2.mlpackage")
    assert (tmp_path / "h2.mlpackage" / SPEC).read_bytes() == (path / SPEC).read_bytes()
    assert not (ROOT / "PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_code_round_trip_gives_the_same_model(ct, tmp_path: Path) -> None:
    g = conv_net()
    serde.save(g, tmp_path / "ir")
    code, weights = tmp_path / "net.py", tmp_path / "net.npz"
    r = _mmconv("mmtocode", "-f", "coreml", "-in", str(tmp_path / "ir.pb"), "-iw",
                str(tmp_path / "ir.npy"), "-o", str(code))
    assert r.returncode == 0, r.stderr
    assert weights.is_file()  # the default weights file beside the code
    text = code.read_text()
    assert "mb.conv(x=data, weight=conv1_W" in text
    assert "compute_precision=ct.precision.FLOAT32" in text
    with np.load(weights, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["conv1/W"], g.weights["conv1/W"])
    for suffix in (".mlpackage", ".mlmodel"):
        out = tmp_path / f"from_code{suffix}"
        r = _mmconv("mmtomodel", "-f", "coreml", "-in", str(code), "-iw", str(weights),
                    "-o", str(out))
        assert r.returncode == 0, r.stderr
        direct = tmp_path / f"direct{suffix}"
        emitted = emit_model(g, direct)
        check_model(out, emitted)
        if suffix == ".mlpackage":
            assert (out / SPEC).read_bytes() == (direct / SPEC).read_bytes()
            assert (out / WEIGHTS).read_bytes() == (direct / WEIGHTS).read_bytes()
        else:
            assert out.read_bytes() == direct.read_bytes()


def test_emit_code_is_deterministic(tmp_path: Path) -> None:
    for i in range(2):
        emit_code(conv_net(), tmp_path / f"{i}.py", tmp_path / f"{i}.npz")
    assert (tmp_path / "0.py").read_text() == (tmp_path / "1.py").read_text()


def test_check_catches_a_changed_weight(ct, tmp_path: Path) -> None:
    """The structural check is not vacuous: a model of other weights fails it."""
    g = conv_net()
    path = tmp_path / "net.mlpackage"
    emit_model(g, path)
    other = conv_net()
    other.weights["conv1/W"] = other.weights["conv1/W"] + np.float32(1e-3)
    with pytest.raises(VerificationError, match="conv1_W"):
        check_model(path, emit(other))


def test_check_catches_another_interface_and_program(ct, tmp_path: Path) -> None:
    path = tmp_path / "net.mlpackage"
    emit_model(conv_net(), path, batch=2)
    with pytest.raises(VerificationError, match=r"input 'data' has shape \[2, 3, 12, 12\]"):
        check_model(path, emit(conv_net()))
    other = conv_net()
    other.nodes[2].op = "Sigmoid"  # relu1 -> sigmoid: same interface, another program
    with pytest.raises(VerificationError, match="first difference at op 2"):
        check_model(path, emit(other, batch=2))


@pytest.mark.cntk
def test_mmconvert_verify_computes_the_program_and_says_how(ct, cntk_python: str,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "net.mlpackage"
    r = _mmconvert_fixture("convnet.v2.model", out, "--verify",
                           env={"MMCONV_CNTK_PYTHON": cntk_python})
    assert r.returncode == 0, r.stderr
    assert "structural check passed" in r.stdout
    assert "NOT by Core ML, which runs only on macOS" in r.stdout
    assert "verify prob: ok" in r.stdout  # the numbers, against real CNTK 2.7
    assert out.is_dir()


def test_mmconvert_verify_mlmodel_is_structural_only(ct, tmp_path: Path) -> None:
    """A NeuralNetwork cannot be computed here: no source run, a plain notice, exit 0."""
    out = tmp_path / "net.mlmodel"
    r = _mmconvert_fixture("convnet.v2.model", out, "--verify")
    assert r.returncode == 0, r.stderr
    assert "structural check passed" in r.stdout
    assert "NOT compared numerically" in r.stdout and "macOS" in r.stdout
    assert "verify prob" not in r.stdout
    assert out.is_file()


def test_mmconvert_refusal_is_one_line(ct, tmp_path: Path) -> None:
    out = tmp_path / "roi.mlpackage"
    r = _mmconvert_fixture("roipooling.v2.model", out)
    assert r.returncode != 0
    assert "MaxRoiPool" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _mmconvert_fixture(model: str, out: Path, *extra: str,
                       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _mmconv("mmconvert", "-sf", "cntk", "-iw", str(CNTK_FIXTURES_DIR / model),
                   "-df", "coreml", "-om", str(out), *extra, env=env)


def test_missing_coremltools_is_a_one_line_fix(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['coremltools'] = None\n"
            "from mmconv.cli.mmconvert import main\n"
            f"sys.exit(main(['-sf', 'cntk', '-iw', {str(CNTK_FIXTURES_DIR / 'convnet.v2.model')!r},"
            f" '-df', 'coreml', '-om', {str(tmp_path / 'n.mlpackage')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    assert r.returncode != 0
    assert 'pip install "mmconv[coreml]"' in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "n.mlpackage").exists()
