"""``docs/support-matrix.md``: what each frontend reads and each emitter writes.

Rendered from the registries themselves: a frontend package's ``converters``
module holds its :class:`~mmconv.dispatch.Registry` objects (source op ->
converter), an emitter's :class:`~mmconv.emitters.base.Emitter` description carries its
``handlers`` registry (IR op -> handler).  So
adding a converter or a handler updates this page by ``scripts/gen_docs.py``.
"""

from __future__ import annotations

import importlib
from itertools import groupby

from mmconv.dispatch import Registry, VersionedRegistry
from mmconv.emitters import all_emitters
from mmconv.frontends import FRONTENDS
from mmconv.ir.registry import all_schemas


def _frontend_registries(module: str) -> list[Registry | VersionedRegistry]:
    """The frontend's converter registries; none for a frontend that hands its source to
    another one (TensorFlow: tf2onnx, then the ONNX frontend)."""
    try:
        converters = importlib.import_module(f"{module}.converters")
    except ModuleNotFoundError as exc:
        if exc.name == f"{module}.converters":
            return []
        raise
    return [v for v in vars(converters).values()
            if isinstance(v, (Registry, VersionedRegistry))]


def _versioned_op(registry: VersionedRegistry, op: str) -> str:
    """```Clip` 7-10, 11+``: the opset ranges of each converter of the op."""
    spans = [f"{a}+" if b is None else (f"{a}" if a == b else f"{a}-{b}")
             for a, b in registry.ranges(op)]
    return f"`{op}` {', '.join(spans)}"


def _render_versioned(registry: VersionedRegistry) -> list[str]:
    ops = sorted(registry, key=lambda k: (registry.family(k), k))
    lines = [f"{registry.kind}: {len(ops)} ops, each with the opset ranges its converters "
             f"handle (a new range where the op's semantics changed).", "",
             "| family | source ops (opsets) |", "|---|---|"]
    for family, group in groupby(ops, key=registry.family):
        lines.append(f"| {family} | {', '.join(_versioned_op(registry, op) for op in group)} |")
    lines.append("")
    return lines


def _render_frontend(name: str, module: str) -> list[str]:
    lines = [f"## Frontend: {name}", ""]
    registries = _frontend_registries(module)
    if not registries:
        doc = (importlib.import_module(module).__doc__ or "").strip().splitlines()
        lines += [doc[0] if doc else "No converters of its own.", ""]
    for registry in registries:
        if isinstance(registry, VersionedRegistry):
            lines += _render_versioned(registry)
            continue
        ops = sorted(registry, key=lambda k: (registry.family(k), k))
        lines += [f"{registry.kind}: {len(ops)} ops.", "", "| family | source ops |",
                  "|---|---|"]
        for family, group in groupby(ops, key=registry.family):
            lines.append(f"| {family} | {', '.join(f'`{op}`' for op in group)} |")
        lines.append("")
    return lines


def _render_emitters() -> list[str]:
    handlers = {name: e.handlers for name, e in all_emitters().items()}
    names = sorted(handlers)
    lines = ["## Emitters: IR ops per target", "",
             "| IR op | family | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for schema in all_schemas():
        marks = ["yes" if schema.name in handlers[n] else "—" for n in names]
        lines.append(f"| [{schema.name}](ir-ops.md#{schema.name.lower()}) | {schema.family} | "
                     + " | ".join(marks) + " |")
    lines.append("")
    return lines


def render_support() -> str:
    lines = [
        "# Support matrix",
        "",
        "Generated from the converter and emitter registries by `scripts/gen_docs.py`; "
        "do not edit by hand. A source op listed here converts with the source "
        "framework's semantics and is tested against the real framework "
        "(`tests/frontends/`); unsupported ops are reported all at once, with node names.",
        "",
    ]
    for name, module in FRONTENDS.items():
        lines += _render_frontend(name, module)
    lines += _render_emitters()
    return "\n".join(lines).rstrip() + "\n"
