"""Convert every zoo model with the real ``mmconvert`` and check it against real CNTK.

Why: the checked-in fixtures are minis; the acceptance models are real networks
written by other people.  ``scripts/make_zoo_models.py`` builds such models
with CNTK 2.7 into a cache folder; this script (dev venv) builds the zoo when it
is missing, then for every model, format (v2, v1) and target runs::

    mmconvert -sf cntk -iw MODEL -df TARGET -om OUT --verify

as a subprocess (the console path users take: CNTK runs the source, the
target's runtime the converted model, on mmconv's own seeded random inputs).
For the ONNX target it also runs the converted model on the inputs the zoo
builder chose (realistic ROIs, pixel ranges, one-hot labels) and compares with
the outputs CNTK computed for them (column ``ref err``).  Targets other than
ONNX are checked when they are registered in ``mmconv.emitters.PACKAGES``.

It is a heavy check (many minutes: ResNets, VGG-16, Inception-v3 at full size),
not a timed test.  Prints a table and exits 1 if anything failed.  Results are
documented in docs/zoo.md.

    python scripts/zoo_check.py [--zoo DIR] [--only NAME ...] [--targets onnx ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZOO = Path("~/.cache/mmconv/zoo").expanduser()
SUFFIX = {"onnx": ".onnx", "pytorch": ".pt", "keras": ".keras", "cntk": ".model",
          "tensorflow": ".savedmodel", "caffe": "", "mxnet": ""}
VERIFY_RE = re.compile(r"^verify (?P<name>.*?): (?P<verdict>ok|MISMATCH) max\|a-b\|=(?P<err>\S+)")


@dataclass
class Row:
    model: str
    fmt: str
    target: str
    passed: bool
    max_err: float | None
    ref_err: float | None
    seconds: float
    error: str = ""


def cntk_python() -> str:
    sys.path.insert(0, str(ROOT))
    from mmconv.runtimes.cntk import find_cntk_python

    return find_cntk_python()


def ensure_zoo(zoo: Path, only: list[str] | None, rebuild: bool) -> dict:
    manifest = zoo / "MANIFEST.json"
    have = set()
    if manifest.is_file():
        have = {e["name"] for e in json.loads(manifest.read_text())["models"]}
    missing = [n for n in only or [] if n not in have]
    if rebuild or not manifest.is_file() or missing:
        cmd = [cntk_python(), str(ROOT / "scripts" / "make_zoo_models.py"), "--out", str(zoo)]
        if rebuild and only:
            cmd += ["--only", *only]
        elif missing and manifest.is_file():
            cmd += ["--only", *missing]
        print("building the zoo:", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=False)
    return {e["name"]: e for e in json.loads(manifest.read_text())["models"]}


def registered_targets() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from mmconv.emitters import emitter_names

    return [t for t in ("onnx", "pytorch", "keras", "tensorflow", "cntk", "caffe", "mxnet")
            if t in emitter_names()]


def mmconvert_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("mmconvert")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("mmconvert")
    return [found] if found else [sys.executable, "-m", "mmconv.cli.mmconvert"]


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower() or "MISMATCH" in line or "Traceback" in line:
            return line.strip()[:200]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip()[:200] if lines else ""


def reference_error(entry: dict, zoo: Path, onnx_path: Path) -> float | None:
    """max |a-b| / max(1, max|ref|) of the ONNX model on the zoo's own inputs vs CNTK."""
    sys.path.insert(0, str(ROOT))
    from mmconv.verify.onnx_runner import OnnxRunner  # onnx.reference where ort lacks kernels

    io = np.load(zoo / f"{entry['name']}.io.npz", allow_pickle=False)
    names = [str(n) for n in io["input_names"]]
    runner = OnnxRunner(onnx_path)
    wanted = set(runner.input_names)
    feed = {n: io[f"in_{k}"] for k, n in enumerate(names) if n in wanted}
    if len(feed) != len(wanted):
        return None
    got = runner.run(feed)
    refs = [io[f"out_{k}"] for k in range(len(io["output_names"]))]
    worst = 0.0
    used: set[int] = set()
    for g in got:
        best = None
        for k, r in enumerate(refs):
            if k in used or r.size != g.size:
                continue
            rr = r.astype(np.float64).ravel()
            d = float(np.max(np.abs(rr - g.astype(np.float64).ravel()))) if r.size else 0.0
            d /= max(1.0, float(np.max(np.abs(rr))) if r.size else 1.0)
            if best is None or d < best[1]:
                best = (k, d)
        if best is None:
            continue  # an output CNTK's saved outputs do not hold (criteria-only models)
        used.add(best[0])
        worst = max(worst, best[1])
    return worst if used else None


def check_one(entry: dict, fmt: str, target: str, zoo: Path, out_dir: Path,
              timeout: float) -> Row:
    name = entry["name"]
    src = zoo / f"{name}.{fmt}.model"
    out = out_dir / f"{name}.{fmt}{SUFFIX.get(target, '.out')}"
    cmd = [*mmconvert_cmd(), "-sf", "cntk", "-iw", str(src), "-df", target, "-om", str(out),
           "--verify"]
    io = np.load(zoo / f"{name}.io.npz", allow_pickle=False)
    shapes = []
    for spec in entry["inputs"]:
        if any(d < 0 for d in spec["shape"]):
            shapes = [",".join(str(d) for d in io[f"in_{j}"].shape[1:])
                      for j in range(len(entry["inputs"]))]
            break
    if shapes:
        cmd += ["--inputShape", *shapes]
    # Timed alone first: the conversion's own seconds (the --verify run adds CNTK's).
    t0 = time.perf_counter()
    try:
        plain = subprocess.run([c for c in cmd if c != "--verify"],
                               capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - t0
        if plain.returncode != 0:
            return Row(name, fmt, target, False, None, None, seconds,
                       _first_error(plain.stdout + plain.stderr))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Row(name, fmt, target, False, None, None, time.perf_counter() - t0,
                   f"timed out after {timeout:g} s")
    text = proc.stdout + proc.stderr
    errs = [float(m["err"]) for m in map(VERIFY_RE.match, text.splitlines()) if m]
    max_err = max(errs) if errs else None
    ref_err = None
    error = "" if proc.returncode == 0 else _first_error(text)
    passed = proc.returncode == 0 and bool(errs)
    if passed and target == "onnx":
        try:
            ref_err = reference_error(entry, zoo, out)
        except Exception as exc:  # report, do not stop the table
            error = f"reference run failed: {type(exc).__name__}: {str(exc)[:150]}"
            passed = False
        if ref_err is not None and not ref_err <= 1e-4:
            passed = False
            error = error or f"reference inputs: rel err {ref_err:.3g}"
    with_file = out if out.exists() else None
    if with_file is not None:
        if with_file.is_dir():
            shutil.rmtree(with_file, ignore_errors=True)
        else:
            with_file.unlink()
    return Row(name, fmt, target, passed, max_err, ref_err, seconds, error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zoo", type=Path, default=DEFAULT_ZOO)
    parser.add_argument("--only", nargs="*", help="these models only")
    parser.add_argument("--formats", nargs="*", default=["v2", "v1"])
    parser.add_argument("--targets", nargs="*",
                        help="default: every registered emitter among "
                        "onnx/pytorch/keras/tensorflow/cntk/caffe/mxnet")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the zoo models first")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one mmconvert --verify may take")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("MMCONV_CNTK_PYTHON", cntk_python())
    zoo = args.zoo.expanduser()
    entries = ensure_zoo(zoo, args.only, args.rebuild)
    targets = args.targets or registered_targets()
    names = [n for n in entries if not args.only or n in args.only]
    rows: list[Row] = []
    header = (f"{'model':<28} {'fmt':<3} {'target':<8} {'result':<6} {'max err':>9} "
              f"{'ref err':>9} {'conv s':>7}  first error")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="mmconv-zoo-") as tmp:
        for name in names:
            entry = entries[name]
            for fmt in args.formats:
                if fmt not in entry["formats"]:
                    continue
                for target in targets:
                    row = check_one(entry, fmt, target, zoo, Path(tmp), args.timeout)
                    rows.append(row)
                    err = "-" if row.max_err is None else f"{row.max_err:.2e}"
                    ref = "-" if row.ref_err is None else f"{row.ref_err:.2e}"
                    print(f"{row.model:<28} {row.fmt:<3} {row.target:<8} "
                          f"{'pass' if row.passed else 'FAIL':<6} {err:>9} {ref:>9} "
                          f"{row.seconds:>7.1f}  {row.error}", flush=True)
    failed = [r for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} passed")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
