"""Paths and helpers shared by the CNTK frontend tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cntk"


def fixture(name: str, fmt: str = "v2") -> Path:
    return FIXTURES / f"{name}.{fmt}.model"
