"""``docs/ir-ops.md``: the IR op reference, rendered from :mod:`mmconv.ir.registry`."""

from __future__ import annotations

from itertools import groupby

from mmconv.ir.registry import Attr, OpSchema, Port, all_schemas


def _port(p: Port) -> str:
    suffix = " (optional)" if p.optional else " (variadic)" if p.variadic else ""
    return f"`{p.name}`{suffix}"


def _attr(name: str, spec: Attr) -> str:
    default = "required" if spec.required else f"`{spec.default!r}`"
    choices = f" One of {list(spec.choices)}." if spec.choices else ""
    return f"| `{name}` | {spec.type} | {default} | {spec.doc}{choices} |"


def _op(schema: OpSchema) -> list[str]:
    lines = [f"### {schema.name}", ""]
    if schema.onnx:
        lines.append(f"Follows ONNX `{schema.onnx}`.")
        lines.append("")
    lines += [schema.doc, ""]
    lines.append(f"- inputs: {', '.join(_port(p) for p in schema.inputs)}")
    lines.append(f"- outputs: {', '.join(_port(p) for p in schema.outputs)}")
    lines.append("")
    if schema.attrs:
        lines += ["| attribute | type | default | meaning |", "|---|---|---|---|"]
        lines += [_attr(k, v) for k, v in schema.attrs.items()]
        lines.append("")
    return lines


def render_ir_ops() -> str:
    schemas = all_schemas()
    lines = [
        "# IR operators",
        "",
        "Generated from `mmconv/ir/ops/` by `scripts/gen_docs.py`; do not edit by hand.",
        "",
        "Layout is channels-first (NCHW activations, OIHW kernels, `[out, in]` dense "
        "weights). Shapes are static; `None` (stored as -1) marks a dynamic axis such as "
        "the batch. Padding is explicit (begin values of each spatial axis, then end "
        "values).",
        "",
        f"{len(schemas)} ops:",
        "",
    ]
    for family, group in groupby(schemas, key=lambda s: s.family):
        names = ", ".join(f"[{s.name}](#{s.name.lower()})" for s in group)
        lines.append(f"- **{family}**: {names}")
    lines.append("")
    for family, group in groupby(schemas, key=lambda s: s.family):
        lines += [f"## {family}", ""]
        for schema in group:
            lines += _op(schema)
    return "\n".join(lines).rstrip() + "\n"
