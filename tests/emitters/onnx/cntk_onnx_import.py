"""Load ONNX files with CNTK 2.7's own ONNX importer and evaluate them (Python 3.6).

Run by tests/emitters/onnx/test_onnx_cntk_import.py through
``mmconv.runtimes.cntk.run_script`` (the CNTK worker loads CNTK's own formats
only).  One process does every job: a CNTK start costs about a second.

Usage: ``python cntk_onnx_import.py REQUEST.json RESULT.json``.  REQUEST holds
``{"jobs": [{"name", "model", "inputs_npz", "out_npz"}]}``; inputs are keyed by
ONNX input name.  RESULT is a list of ``{"name", "outputs": [output names]}``
or ``{"name", "error": first line}``; the arrays go to ``out_npz`` as
``out_0, out_1, ...`` in the order of ``outputs``.  A failing job is a result,
not a crash: which models CNTK refuses is what the tests check.
"""

import json
import sys
import warnings

warnings.filterwarnings("ignore")

import cntk  # noqa: E402
import numpy as np  # noqa: E402


def first_line(exc):
    """CNTK appends a native call stack to its messages; keep the first line."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("[CALL STACK]")]
    return lines[0] if lines else type(exc).__name__


def run(job):
    model = cntk.Function.load(job["model"], format=cntk.ModelFormat.ONNX)
    with np.load(job["inputs_npz"], allow_pickle=False) as data:
        feed = {arg: data[arg.name] for arg in model.arguments}
    outputs = list(model.outputs)
    values = model.eval(feed, outputs=outputs)
    if not isinstance(values, dict):
        values = {outputs[0]: values}
    arrays = {f"out_{i}": np.asarray(values[out]) for i, out in enumerate(outputs)}
    np.savez(job["out_npz"], **arrays)
    return [out.name for out in outputs]


def main(request_path, result_path):
    cntk.device.try_set_default_device(cntk.device.cpu())
    with open(request_path) as f:
        jobs = json.load(f)["jobs"]
    results = []
    for job in jobs:
        try:
            results.append({"name": job["name"], "outputs": run(job)})
        except Exception as exc:  # a refusal by CNTK is a result to report
            results.append({"name": job["name"], "error": first_line(exc)})
    with open(result_path, "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
