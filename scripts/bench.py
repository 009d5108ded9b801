"""mmconv's benchmarks: the figures behind DESIGN.md's performance targets.

Why a script and not timed tests: timings depend on the machine and its load;
the targets are ratios against a baseline measured in the same run on the same
machine (reading a model within 2x of reading its bytes plus a protobuf parse;
peak memory under 2.5x the model size), and ``docs/benchmarks.md`` records what
this script printed.

Run it in the dev venv::

    python scripts/bench.py            # ResNet-152 (240 MB) and ResNet-50; table
    python scripts/bench.py --quick    # a ResNet-26 (64 MB) instead: a quick check
    python scripts/bench.py --json     # machine-readable

The models (random weights, real topology) are built on first use by
``scripts/make_bench_models.py`` in the CNTK 2.7 env (``$MMCONV_CNTK_PYTHON``
or ``~/.cache/mmconv/cntk-env/python``) into ``~/.cache/mmconv/bench``.

Sections are functions registered with :func:`section`; each gets the
:class:`Bench` settings and returns rows (dicts).  To add one (e.g. the
inference-time ratios CNTK->CNTK and CNTK->ONNX), write a function and
decorate it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path("~/.cache/mmconv/bench").expanduser()
DEFAULT_CNTK_PYTHON = Path("~/.cache/mmconv/cntk-env/python").expanduser()

Row = dict[str, Any]


@dataclass
class Bench:
    """Settings every section gets."""

    cache: Path
    repeat: int
    big: str          # the model the reading targets are stated for
    others: list[str]  # further models for the end-to-end conversion section
    cntk_python: str
    scratch: Path
    spawner: Spawner
    log: Callable[[str], None] = print
    notes: list[str] = field(default_factory=list)

    def model(self, name: str, fmt: str) -> Path:
        return self.cache / f"{name}.{fmt}.model"


SECTIONS: list[tuple[str, Callable[[Bench], list[Row]]]] = []


def section(title: str) -> Callable[[Callable[[Bench], list[Row]]],
                                    Callable[[Bench], list[Row]]]:
    """Register a section: a function ``(Bench) -> rows`` printed under ``title``."""
    def register(fn: Callable[[Bench], list[Row]]) -> Callable[[Bench], list[Row]]:
        SECTIONS.append((title, fn))
        return fn
    return register


# -- measuring ---------------------------------------------------------------------
def best_of(n: int, fn: Callable[[], object],
            cleanup: Callable[[], object] | None = None) -> float:
    """Fastest of ``n`` runs in seconds: the least disturbed by other load on the machine.

    ``cleanup`` runs after each run, untimed (deleting a 240 MB output takes a while).
    """
    times = []
    for _ in range(n):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if cleanup is not None:
            cleanup()
    return min(times)


#: Runs in a small helper process started before anything big is loaded: on Linux a
#: child's ru_maxrss includes its parent's RSS at fork time (the kernel folds the old
#: address space's high-water mark in at exec), so children must come from a small parent.
_SPAWNER = r"""
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    argv = json.loads(line)
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")[-2000:] if code else ""
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps([elapsed, cpu, usage.ru_maxrss * 1024, code, text]), flush=True)
"""


class Spawner:
    """Runs commands from a small helper process; reports wall time and the child's peak RSS."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _SPAWNER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, argv: list[str]) -> tuple[float, float, int]:
        """(wall seconds, CPU seconds (user + system), peak RSS in bytes) of one run."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        elapsed, cpu, peak, code, err = json.loads(self.proc.stdout.readline())
        if code:
            raise SystemExit(f"bench: {' '.join(argv)} failed:\n{err}")
        return elapsed, cpu, peak

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def run_child_best(b: Bench, argv_of: Callable[[Path], list[str]],
                   ) -> tuple[float, float, int]:
    """Best wall time, best CPU time and the peak RSS of ``b.repeat`` runs, each writing
    into a fresh folder (replacing an existing 240 MB output would add its removal).

    CPU time is reported beside wall time because it is far less disturbed by other
    load on a shared machine.
    """
    best, best_cpu, peak = float("inf"), float("inf"), 0
    for _ in range(b.repeat):
        with tempfile.TemporaryDirectory(dir=b.scratch) as tmp:
            t, cpu, rss = b.spawner.run(argv_of(Path(tmp)))
        best, best_cpu, peak = min(best, t), min(best_cpu, cpu), max(peak, rss)
    return best, best_cpu, peak


def console_script(name: str) -> str:
    """The installed console script beside this interpreter (what a user runs)."""
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"bench: console script {name!r} not found; pip install -e .")
    return found


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def mb(n: float) -> float:
    return round(n / 1e6, 1)


# -- sections ------------------------------------------------------------------------
@section("Models")
def models(b: Bench) -> list[Row]:
    """Build missing models with real CNTK (the topology of ResNet-152/50, random weights)."""
    names = [b.big, *b.others]
    missing = sorted({n for n in names for f in ("v2", "v1") if not b.model(n, f).exists()})
    if missing:
        b.log(f"building {', '.join(missing)} with CNTK into {b.cache} ...")
        argv = [b.cntk_python, str(ROOT / "scripts" / "make_bench_models.py"),
                "--out", str(b.cache)]
        for n in missing:
            argv += ["--only", n]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if proc.returncode:
            raise SystemExit(f"bench: building the models failed:\n{proc.stderr[-2000:]}")
    rows = []
    for n in names:
        for fmt in ("v2", "v1"):
            rows.append({"model": n, "format": fmt, "size_mb": mb(b.model(n, fmt).stat().st_size),
                         "path": str(b.model(n, fmt))})
    return rows


#: The baseline as a fresh process (interpreter start, protobuf import, read, parse), to
#: compare the console script with: both pay Python's start-up.
_READ_PARSE_SCRIPT = f"""
import sys
sys.path.insert(0, {str(ROOT / "mmconv" / "frontends" / "cntk")!r})
data = open(sys.argv[1], "rb").read()
if sys.argv[2] == "v2":
    import cntk_v2_pb2
    cntk_v2_pb2.Dictionary().ParseFromString(data)
"""


@section("Reading and mmtoir (targets: mmtoir within 2x of read+parse; peak < 2.5x size)")
def reading(b: Bench) -> list[Row]:
    """For both formats of the big model: the baseline (read; read+protobuf parse, in this
    process and as a fresh one), the reader alone (``read_model``), mmtoir in-process and
    as the console script, and the script's peak memory.  ``*_x`` are ratios: in-process
    times against the in-process baseline, the script against the fresh-process one."""
    from mmconv.cli import mmtoir
    from mmconv.frontends.cntk import cntk_v2_pb2, read_model

    script = console_script("mmtoir")
    rows = []
    for fmt in ("v2", "v1"):
        path = b.model(b.big, fmt)
        size = path.stat().st_size

        def read(path: Path = path) -> bytes:
            return path.read_bytes()

        def read_parse(path: Path = path, fmt: str = fmt) -> object:
            data = path.read_bytes()
            if fmt == "v1":
                return data  # nothing for protobuf to parse: the baseline is the read
            msg = cntk_v2_pb2.Dictionary()
            msg.ParseFromString(data)
            return msg

        out = b.scratch / "inproc"

        def in_process(path: Path = path, out: Path = out) -> None:
            with quiet():
                code = mmtoir.main(["-f", "cntk", "-n", str(path), "-d", str(out / "ir")])
            if code:
                raise SystemExit(f"bench: mmtoir failed on {path}")

        t_read = best_of(b.repeat, read)
        t_parse = best_of(b.repeat, read_parse)
        t_reader = best_of(b.repeat, lambda path=path: read_model(path))
        t_parse_sub, cpu_parse_sub, _ = run_child_best(b, lambda tmp, path=path, fmt=fmt: [
            sys.executable, "-c", _READ_PARSE_SCRIPT, str(path), fmt])
        t_inproc = best_of(b.repeat, in_process,
                           lambda out=out: shutil.rmtree(out, ignore_errors=True))
        t_sub, cpu_sub, peak = run_child_best(
            b, lambda tmp, path=path: [script, "-f", "cntk", "-n", str(path),
                                       "-d", str(tmp / "ir")])
        rows.append({
            "model": b.big, "format": fmt, "size_mb": mb(size),
            "read_s": round(t_read, 3), "read_parse_s": round(t_parse, 3),
            "read_model_s": round(t_reader, 3), "mmtoir_inproc_s": round(t_inproc, 3),
            "read_parse_script_s": round(t_parse_sub, 3),
            "mmtoir_script_s": round(t_sub, 3), "mmtoir_peak_mb": mb(peak),
            "read_parse_script_cpu_s": round(cpu_parse_sub, 3),
            "mmtoir_script_cpu_s": round(cpu_sub, 3),
            "reader_x": round(t_reader / t_parse, 2),
            "mmtoir_inproc_x": round(t_inproc / t_parse, 2),
            "mmtoir_script_x": round(t_sub / t_parse_sub, 2),
            "mmtoir_script_cpu_x": round(cpu_sub / cpu_parse_sub, 2),
            "peak_x_size": round(peak / size, 2),
        })
    return rows


@section("mmconvert -df onnx (target: peak < 2.5x size)")
def convert_onnx(b: Bench) -> list[Row]:
    """One-step conversion to ONNX as a user runs it: the console script, best of N."""
    script = console_script("mmconvert")
    rows = []
    for name in [b.big, *b.others]:
        path = b.model(name, "v2")
        size = path.stat().st_size
        t, cpu, peak = run_child_best(
            b, lambda tmp, path=path: [script, "-sf", "cntk", "-iw", str(path), "-df",
                                       "onnx", "-om", str(tmp / "model.onnx")])
        rows.append({"model": name, "format": "v2", "size_mb": mb(size),
                     "mmconvert_s": round(t, 3), "mmconvert_cpu_s": round(cpu, 3),
                     "peak_mb": mb(peak),
                     "peak_x_size": round(peak / size, 2)})
    return rows


KERAS_MODELS = {"resnet50": "ResNet50", "vgg16": "VGG16"}


def keras_model(b: Bench, name: str) -> Path:
    """A keras.applications model with random weights and BN statistics as a .keras file,
    built on first use in a child (scripts/keras_apps_check.py's ``build``)."""
    path = b.cache / f"keras_{name}.keras"
    if not path.exists():
        b.log(f"building {path} ...")
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from keras_apps_check import build;"
                " build(sys.argv[2]).save(sys.argv[3])")
        tmp = path.with_suffix(".tmp.keras")
        subprocess.run([sys.executable, "-c", code, str(ROOT / "scripts"), KERAS_MODELS[name],
                        str(tmp)], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        tmp.rename(path)
    return path


@section("Keras -> ONNX (targets: ResNet50 wall <= 0.1x tf2onnx's; VGG16 peak <= 1.4x file)")
def keras_onnx(b: Bench) -> list[Row]:
    """``mmconvert -sf keras`` (reads the .keras zip with h5py, no TensorFlow) against
    tf2onnx's from_keras (Keras loads the file, TF traces it), both whole processes as a
    user runs them, best of N, in the same run.  tf2onnx is not run on VGG16: it went
    past 23 GB on this machine."""
    script = console_script("mmconvert")
    rows = []
    for name in ("resnet50", "vgg16"):
        path = keras_model(b, name)
        size = path.stat().st_size
        t, cpu, peak = run_child_best(
            b, lambda tmp, path=path: [script, "-sf", "keras", "-iw", str(path), "-df", "onnx",
                                       "-om", str(tmp / "model.onnx")])
        row: Row = {"model": name, "size_mb": mb(size), "mmconvert_s": round(t, 2),
                    "mmconvert_cpu_s": round(cpu, 2), "peak_mb": mb(peak),
                    "peak_x_size": round(peak / size, 2)}
        if name == "resnet50":
            tool = str(ROOT / "scripts" / "bench_tf2onnx_keras.py")
            t2, cpu2, peak2 = run_child_best(
                b, lambda tmp, path=path, tool=tool: [sys.executable, tool, str(path),
                                           str(tmp / "model.onnx")])
            row.update({"tf2onnx_s": round(t2, 2), "tf2onnx_cpu_s": round(cpu2, 2),
                        "tf2onnx_peak_mb": mb(peak2), "wall_x_tf2onnx": round(t / t2, 3),
                        "cpu_x_tf2onnx": round(cpu / cpu2, 3)})
        rows.append(row)
    return rows


@section("CNTK -> CNTK round trip (target: converted/original inference time <= 1.05)")
def cntk_round_trip(b: Bench) -> list[Row]:
    """mmconvert -df cntk of the ResNet-50 (ResNet-26 with --quick), then both models
    timed in one CNTK process on the same batch (scripts/bench_cntk_roundtrip.py)."""
    module = _load_script("bench_cntk_roundtrip")
    name = b.others[0] if b.others else b.big
    row: Row = module.measure(b.model(name, "v2"), batch=4, runs=max(3, 4 * b.repeat),
                              repeat=b.repeat)
    return [row]


@section("CNTK -> ONNX inference (converted model in onnxruntime vs the original in CNTK)")
def onnx_inference(b: Bench) -> list[Row]:
    """The ResNet-50 (ResNet-26 with --quick) converted by mmconvert -df onnx, timed in
    onnxruntime on the same seeded batch as the original in CNTK 2.7, best of N each."""
    import numpy as np

    from mmconv.verify.onnx_runner import OnnxRunner

    roundtrip = _load_script("bench_cntk_roundtrip")
    name = b.others[0] if b.others else b.big
    src = b.model(name, "v2")
    batch, runs = 4, max(3, 4 * b.repeat)
    onnx_path = b.scratch / f"{name}.onnx"
    subprocess.run([console_script("mmconvert"), "-sf", "cntk", "-iw", str(src), "-df", "onnx",
                    "-om", str(onnx_path)], check=True, capture_output=True)
    cntk = roundtrip.time_in_cntk([src], batch, runs)
    runner = OnnxRunner(onnx_path)
    shape = cntk["input_shape"]
    x = np.random.RandomState(0).standard_normal(shape).astype(np.float32)
    for _ in range(3):
        runner.run([x])
    ort_s = best_of(runs, lambda: runner.run([x]))
    onnx_path.unlink()
    (cntk_s,) = cntk["best_s"]
    return [{"model": src.name, "batch": batch, "cntk_s": round(cntk_s, 4),
             "onnxruntime_s": round(ort_s, 4), "onnxruntime_over_cntk": round(ort_s / cntk_s, 3)}]


@section("Recurrent inference (CNTK-made 2-layer bidirectional LSTM -> PyTorch / ONNX)")
def recurrent_inference(b: Bench) -> list[Row]:
    """A 2-layer bidirectional LSTM built and saved by real CNTK 2.7
    (``make_bench_models.py --only bilstm2``: input 32, hidden 64 per direction, a
    Dense(10) per step, seeded random weights), converted by ``mmconvert -sf cntk`` to
    PyTorch (TorchScript ``nn.LSTM``) and ONNX (onnxruntime ``LSTM``), all three timed on
    the same seeded batch of 16 sequences of 50 steps (best of N), with the converted
    models' max difference from CNTK's output; and ``mmconvert -df cntk`` of it (CNTK ->
    CNTK) timed beside the original in the same CNTK process."""
    import numpy as np
    import torch

    from mmconv.verify.onnx_runner import OnnxRunner

    roundtrip = _load_script("bench_cntk_roundtrip")
    src = b.model("bilstm2", "v2")
    if not src.exists():
        subprocess.run([b.cntk_python, str(ROOT / "scripts" / "make_bench_models.py"),
                        "--out", str(b.cache), "--only", "bilstm2"], check=True,
                       capture_output=True)
    batch, steps, runs = 16, 50, max(3, 4 * b.repeat)
    paths = {t: b.scratch / f"bilstm2.{t}" for t in ("pt", "onnx", "cntk.model")}
    for target, path in (("pytorch", paths["pt"]), ("onnx", paths["onnx"]),
                         ("cntk", paths["cntk.model"])):
        subprocess.run([console_script("mmconvert"), "-sf", "cntk", "-iw", str(src), "-df",
                        target, "-om", str(path)], check=True, capture_output=True)
    cntk = roundtrip.time_in_cntk([src, paths["cntk.model"]], batch, runs, steps=steps)
    x = np.random.RandomState(0).standard_normal((batch, steps, 32)).astype(np.float32)
    runner = OnnxRunner(paths["onnx"])
    scripted = torch.jit.load(str(paths["pt"]))
    xt = torch.from_numpy(x)
    with torch.no_grad():
        for _ in range(3):
            runner.run([x])
            scripted(xt)
        ort_s = best_of(runs, lambda: runner.run([x]))
        torch_s = best_of(runs, lambda: scripted(xt))
        got_torch = scripted(xt)
    got_torch = (next(iter(got_torch.values())) if isinstance(got_torch, dict) else got_torch)
    ref = _cntk_outputs(b, src, x)
    errs = {name: float(np.max(np.abs(np.asarray(got).reshape(ref.shape) - ref)))
            for name, got in (("pytorch", got_torch.numpy()), ("onnx", runner.run([x])[0]))}
    cntk_s, cntk2_s = cntk["best_s"]
    return [{"model": "CNTK 2x BiLSTM 32->64, T=50", "batch": batch,
             "cntk_s": round(cntk_s, 4), "cntk_converted_s": round(cntk2_s, 4),
             "pytorch_s": round(torch_s, 4),
             "onnxruntime_s": round(ort_s, 4),
             "pytorch_over_cntk": round(torch_s / cntk_s, 3),
             "onnxruntime_over_cntk": round(ort_s / cntk_s, 3),
             "max_abs_diff_cntk": f"{cntk['max_abs_diff'][1]:.1e}",
             "max_abs_diff_pytorch": f"{errs['pytorch']:.1e}",
             "max_abs_diff_onnx": f"{errs['onnx']:.1e}"}]


@section("Recurrent, static T (one IR 2-layer BiLSTM with a static vs a sequence time axis, "
         "in CNTK)")
def recurrent_static_time(b: Bench) -> list[Row]:
    """One IR graph (2 stacked bidirectional LSTMs, input 32, hidden 64, random weights)
    emitted for CNTK twice: with a static T = 50 (what ONNX, Keras and TensorFlow
    sources give: ``to_sequence``/``unpack`` around each layer) and with a dynamic T (a
    CNTK sequence input, what a CNTK source gives); both timed in the same CNTK process
    on the same seeded batch of 16 (best of N), with CNTK's default threads and with one
    thread, and their max output difference."""
    import numpy as np

    from mmconv.emitters import get_emitter
    from mmconv.ir import Graph

    roundtrip = _load_script("bench_cntk_roundtrip")
    # many runs: a model takes ~0.02-0.06 s, and the best of few is noisy under load
    steps, size, hidden, batch, runs = 50, 32, 64, 16, max(30, 10 * b.repeat)
    paths = {}
    for form in ("sequence", "static"):
        rng = np.random.default_rng(0)
        g = Graph(f"lstm2_bidirectional_{form}")
        g.add_input("x", "float32", [None, None if form == "sequence" else steps, size])
        prev = "x"
        for layer, width in ((1, size), (2, 2 * hidden)):
            for k, shape in (("W", (2, 4 * hidden, width)), ("R", (2, 4 * hidden, hidden)),
                             ("B", (2, 8 * hidden))):
                g.add_weight(f"l{layer}/{k}", rng.uniform(-0.2, 0.2, shape).astype(np.float32))
            g.add_node("LSTM", [prev, f"l{layer}/W", f"l{layer}/R", f"l{layer}/B"], f"l{layer}",
                       outputs=[f"l{layer}"], hidden_size=hidden, direction="bidirectional")
            merged = (0, 0, 2 * hidden) if form == "sequence" else (-1, steps, 2 * hidden)
            prev = g.add_node("Reshape", [f"l{layer}"], f"l{layer}/merged",
                              shape=merged).outputs[0]
        g.outputs = [prev]
        paths[form] = b.scratch / f"lstm2_{form}.model"
        with quiet():
            get_emitter("cntk").emit_model(g, paths[form])
    rows = []
    for threads in (0, 1):
        got = roundtrip.time_in_cntk([paths["sequence"], paths["static"]], batch, runs,
                                     steps=steps, threads=threads)
        seq_s, static_s = got["best_s"]
        rows.append({"model": "IR 2x BiLSTM 32->64, T=50", "batch": batch,
                     "cntk_threads": threads or "default",
                     "sequence_input_s": round(seq_s, 4), "static_t_s": round(static_s, 4),
                     "static_over_sequence": round(static_s / seq_s, 3),
                     "max_abs_diff": f"{got['max_abs_diff'][1]:.1e}",
                     "primitives": got["primitives"]})
    for path in paths.values():
        for f in path.parent.glob(path.name + "*"):
            f.unlink()
    return rows


def _cntk_outputs(b: Bench, src: Path, x: Any) -> Any:
    """CNTK's own output of ``src`` on the batch of sequences ``x`` (its first output)."""
    import numpy as np

    from mmconv.runtimes.cntk import run_script

    npz = b.scratch / "bilstm2.in.npz"
    np.savez(npz, x=x)
    script = b.scratch / "bilstm2_eval.py"
    script.write_text(
        "import sys, warnings\nwarnings.filterwarnings('ignore')\nimport numpy as np\n"
        "import cntk as C\nm = C.load_model(sys.argv[1])\n"
        "x = np.load(sys.argv[2])['x']\n"
        "np.save(sys.argv[3], np.asarray(m.eval({m.arguments[0]: list(x)})))\n")
    out = b.scratch / "bilstm2.out.npy"
    run_script(script, [str(src), str(npz), str(out)], timeout=600, what="CNTK eval")
    return np.load(out)


def _load_script(name: str) -> Any:
    """A sibling script as a module (the benchmark scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- output --------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    """Rows as an aligned text table (paths left out); with many columns, transposed
    (one line per figure, one column per row) so it fits a terminal."""
    if not rows:
        return "(nothing)"
    cols = [c for c in rows[0] if c != "path"]
    grid = [cols, *([str(r.get(c, "")) for c in cols] for r in rows)]
    if len(cols) > 8:
        grid = [list(line) for line in zip(*grid, strict=True)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]

    def fmt(line: list[str]) -> str:
        return "  ".join(v.rjust(w) if v[:1].isdigit() else v.ljust(w)
                         for v, w in zip(line, widths, strict=True)).rstrip()
    return "\n".join(fmt(line) for line in grid)


def environment() -> Row:
    import numpy
    from google.protobuf import __version__ as protobuf_version
    from google.protobuf.internal import api_implementation

    return {"date": date.today().isoformat(), "python": platform.python_version(),
            "numpy": numpy.__version__,
            "protobuf": f"{protobuf_version} ({api_implementation.Type()})",
            "cpus": os.cpu_count(), "machine": platform.machine()}


def run_sections(args: argparse.Namespace, cntk_python: str, spawner: Spawner,
                 log: Callable[[str], None]) -> Row:
    """Every wanted section in order; the report (environment and each section's rows)."""
    with tempfile.TemporaryDirectory(prefix="mmconv-bench-") as scratch:
        b = Bench(cache=args.cache, repeat=max(1, args.repeat),
                  big="resnet26" if args.quick else "resnet152",
                  others=[] if args.quick else ["resnet50"], cntk_python=cntk_python,
                  scratch=Path(scratch), spawner=spawner, log=log)
        b.cache.mkdir(parents=True, exist_ok=True)
        report: Row = {"environment": environment(), "sections": {}}
        if not args.json:
            log(" ".join(f"{k}={v}" for k, v in report["environment"].items()))
        for title, fn in SECTIONS:
            wanted = fn is models or not args.only or any(w in title for w in args.only)
            if not wanted:
                continue
            rows = fn(b)
            report["sections"][fn.__name__] = {"title": title, "rows": rows}
            if not args.json:
                log(f"\n## {title}\n{table(rows)}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="use a ResNet-26 (64 MB) instead of ResNet-152 and ResNet-50")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="runs per measurement; the best is reported (default 3)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, metavar="DIR",
                        help=f"where the models are (built if missing; default {DEFAULT_CACHE})")
    parser.add_argument("--only", action="append", metavar="TITLE_WORD",
                        help="run only sections whose title contains this word (repeatable)")
    args = parser.parse_args(argv)
    cntk_python = os.environ.get("MMCONV_CNTK_PYTHON") or str(DEFAULT_CNTK_PYTHON)
    log: Callable[[str], None] = (lambda s: print(s, file=sys.stderr)) if args.json else print
    spawner = Spawner()  # first, while this process is small
    try:
        report = run_sections(args, cntk_python, spawner, log)
    finally:
        spawner.close()
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
