"""Every IR op case (tests/emitters/ir_cases.py) through the MXNet emitter, run in mxnet 1.9.1.

Each case's graph is written as ``NAME-symbol.json`` + ``NAME-0000.params`` by
``emit_model`` (no MXNet involved) and run in the real mxnet 1.9.1 env, both
with ``load_checkpoint`` + ``Module`` and with ``gluon.SymbolBlock.imports``
(all cases in one mxnet process per API); outputs are compared with the
case's numpy oracle.  What MXNet cannot express must fail with an
UnsupportedError naming the node; those cases are pinned here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmconv.emitters.mxnet import EMITTER, HANDLERS, emit_model, missing_handlers
from mmconv.errors import UnsupportedError
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES
from .conftest import run_all

pytestmark = pytest.mark.mxnet

#: Cases MXNet 1.9 cannot express: the reason shown.
UNSUPPORTED_CASES = {
    "maxpool_dilated": "MXNet pooling has no dilation",
    "avgpool_dilated": "MXNet pooling has no dilation",
}
RUNNABLE = sorted(n for n in CASES if n not in UNSUPPORTED_CASES)


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


@pytest.mark.parametrize("name", sorted(UNSUPPORTED_CASES))
def test_refused(name: str, tmp_path: Path) -> None:
    c = CASES[name]()
    with pytest.raises(UnsupportedError, match=UNSUPPORTED_CASES[name]) as info:
        emit_model(c.graph, tmp_path / "model")
    assert c.node in str(info.value) and "MXNet" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_every_ir_op_has_a_handler() -> None:
    assert missing_handlers() == []
    assert EMITTER.handlers is HANDLERS


def test_the_refusals_are_few() -> None:
    assert len(RUNNABLE) >= 160, len(RUNNABLE)


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
