"""IR ``Scan`` as MXNet's ``_foreach`` loop, beyond the shared IR cases (test_mxnet_ops.py
runs SCAN_CASES; the CNTK Scan fixtures run in test_mxnet_recurrent.py).

Here: the symbol's shape (one ``_foreach``, one ``SwapAxis`` per scan input and output,
the outer weights the body reads as remaining inputs shared with the top graph), and
scan_edge_forms() plus the forms MXNet's loop checks refuse unless the emitter works
around them (an unread scan input and state, a state passed through, reverse), run in
mxnet 1.9.1 through ``Module``, ``gluon.SymbolBlock`` and mmtocode's code, against the
IR's numpy evaluator (mmconv.ir.scan).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mmconv.emitters.mxnet import build, emit_code, emit_model
from mmconv.ir import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.scan import run_graph
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES, scan_edge_forms
from .conftest import run_all


def _unread_forms() -> tuple[Graph, dict[str, np.ndarray]]:
    """A reverse Scan whose body ignores scan input ``x`` and state ``q`` (MXNet's foreach
    wants both read), returns state ``p`` unchanged and as a step output (an output that
    is an input), and counts steps in a [1, 1] constant state."""
    rng = np.random.default_rng(8)
    g = Graph("unread")
    g.add_input("x", "float32", [None, None, 2])
    g.add_input("u", "float32", [None, None, 3])
    g.add_input("z", "float32", [None, 3])
    g.add_weight("count0", np.zeros((1, 1), np.float32))
    g.add_weight("one", np.ones((1,), np.float32))
    b = Graph("step")
    for name, shape in (("count", [None, 1]), ("p", [None, 3]), ("q", [None, 3]),
                        ("x_t", [None, 2]), ("u_t", [None, 3])):
        b.add_input(name, "float32", shape)
    b.add_node("Add", ["count", "one"], "count_new")
    b.add_node("Neg", ["u_t"], "q_new")
    b.add_node("Relu", ["u_t"], "y")
    b.outputs = ["count_new", "p", "q_new", "y", "p"]
    g.add_node("Scan", ["count0", "z", "z", "x", "u"], "scan",
               outputs=["count", "p_last", "q_last", "ys", "ps"], body=b, num_states=3,
               reverse=1)
    g.outputs = ["count", "p_last", "q_last", "ys", "ps"]
    feeds = {"x": rng.standard_normal((2, 4, 2)).astype(np.float32),
             "u": rng.standard_normal((2, 4, 3)).astype(np.float32),
             "z": rng.standard_normal((2, 3)).astype(np.float32)}
    return g, feeds


def _forms() -> dict[str, tuple[Graph, dict[str, np.ndarray]]]:
    forms = dict(scan_edge_forms())
    forms["unread"] = _unread_forms()
    return forms


def test_scan_symbol() -> None:
    """One _foreach; the batch-major scan input and output cross one SwapAxis each, a
    reverse loop one reverse(axis=0) each; the weights are outer parameters."""
    case = CASES["scan_reverse_elman"]()
    built = build(case.graph)
    ops = [n.op for n in built.symbol.nodes]
    assert ops.count("_foreach") == 1 and ops.count("SwapAxis") == 2
    assert ops.count("reverse") == 2
    loop = next(n for n in built.symbol.nodes if n.op == "_foreach")
    (body,) = loop.subgraphs
    assert not {"SwapAxis", "reverse", "_foreach"} & {n.op for n in body.nodes}
    remains = {built.symbol.nodes[i].name for i, _ in loop.inputs[2:]}
    assert remains and remains <= set(built.args), remains
    assert len(loop.attrs["remain_locs"]) == len(remains)  # type: ignore[arg-type]
    assert loop.attrs["num_out_data"] == 1 and loop.attrs["num_outputs"] == 2


def test_weight_read_inside_and_outside_is_one_parameter() -> None:
    g, _ = scan_edge_forms()["states_only"]
    built = build(g)
    w = [i for i, n in enumerate(built.symbol.nodes) if n.name == "W" and n.op == "null"]
    assert len(w) == 1 and list(built.args).count("W") == 1
    readers = {n.op for n in built.symbol.nodes if any(src == w[0] for src, _ in n.inputs)}
    assert "_foreach" in readers and len(readers) == 2, readers


def test_unread_inputs_are_read_by_an_ignored_output() -> None:
    g, _ = _unread_forms()
    built = build(g)
    loop = next(n for n in built.symbol.nodes if n.op == "_foreach")
    (body,) = loop.subgraphs
    # x_t and q unread: two shape_array outputs after the two real step outputs
    assert [body.nodes[i].op for i, _ in body.heads[:4]].count("shape_array") == 2
    assert loop.attrs["num_out_data"] == 4 and loop.attrs["num_outputs"] == 7


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, mxnet_python: str
            ) -> dict[str, dict[str, Any]]:
    """Each form through Module, SymbolBlock and mmtocode's code (saved by MXNet)."""
    from mmconv.runtimes.mxnet import save_many_from_code

    tmp = tmp_path_factory.mktemp("mxnet_scan")
    forms = _forms()
    jobs, code_jobs, saves, wants = [], [], [], []
    for name, (g, feeds) in forms.items():
        infer_shapes(g)
        wants.append(run_graph(g, feeds))
        emit_model(g, tmp / name)
        jobs.append((tmp / name, g, feeds))
        emit_code(g, tmp / f"{name}.py", tmp / f"{name}.params")
        saves.append((tmp / f"{name}.py", tmp / f"{name}.params", tmp / f"{name}_code", 0))
        code_jobs.append((tmp / f"{name}_code", g, feeds))
    save_many_from_code(saves, python=mxnet_python)
    got = {"module": run_all(jobs, mxnet_python, "module"),
           "gluon": run_all(jobs, mxnet_python, "gluon"),
           "code": run_all(code_jobs, mxnet_python)}
    return {name: {"graph": forms[name][0], "want": want,
                   **{api: outs[i] for api, outs in got.items()}}
            for i, (name, want) in enumerate(zip(forms, wants, strict=True))}


@pytest.mark.mxnet
@pytest.mark.parametrize("api", ["module", "gluon", "code"])
@pytest.mark.parametrize("name", sorted(_forms()))
def test_form(name: str, api: str, results: dict[str, dict[str, Any]]) -> None:
    r = results[name]
    assert len(r[api]) == len(r["want"])
    for out, want, have in zip(r["graph"].outputs, r["want"], r[api], strict=True):
        assert have.shape == want.shape and have.dtype == want.dtype, (out, have.shape)
        assert_close(want, have, name=f"{name}:{out}")
