"""Hostile input: seeded truncations and bit flips of a real model, and odd attribute values
handed to the converters, give only MmconvError."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from mmconv.errors import MmconvError
from mmconv.frontends.cntk import convert, read_model
from mmconv.frontends.cntk.model import Axis
from mmconv.frontends.cntk.reader_v2 import read_v2
from tests.frontends.cntk._common import converts_scrambled, fixture

ITERATIONS = 300


def test_fuzz_reader_and_converter(tmp_path: Path) -> None:
    data = fixture("convnet").read_bytes()
    rng = random.Random(20240607)
    path = tmp_path / "fuzz.model"
    start = time.monotonic()
    outcomes = {"ok": 0, "error": 0}
    for i in range(ITERATIONS):
        blob = bytearray(data)
        mode = i % 3
        if mode == 0:
            blob = blob[: rng.randrange(len(blob))]
        else:
            for _ in range(rng.randint(1, 8 if mode == 1 else 64)):
                pos = rng.randrange(len(blob))
                blob[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(blob))
        try:
            read_v2(path)
            convert(None, str(path))
            outcomes["ok"] += 1
        except MmconvError:
            outcomes["error"] += 1
        # Anything else propagates and fails the test, naming the iteration via the seed.
    assert outcomes["error"] > 0
    assert time.monotonic() - start < 20


#: Fixtures covering every converter family, in both formats where they exist.
ATTR_FIXTURES = ["conv_transpose", "lrn", "shape_ops", "reductions", "roipooling",
                 "compare_select", "math_unary", "times", "pool_variants", "act_softmax_axis",
                 "fast_rcnn_mini", "layer_norm", "act_softplus", "conv_explicit_pads"]

_ODD_VALUES: list[Any] = [None, -1, 0, 2**40, -(2**40), 1.5, "x", [], [0], [-3, 7, 2**31],
                          (0,), (-1, -1, -1, -1, -1), [True], Axis(99), Axis(-99),
                          Axis(0, name="defaultBatchAxis"), [Axis(5), Axis(5)], {"a": 1}]


def test_fuzz_converter_attributes(cntk_manifest: dict[str, dict[str, Any]]) -> None:
    """Odd attribute values (wrong types, out-of-range axes, negative sizes) on every
    function of models using each converter give MmconvError only, never a bare
    TypeError/KeyError/IndexError."""
    rng = random.Random(1234)
    start = time.monotonic()
    outcomes = {"ok": 0, "error": 0}
    for name in ATTR_FIXTURES:
        # the formats the fixture script wrote (a committed file missing is a failure)
        for fmt in cntk_manifest[name]["formats"]:
            path = fixture(name, fmt)
            for _ in range(25):
                ok = converts_scrambled(read_model(path), rng, _ODD_VALUES)
                outcomes["ok" if ok else "error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0
    assert time.monotonic() - start < 30
