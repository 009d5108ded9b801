"""Every IR op case (the shared catalogue) through the PyTorch emitter, eager and
TorchScript, against the numpy references; plus the handler coverage check."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.emitters.pytorch import HANDLERS
from mmconv.ir import all_schemas
from mmconv.verify.compare import assert_close

from ..ir_cases import CASES
from ._common import run_both

#: IR ops the PyTorch emitter cannot write.  Empty; a new IR op without a handler
#: makes the test below fail until it gets one or is listed here on purpose.
EXPECTED_MISSING: set[str] = set()

#: Cases the PyTorch emitter refuses, with a message naming the node (none today; the
#: mechanism stays for the next gap).
REFUSED_CASES: dict[str, str] = {}


def _check(name: str, want: np.ndarray, have: np.ndarray) -> None:
    want = np.asarray(want)
    assert have.shape == want.shape, (name, have.shape, want.shape)
    if want.dtype == bool or want.dtype.kind in "iu":
        assert have.dtype == want.dtype, (name, have.dtype, want.dtype)
        np.testing.assert_array_equal(have, want)
    else:
        assert_close(want.astype(have.dtype), have, name=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name: str) -> None:
    c = CASES[name]()
    if name in REFUSED_CASES:
        from mmconv.emitters.pytorch import emit
        from mmconv.errors import UnsupportedError

        with pytest.raises(UnsupportedError, match=REFUSED_CASES[name]):
            emit(c.graph)
        return
    eager, script, _ = run_both(c.graph, c.feeds)
    assert len(eager) == len(script) == len(c.expected)
    for i, want in enumerate(c.expected):
        _check(f"{name} output {i} (eager)", want, eager[i])
        _check(f"{name} output {i} (TorchScript)", want, script[i])


def test_ir_ops_without_handler() -> None:
    missing = {s.name for s in all_schemas() if s.name not in HANDLERS}
    assert missing == EXPECTED_MISSING


def test_every_ir_op_has_a_case() -> None:
    covered = {n.op for build in CASES.values() for n in build().graph.nodes}
    assert not {s.name for s in all_schemas()} - covered


def test_resize_of_the_batch_refused() -> None:
    """PyTorch resizes static axes only: a resized dynamic batch is one clear error."""
    from mmconv.emitters.pytorch import emit
    from mmconv.errors import UnsupportedError

    from ..ir_cases import refused_forms

    with pytest.raises(UnsupportedError, match=r"node 'n'.*dynamic"):
        emit(refused_forms()["resize_batch"])


@pytest.mark.parametrize("form", ["tile_batch", "expand_moves_batch",
                                  "gather_runtime_dynamic_axis"])
def test_batch_forms_run(form: str) -> None:
    """Tile along the batch, Expand moving it, runtime indices into it: eager and
    TorchScript agree with numpy."""
    from ..ir_cases import refused_forms

    g = refused_forms()[form]
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    feeds: dict[str, np.ndarray] = {"x": x}
    if form == "tile_batch":
        feeds["x"] = x.reshape(2, 2, 3)
        want = np.tile(feeds["x"], (2, 1, 1))
    elif form == "expand_moves_batch":
        want = np.broadcast_to(x, (2, 4, 3))
    else:
        feeds["i"] = np.asarray([3, -1], np.int64)
        want = x[[3, -1]]
    eager, script, _ = run_both(g, feeds)
    _check(form, want, eager[0])
    _check(form, want, script[0])
