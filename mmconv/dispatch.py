"""A small keyed registry for converters and emit handlers.

Frontends register one converter per source op, emitters one handler per IR
op, each family in its own module; this class is the one mechanism they all
use, so the support matrices in docs/ can be generated the same way for all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Generic, TypeVar

from mmconv.errors import UsageError

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


def import_by_name(kind: str, modules: dict[str, str], aliases: dict[str, str],
                   name: str) -> ModuleType:
    """Import the module registered for ``name`` (case-insensitive, aliases allowed).

    Frontends and emitters are found this way by the CLI, so a user's
    ``-f Torch`` and ``-df pytorch`` reach the same module, and an unknown name is
    one UsageError listing what exists.
    """
    key = aliases.get(name.lower(), name.lower())
    if key not in modules:
        raise UsageError(
            f"{kind} {name!r} is not supported yet (supported: {', '.join(modules)})")
    return importlib.import_module(modules[key])
