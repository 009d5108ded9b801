"""A small keyed registry for converters and emit handlers.

Frontends register one converter per source op, emitters one handler per IR
op, each family in its own module; this class is the one mechanism they all
use, so the support matrices in docs/ can be generated the same way for all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    """Maps keys (op names) to functions; registering a key twice is a bug."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: dict[str, F] = {}

    def register(self, *keys: str) -> Callable[[F], F]:
        """Decorator: ``@converters.register("Convolution", "ConvolutionTranspose")``."""

        def add(fn: F) -> F:
            for key in keys:
                if key in self._table:
                    raise ValueError(f"{self.kind}: {key!r} registered twice")
                self._table[key] = fn
            return fn

        return add

    def get(self, key: str) -> F | None:
        return self._table.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._table))

    def family(self, key: str) -> str:
        """The module (op family) that handles ``key``, for support matrices."""
        return self._table[key].__module__.rsplit(".", 1)[-1]
