"""Paths and helpers shared by the CNTK frontend tests."""

from __future__ import annotations

import contextlib
import copy
import io
import random
from collections.abc import Sequence
from pathlib import Path

from mmconv.errors import MmconvError
from mmconv.frontends.cntk.builder import convert_model
from mmconv.frontends.cntk.model import Model

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk"


def fixture(name: str, fmt: str = "v2") -> Path:
    return FIXTURES / f"{name}.{fmt}.model"


def converts_scrambled(model: Model, rng: random.Random, odd: Sequence[object],
                       rewire: float = 0.0) -> bool:
    """Set about 30% of every function's attributes of ``model`` to values from ``odd``
    (and, with probability ``rewire`` per function, one input to another function's
    output), then convert it: True if it converts, False on an MmconvError; anything
    else (a crash) propagates, which is what the fuzz tests look for."""
    for f in model.functions:
        for key in list(f.attrs):
            if rng.random() < 0.3:
                f.attrs[key] = copy.deepcopy(rng.choice(odd))
        if rewire and f.inputs and rng.random() < rewire:
            other = rng.choice(model.functions)
            f.inputs[rng.randrange(len(f.inputs))] = other.outputs[0]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            convert_model(model)
    except MmconvError:
        return False
    return True
