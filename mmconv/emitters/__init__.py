"""Emitters: an IR :class:`~mmconv.ir.Graph` in, code or a native model file out.

Each emitter package (listed in :data:`PACKAGES`) defines
``EMITTER = Emitter(...)`` (:class:`mmconv.emitters.base.Emitter`): its name and
aliases, file suffixes, typed options and three entry points::

    emit_code(graph, code_path, weights_path, **options)   # mmtocode
    code_to_model(code_path, weights_path, output_path)    # mmtomodel
    emit_model(graph, output_path, **options)              # mmconvert

The CLI, ``--verify`` and the docs generator read only these descriptions.
Importing an emitter package must stay cheap (its framework, if any, is
imported when an entry point runs), since listing the emitters imports them all.
Emitters never import frontends or each other.
"""

from __future__ import annotations

import importlib
import re
from functools import cache

from mmconv.emitters.base import Emitter
from mmconv.errors import UsageError

#: The packages (or modules) defining an ``EMITTER``; a new target adds one line.
PACKAGES = (
    "mmconv.emitters.onnx",
    "mmconv.emitters.pytorch",
    "mmconv.emitters.cntk",
    "mmconv.emitters.keras",
    "mmconv.emitters.keras.tensorflow",
    "mmconv.emitters.caffe",
    "mmconv.emitters.mxnet",
)


@cache
def all_emitters() -> dict[str, Emitter]:
    """Emitter name -> description, in :data:`PACKAGES` order."""
    found: dict[str, Emitter] = {}
    for package in PACKAGES:
        emitter = importlib.import_module(package).EMITTER
        if not isinstance(emitter, Emitter) or emitter.name in found:
            raise TypeError(f"{package}.EMITTER is not a new Emitter description")
        found[emitter.name] = emitter
    return found


def emitter_names() -> list[str]:
    return list(all_emitters())


def get_emitter(name: str) -> Emitter:
    """The emitter called ``name`` (case-insensitive, aliases allowed), or a UsageError
    listing the supported ones."""
    key = name.lower()
    for emitter in all_emitters().values():
        if key == emitter.name or key in emitter.aliases:
            return emitter
    raise UsageError(f"target framework {name!r} is not supported yet "
                     f"(supported: {', '.join(all_emitters())})")


def code_framework(text: str, target: Emitter) -> str | None:
    """The target another framework's generated code is for, when ``text`` (the start of
    a code file) imports none of ``target``'s modules but another emitter's; else None.

    mmtomodel uses it to refuse PyTorch code given to ``-f keras`` with one line,
    before running the code in the wrong framework."""
    def imports(emitter: Emitter) -> bool:
        return any(re.search(rf"^(import|from) {re.escape(m)}\b", text, re.M)
                   for m in emitter.code_imports)

    if not target.code_imports or imports(target):
        return None
    return next((e.name for e in all_emitters().values() if imports(e)), None)
