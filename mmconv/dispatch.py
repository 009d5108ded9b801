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


class VersionedRegistry(Generic[F]):
    """Maps (op, since-version) to functions; the newest version a model allows wins.

    ONNX ops change meaning between opsets (Softmax before 13 flattens its input,
    Clip moved its bounds from attributes to inputs at 11, Reduce* their axes at
    13/18): a converter is registered for the version an op's semantics appeared
    in, and for a model of opset ``v`` the one with the highest ``since <= v`` is
    used, as in tf2onnx's ``version_N`` handlers and TVM's ``_impl_vN``.  Each
    registration may carry a ``check`` that names an unsupported attribute value
    before anything is converted, so all problems are reported at once.
    """

    def __init__(self, kind: str, min_version: int = 1) -> None:
        self.kind = kind
        #: the oldest version the frontend reads (ranges in docs start there)
        self.min_version = min_version
        #: op -> [(since, fn, check)] sorted by since
        self._table: dict[str, list[tuple[int, F, Callable[..., str | None] | None]]] = {}

    def register(self, *keys: str, since: int = 1,
                 check: Callable[..., str | None] | None = None) -> Callable[[F], F]:
        """Decorator: ``@converters.register("Softmax", "LogSoftmax", since=13)``."""

        def add(fn: F) -> F:
            for key in keys:
                versions = self._table.setdefault(key, [])
                if any(s == since for s, _, _ in versions):
                    raise ValueError(f"{self.kind}: {key!r} since {since} registered twice")
                versions.append((since, fn, check))
                versions.sort(key=lambda v: v[0])
            return fn

        return add

    def _entry(self, key: str, version: int) -> tuple[int, F, Callable[..., str | None] | None] \
            | None:
        found = None
        for entry in self._table.get(key, ()):
            if entry[0] <= version:
                found = entry
        return found

    def get(self, key: str, version: int) -> F | None:
        """The converter for ``key`` at ``version``, or None (no op, or only newer ones)."""
        entry = self._entry(key, version)
        return entry[1] if entry else None

    def check(self, key: str, version: int) -> Callable[..., str | None] | None:
        """The attribute check registered with the converter chosen at ``version``."""
        entry = self._entry(key, version)
        return entry[2] if entry else None

    def versions(self, key: str) -> list[int]:
        """The ``since`` versions registered for ``key``, oldest first."""
        return [s for s, _, _ in self._table.get(key, ())]

    def ranges(self, key: str) -> list[tuple[int, int | None]]:
        """The version ranges ``(first, last)`` each converter of ``key`` handles (``last``
        None: up to the newest), starting at :attr:`min_version`; for support matrices."""
        starts = [max(s, self.min_version) for s in self.versions(key)]
        starts = sorted(set(starts))
        return [(s, starts[i + 1] - 1 if i + 1 < len(starts) else None)
                for i, s in enumerate(starts)]

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._table))

    def family(self, key: str) -> str:
        """The module (op family) of the newest converter of ``key``, for support matrices."""
        return self._table[key][-1][1].__module__.rsplit(".", 1)[-1]
