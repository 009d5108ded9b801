"""Test helper run in the CNTK 2.7 interpreter (Python 3.6): evaluate generated modules.

    python run_code.py JOBS.json

JOBS.json is a list of ``{"code", "weights", "inputs_npz", "out_npz", "save"?}``.
Each job imports the generated module, calls ``KitModel(weights)``, feeds
``in_<name>`` arrays by argument name and writes ``out_0, ...`` (the model's
outputs in order), ``output_names`` and, for the structure tests,
``op_names`` (every primitive's op name) to ``out_npz``.  A failing job
writes ``error`` instead, so one CNTK start serves many cases.
"""

import importlib.util
import json
import sys
import traceback
import warnings

warnings.filterwarnings("ignore")
import cntk as C  # noqa: E402
import numpy as np  # noqa: E402


def op_names(model):
    funcs = C.logging.graph.depth_first_search(
        model, lambda f: isinstance(f, C.Function) and f.is_primitive, depth=-1)
    return [f.op_name for f in funcs]


def run(job, i):
    spec = importlib.util.spec_from_file_location(f"generated_{i}", job["code"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.KitModel(job["weights"])
    if job.get("save"):
        model.save(job["save"])
        model = C.load_model(job["save"])
    feeds = {}
    with np.load(job["inputs_npz"], allow_pickle=False) as data:
        for arg in model.arguments:
            feeds[arg] = data["in_" + arg.name].astype(np.dtype(arg.dtype))
    outs = list(model.outputs)
    result = model.eval(feeds, outputs=outs) if feeds else model.eval(outputs=outs)
    if not isinstance(result, dict):
        result = {outs[0]: result}
    arrays = {}
    for k, out in enumerate(outs):
        arrays[f"out_{k}"] = np.asarray(result[out])
    arrays["output_names"] = np.array([o.name for o in outs])
    arrays["op_names"] = np.array(op_names(model) or [""])
    np.savez(job["out_npz"], **arrays)


def main():
    with open(sys.argv[1]) as fh:
        jobs = json.load(fh)
    for i, job in enumerate(jobs):
        try:
            run(job, i)
        except Exception as exc:
            text = str(exc).strip().splitlines()
            first = [ln for ln in text if ln.strip() and not ln.startswith("[CALL")][:1]
            np.savez(job["out_npz"], error=np.array("{}: {}".format(
                type(exc).__name__, first[0] if first else "")))
            traceback.print_exc()
    return 0


if __name__ == "__main__":
    sys.exit(main())
