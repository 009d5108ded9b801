#!/usr/bin/env python3
"""CNTK -> CNTK round trip of a ResNet-50-sized model: conversion time and inference speed.

The design target (DESIGN.md, "Performance targets"): a converted model runs as
fast as the source in the same runtime, CNTK -> CNTK ratio <= 1.05 (MMdnn's was
1.34, from a TransposeAxes around every conv/pool/BN).  This script:

1. takes ``resnet50.v2.model`` from the benchmark cache (built with real CNTK by
   ``scripts/make_bench_models.py`` when missing; ResNet-50 topology, random
   weights);
2. times ``mmconvert -sf cntk -df cntk`` as a user runs it (console process,
   best of ``--repeat``);
3. times both models in CNTK 2.7 in one process: same input batch, warm-up runs,
   then the best of ``--runs`` rounds for each, alternating the models so load
   on the machine hits both alike; reports the ratio converted/original, the
   max output difference and the TransposeAxes count of each.

    python scripts/bench_cntk_roundtrip.py [--batch 8] [--runs 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmconv.runtimes.cntk import find_cntk_python, run_script  # noqa: E402

CACHE = Path(os.environ.get("MMCONV_BENCH_CACHE", "~/.cache/mmconv/bench")).expanduser()

#: Runs in the CNTK env (Python 3.6): time each model on the same input.
_TIMER = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import cntk as C

batch, runs, warmup, steps, threads = (int(a) for a in sys.argv[1:6])
if threads:
    C.cntk_py.set_max_num_cputhreads(threads)
models = [C.load_model(p) for p in sys.argv[6:]]
arg = models[0].arguments[0]
shape = tuple(arg.shape)
if len(arg.dynamic_axes) == 2:  # a sequence input: a batch of equal-length sequences
    shape = (steps,) + shape
x = np.random.RandomState(0).standard_normal((batch,) + shape).astype(np.float32)

def once(m):
    t = time.perf_counter()
    out = m.eval({m.arguments[0]: x})
    return time.perf_counter() - t, out

outs = []
for m in models:
    for _ in range(warmup):
        _, out = once(m)
    outs.append(np.asarray(out))
best = [float("inf")] * len(models)
for _ in range(runs):
    for i, m in enumerate(models):
        best[i] = min(best[i], once(m)[0])

def ops(m):
    fs = C.logging.graph.depth_first_search(
        m, lambda f: isinstance(f, C.Function) and f.is_primitive, depth=-1)
    return [f.op_name for f in fs]

print(json.dumps({
    "input_shape": [batch] + list(shape),
    "best_s": best,
    "max_abs_diff": [float(np.max(np.abs(outs[0] - o))) for o in outs],
    "max_abs_ref": float(np.max(np.abs(outs[0]))),
    "transposes": [ops(m).count("TransposeAxes") for m in models],
    "primitives": [len(ops(m)) for m in models],
}))
'''


def _model(name: str, cntk_python: str) -> Path:
    path = CACHE / f"{name}.v2.model"
    if not path.exists():
        print(f"building {name} with CNTK into {CACHE} ...", file=sys.stderr)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        subprocess.run([cntk_python, str(ROOT / "scripts" / "make_bench_models.py"),
                        "--out", str(CACHE), "--only", name], check=True, env=env,
                       capture_output=True)
    return path


def _convert(src: Path, dst: Path, repeat: int) -> float:
    """Best wall time of the console command (a user's view, start-up included)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mmconv", "mmconvert", "-sf", "cntk", "-iw",
                        str(src), "-df", "cntk", "-om", str(dst)], check=True,
                       capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def time_in_cntk(paths: list[Path], batch: int, runs: int, warmup: int = 3, steps: int = 1,
                 threads: int = 0) -> dict[str, Any]:
    """Best inference time of each CNTK model on one seeded batch, in one CNTK process.

    The input is ``np.random.RandomState(0).standard_normal((batch, *shape))``, with
    ``shape`` led by ``steps`` when the model's input is a sequence
    (other benchmarks feed the same batch to other runtimes); runs alternate the
    models so load on the machine hits all alike.  ``threads`` > 0 caps CNTK's CPU
    threads (``set_max_num_cputhreads``; 0 keeps its default, one per core): on a
    shared machine CNTK's threads waiting on each other can cost more than the model.
    """
    with tempfile.TemporaryDirectory(prefix="mmconv-bench-") as tmp:
        timer = Path(tmp) / "timer.py"
        timer.write_text(_TIMER)
        proc = run_script(timer, [str(batch), str(runs), str(warmup), str(steps),
                                  str(threads), *map(str, paths)],
                          timeout=3600, what="CNTK timing")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure(src: Path, batch: int = 8, runs: int = 10, warmup: int = 3, repeat: int = 3
            ) -> dict[str, object]:
    """The round-trip figures for CNTK model ``src`` (also used by ``scripts/bench.py``)."""
    with tempfile.TemporaryDirectory(prefix="mmconv-bench-") as tmp:
        dst = Path(tmp) / f"{src.stem}.cntk.model"
        convert_s = _convert(src, dst, repeat)
        result = time_in_cntk([src, dst], batch, runs, warmup)
    src_s, dst_s = result["best_s"]
    return {
        "model": src.name, "size_mb": round(src.stat().st_size / 2**20, 1),
        "mmconvert_cntk_to_cntk_s": round(convert_s, 2), "batch": batch,
        "original_s": round(src_s, 4), "converted_s": round(dst_s, 4),
        "ratio": round(dst_s / src_s, 3), "max_abs_diff": result["max_abs_diff"][1],
        "max_abs_ref": result["max_abs_ref"], "transposes": result["transposes"],
        "primitives": result["primitives"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="conversions to time")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    src = _model(args.model, find_cntk_python())
    report = measure(src, args.batch, args.runs, args.warmup, args.repeat)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
