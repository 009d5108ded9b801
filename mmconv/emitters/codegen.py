"""What every code-emitting target shares: safe identifiers and deterministic source text.

Model-supplied names (node names, weight names) are hostile input for a code
generator: they may hold dots, dashes, quotes, newlines or Python keywords.
They enter generated code in exactly two ways:

- as identifiers, only through :class:`Namer` (sanitized, unique, stable);
- as strings, only through ``repr()`` (:func:`literal`).

This module is shared infrastructure of the emitters, not an emitter; emitters
import it, never each other.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib.util
import keyword
import os
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from mmconv.errors import MmconvError, ModelFormatError, UsageError

_NOT_IDENT = re.compile(r"[^0-9a-zA-Z_]+")
#: Names generated code defines itself; a model name must never shadow them.
RESERVED = frozenset({
    "self", "np", "numpy", "torch", "nn", "F", "tf", "keras", "layers", "cntk", "C",
    "KitModel", "weights", "weight_file", "x", "inputs", "outputs", "model", "load_weights",
    "__weights_dict", "math", "os", "sys",
}) | frozenset(dir(builtins))


def sanitize(name: str, prefix: str = "n") -> str:
    """A valid, non-keyword Python identifier derived from ``name`` (not yet unique).

    Non-ASCII letters are transliterated where Unicode allows it; every run of other
    characters becomes one underscore; a leading digit or an empty result gets
    ``prefix``; keywords, builtins and names the generated code uses get a trailing
    underscore.
    """
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = _NOT_IDENT.sub("_", text).strip("_")
    if not text:
        text = prefix
    elif text[0].isdigit():
        text = f"{prefix}_{text}"
    if keyword.iskeyword(text) or keyword.issoftkeyword(text) or text in RESERVED:
        text += "_"
    return text


class Namer:
    """Assigns each source name one unique, sanitized identifier, deterministically.

    The same source name always maps to the same identifier within one Namer;
    two names that sanitize alike (``conv.1`` and ``conv-1``) get ``conv_1`` and
    ``conv_1_2`` in first-come order, so output is stable for a given graph.
    """

    def __init__(self, prefix: str = "n", taken: Iterable[str] = ()) -> None:
        self.prefix = prefix
        self._by_name: dict[str, str] = {}
        self._used: set[str] = set(taken)

    def __call__(self, name: str) -> str:
        if name in self._by_name:
            return self._by_name[name]
        ident = unique(sanitize(name, self.prefix), self._used)
        self._by_name[name] = ident
        return ident

    def scope(self) -> Namer:
        """A Namer for a nested name space (a loop body, whose value names may repeat
        outer ones): its own name -> identifier map, identifiers unique with this one's."""
        child = Namer(self.prefix)
        child._used = self._used
        return child

    def mapping(self) -> dict[str, str]:
        """Source name -> identifier for every name seen so far (a copy)."""
        return dict(self._by_name)

    def fresh(self, base: str) -> str:
        """A new identifier for a value with no source name (an emitter's helper),
        unique among every identifier this Namer gave out or will give out."""
        return unique(sanitize(base, self.prefix), self._used)


def unique(base: str, used: set[str]) -> str:
    """``base``, else ``base_2``, ``base_3``...: the first not in ``used``, which it joins."""
    name, i = base, 2
    while name in used:
        name = f"{base}_{i}"
        i += 1
    used.add(name)
    return name


def literal(value: object) -> str:
    """A Python literal for a model-supplied value (strings, numbers, tuples): ``repr()``.

    Floats use repr so they round-trip exactly; inf/nan become ``float('inf')`` etc.
    """
    if isinstance(value, float):
        if value != value:
            return "float('nan')"
        if value in (float("inf"), float("-inf")):
            return "float('inf')" if value > 0 else "-float('inf')"
    if isinstance(value, (list, tuple)):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({items})" if isinstance(value, tuple) else f"[{items}]")
    return repr(value)


class CodeWriter:
    """Builds source text line by line with indentation; ``text()`` ends with one newline."""

    def __init__(self, indent: str = "    ") -> None:
        self._lines: list[str] = []
        self._indent = indent
        self._level = 0

    def line(self, text: str = "") -> None:
        if "\n" in text or "\r" in text:
            raise ValueError("a generated line may not contain a line break")
        self._lines.append(f"{self._indent * self._level}{text}" if text else "")

    def indent(self) -> CodeWriter:
        """Use as ``with writer.indent(): ...``."""
        return self

    def __enter__(self) -> CodeWriter:
        self._level += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._level -= 1

    def text(self) -> str:
        return "\n".join(self._lines).rstrip() + "\n"


@contextlib.contextmanager
def imported_code(path: str | os.PathLike[str], target: str) -> Iterator[ModuleType]:
    """Import code ``mmtocode -f target`` wrote, by path, for the block's duration.

    The module gets a private name derived from its path and is registered in
    ``sys.modules`` only while the block runs (TorchScript needs to find its
    source; nothing else should see it afterwards).  A file that does not run or
    defines no ``KitModel`` is one :class:`ModelFormatError` naming it.
    """
    path = Path(path)
    name = "mmconv_kitmodel_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelFormatError(f"{path}: cannot be imported as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # no __pycache__ beside the user's file: importing it is not installing it
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelFormatError(f"{path}: the code does not run "
                                   f"({type(exc).__name__}{': ' + first if first else ''})"
                                   ) from exc
        if not callable(getattr(module, "KitModel", None)):
            raise ModelFormatError(f"{path}: defines no KitModel(weight_file); was it written "
                                   f"by mmtocode -f {target}?")
        yield module
    finally:
        sys.dont_write_bytecode = dont_write
        sys.modules.pop(name, None)


def build_kitmodel(module: ModuleType, code_path: str | os.PathLike[str],
                   weights_path: str | os.PathLike[str]) -> Any:
    """``module.KitModel(weights_path)``; a failure there means the weights are not the
    ones mmtocode wrote for this code: a UsageError (exit 2), the same in every target."""
    try:
        return module.KitModel(str(weights_path))
    except MmconvError:
        raise
    except Exception as exc:  # the user's files: report them, not our traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(
            f"{weights_path}: does not fit the code {code_path} "
            f"({type(exc).__name__}{': ' + first if first else ''}); give the weights file "
            "mmtocode wrote with it") from exc

