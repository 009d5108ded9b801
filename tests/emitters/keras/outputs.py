"""A converted Keras model's outputs by IR name: one output is a tensor, several a dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def named(got: Any, names: Sequence[str]) -> dict[str, Any]:
    """``got`` (what the model returned) keyed by the IR output names ``names``."""
    if isinstance(got, dict):
        assert set(got) == set(names), (sorted(got), names)
        return got
    assert len(names) == 1, f"a tensor for {len(names)} outputs"
    return {names[0]: got}
