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


class Stages:
    """A bar over the named stages of a command (read, write IR, emit, verify...).

    Conversions of big models spend seconds in each stage; on a terminal the
    user sees which one is running.  Piped, it prints nothing.
    """

    def __init__(self, names: list[str]) -> None:
        self._bar = bar(total=len(names), bar_format="{desc} [{n_fmt}/{total_fmt}]",
                        leave=False)
        self._started = False

    def __call__(self, name: str) -> None:
        """Mark the previous stage done and show ``name`` as running."""
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.set_description_str(name)

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
