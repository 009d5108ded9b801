"""Every IR op case (tests/emitters/ir_cases.py) through the MXNet emitter, run in mxnet 1.9.1.

Each case's graph is written as ``NAME-symbol.json`` + ``NAME-0000.params`` by
``emit_model`` (no MXNet involved) and run in the real mxnet 1.9.1 env, both
with ``load_checkpoint`` + ``Module`` and with ``gluon.SymbolBlock.imports``
(all cases in one mxnet process per API); outputs are compared with the
case's numpy oracle.  Every case of the catalogue runs, the Scan loops included (as
``_foreach``; more Scan forms in test_mxnet_scan.py); refusals are pinned in
test_mxnet_emitter.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.emitters.mxnet import EMITTER, HANDLERS, emit_model, missing_handlers
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES
from .conftest import run_all

pytestmark = pytest.mark.mxnet

#: Every case runs, the Scan loops included.
RUNNABLE = sorted(CASES)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory, mxnet_python: str
            ) -> dict[str, dict[str, Any]]:
    """Each runnable case (its data is random: made once, here) and its outputs through
    both MXNet APIs (two mxnet processes)."""
    tmp = tmp_path_factory.mktemp("mxnet_ops")
    jobs, cases = [], []
    for name in RUNNABLE:
        case = CASES[name]()
        emit_model(case.graph, tmp / name)
        jobs.append((tmp / name, case.graph, case.feeds))
        cases.append(case)
    module = run_all(jobs, mxnet_python, "module")
    gluon = run_all(jobs, mxnet_python, "gluon")
    return {name: {"case": c, "module": m, "gluon": g}
            for name, c, m, g in zip(RUNNABLE, cases, module, gluon, strict=True)}


@pytest.mark.parametrize("api", ["module", "gluon"])
@pytest.mark.parametrize("name", RUNNABLE)
def test_op(name: str, api: str, outputs: dict[str, dict[str, Any]]) -> None:
    c = outputs[name]["case"]
    got = outputs[name][api]
    assert len(got) == len(c.expected)
    for out, want, have in zip(c.graph.outputs, c.expected, got, strict=True):
        want = np.asarray(want)
        assert have.shape == want.shape, (out, have.shape, want.shape)
        assert have.dtype == np.dtype(c.graph.value(out).dtype), (out, have.dtype)
        assert_close(want.astype(have.dtype), have, name=f"{name}:{out}")


DILATED = [  # (op, attrs): MXNet's Pooling has no dilation; the emitter slices per tap
    ("max", {"kernel_shape": (3, 2), "dilations": (2, 3), "strides": (2, 1),
             "pads": (1, 0, 2, 1), "ceil_mode": True}),
    ("avg", {"kernel_shape": (2, 3), "dilations": (3, 2), "strides": (2, 2),
             "pads": (1, 2, 1, 0), "ceil_mode": True, "count_include_pad": True}),
    ("avg", {"kernel_shape": (3, 3), "dilations": (2, 2), "strides": (1, 2),
             "pads": (2, 1, 0, 2)}),
    ("max", {"kernel_shape": (3,), "dilations": (3,), "strides": (2,), "pads": (2, 1)}),
]


def test_dilated_pooling(tmp_path: Path, mxnet_python: str) -> None:
    from ..ir_cases import one, rand
    from ..reference import pool

    cases = []
    for i, (mode, attrs) in enumerate(DILATED):
        x = rand(2, 3, 11) if len(attrs["kernel_shape"]) == 1 else rand(2, 3, 11, 10)
        op = "MaxPool" if mode == "max" else "AveragePool"
        case = one(op, ["x"], {"x": x}, pool(x, mode, **attrs), **attrs)  # type: ignore[arg-type]
        emit_model(case.graph, tmp_path / f"p{i}")
        cases.append((tmp_path / f"p{i}", case))
    got = run_all([(p, c.graph, c.feeds) for p, c in cases], mxnet_python)
    for (_, case), (have,) in zip(cases, got, strict=True):
        want = np.asarray(case.expected[0])
        assert have.shape == want.shape
        assert_close(want.astype(have.dtype), have, name=case.node)


def test_every_ir_op_has_a_handler() -> None:
    assert missing_handlers() == []
    assert EMITTER.handlers is HANDLERS


def test_code_of_every_case(tmp_path: Path, mxnet_python: str) -> None:
    """mmtocode's mx.sym code for every runnable case, run by MXNet (one process saves all,
    one runs all): the code path builds the same numbers as the file writer."""
    from mmconv.emitters.mxnet import emit_code
    from mmconv.runtimes.mxnet import save_many_from_code

    cases = {name: CASES[name]() for name in RUNNABLE}
    for name, case in cases.items():
        emit_code(case.graph, tmp_path / f"{name}.py", tmp_path / f"{name}.params")
    save_many_from_code([(tmp_path / f"{n}.py", tmp_path / f"{n}.params", tmp_path / n, 0)
                         for n in cases], python=mxnet_python)
    got = run_all([(tmp_path / n, c.graph, c.feeds) for n, c in cases.items()], mxnet_python)
    for (name, case), outs in zip(cases.items(), got, strict=True):
        for out, want, have in zip(case.graph.outputs, case.expected, outs, strict=True):
            want = np.asarray(want)
            assert have.shape == want.shape, (name, out)
            assert_close(want.astype(have.dtype), have, name=f"{name}:{out} (code)")


def test_batched_matmul_beyond_3d(tmp_path: Path, mxnet_python: str) -> None:
    """4-D x 4-D with equal batch axes: merged for batch_dot and split again."""
    from mmconv.ir import Graph

    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal((2, 3, 5, 2)).astype(np.float32)
    g = Graph("mm4")
    g.add_input("a", "float32", [None, 3, 4, 5])
    g.add_input("b", "float32", [None, 3, 5, 2])
    g.add_node("MatMul", ["a", "b"], "mm")
    g.outputs = ["mm"]
    emit_model(g, tmp_path / "mm")
    ((got,),) = run_all([(tmp_path / "mm", g, {"a": a, "b": b})], mxnet_python)
    assert_close(a @ b, got)
