"""Hostile input: seeded truncations and bit flips of a real model give only MmconvError."""

from __future__ import annotations

import random
import time
from pathlib import Path

from mmconv.errors import MmconvError
from mmconv.frontends.cntk import convert
from mmconv.frontends.cntk.reader_v2 import read_v2
from tests.frontends.cntk._common import fixture

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
