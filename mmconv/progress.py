"""Progress bars that show on a terminal and stay silent when output is piped."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def interactive() -> bool:
    """True when stderr is a terminal, i.e. a person is watching."""
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], **kwargs: Any) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar on a terminal; return it untouched otherwise."""
    if not interactive():
        return iterable
    return tqdm(iterable, leave=False, file=sys.stderr, **kwargs)


def bar(**kwargs: Any) -> tqdm:
    """A manually updated tqdm bar (downloads, byte counts), disabled when piped."""
    return tqdm(disable=not interactive(), file=sys.stderr, **kwargs)
