"""Keras tests share one TensorFlow import (slow) and build models in-process.

TensorFlow takes seconds to import, so the checks that need a fresh interpreter
share one: :func:`standalone_run` starts a single subprocess that first loads a
``.keras`` file and a SavedModel without mmconv imported, then (when the CNTK
runtime is there) runs ``python -m mmconv mmconvert -df keras --verify`` through
``runpy`` exactly as the console would.  test_keras_emitter and test_keras_cli
assert on its two halves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "cntk"

_SCRIPT = r"""
import contextlib, io, json, os, runpy, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, tensorflow as tf
# 1. the files alone: mmconv is not imported
assert "mmconv" not in sys.modules
keras_path, sm_path, in_path, out_path = sys.argv[1:5]
with np.load(in_path) as data:
    feeds = {k: data[k] for k in data.files}
order = sys.argv[5].split(",")
m = keras.models.load_model(keras_path)
a = {k: np.asarray(v) for k, v in m([feeds[k] for k in order]).items()}
sig = tf.saved_model.load(sm_path).signatures["serving_default"]
names = list(sig.structured_input_signature[1])
b = {k: v.numpy() for k, v in sig(**{k: tf.constant(feeds[k]) for k in names}).items()}
np.savez(out_path, **{"k/" + k: v for k, v in a.items()}, **{"t/" + k: v for k, v in b.items()})
print(json.dumps({"inputs": sorted(names), "outputs": sorted(b),
                  "mmconv_imported": "mmconv" in sys.modules}))
# 2. the console: python -m mmconv mmconvert ... (argv after "--")
if "--" in sys.argv:
    sys.argv = ["mmconv", *sys.argv[sys.argv.index("--") + 1:]]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module("mmconv", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    print(json.dumps({"console_code": code, "stdout": out.getvalue(),
                      "stderr": err.getvalue()[-2000:]}))
"""


@pytest.fixture(scope="session")
def standalone_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Files of fast_rcnn_mini (two inputs, two outputs, ROI pooling) written in this
    process, loaded in a fresh one; plus the console conversion of convnet when CNTK is
    available.  Returns the parsed reports and the paths."""
    from mmconv.emitters import get_emitter
    from mmconv.emitters.keras import emit_model
    from mmconv.errors import RuntimeUnavailableError
    from mmconv.frontends.cntk import convert
    from mmconv.runtimes.cntk import find_cntk_python

    tmp = tmp_path_factory.mktemp("keras_standalone")
    graph = convert(None, str(FIXTURES / "fast_rcnn_mini.v2.model"))
    emit_model(graph, tmp / "frcnn.keras")
    get_emitter("tensorflow").emit_model(graph, tmp / "frcnn_tf")
    io = np.load(FIXTURES / "fast_rcnn_mini.io.npz")
    names = [str(n) for n in io["input_names"]]
    np.savez(tmp / "in.npz", **{n: io[f"in_{i}"] for i, n in enumerate(names)})
    (tmp / "run.py").write_text(_SCRIPT)
    args = [sys.executable, str(tmp / "run.py"), str(tmp / "frcnn.keras"),
            str(tmp / "frcnn_tf"), str(tmp / "in.npz"), str(tmp / "out.npz"),
            ",".join(v.name for v in graph.inputs)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    console = tmp / "convnet.keras"
    try:
        env["MMCONV_CNTK_PYTHON"] = find_cntk_python()
        args += ["--", "mmconvert", "-sf", "cntk", "-iw", str(FIXTURES / "convnet.v2.model"),
                 "-df", "keras", "-om", str(console), "--verify"]
    except RuntimeUnavailableError:
        pass
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600, check=False)
    reports = [json.loads(line) for line in done.stdout.splitlines()
               if line.startswith("{")]
    return {"returncode": done.returncode, "stderr": done.stderr[-3000:], "reports": reports,
            "out": tmp / "out.npz", "console_model": console, "graph": graph}
