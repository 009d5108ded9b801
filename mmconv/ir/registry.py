"""The op registry: the single source of truth for what the IR means.

Each op is declared once, in the module of its family under
:mod:`mmconv.ir.ops`, with :func:`op`: its inputs, outputs, typed attributes
with defaults, a one-paragraph semantics, and a shape-inference function.
Graph building and loading check nodes against it (:func:`check_node`);
``docs/ir-ops.md`` is generated from it (``scripts/gen_docs.py``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmconv.errors import IRError
from mmconv.ir.core import AttrValue, Graph, Node, OpRules, Value, bind_op_rules

#: Attribute type names and the Python values they accept ("graph": a
#: :class:`mmconv.ir.core.Graph`, a loop body).
ATTR_TYPES = ("int", "float", "str", "bool", "ints", "floats", "strs", "graph")


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Attr:
    """An attribute of an op: its type, its default (or REQUIRED) and what it means."""

    type: str
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in ATTR_TYPES:
            raise ValueError(f"unknown attribute type {self.type!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Port:
    """A named input or output position; ``optional`` inputs may be ""."""

    name: str
    doc: str = ""
    optional: bool = False
    variadic: bool = False


#: Shape inference: given the node and its (present) input values, the
#: ``(dtype, shape)`` of each output.
InferFn = Callable[[Node, list[Value | None]], list[tuple[str, tuple]]]


@dataclass(frozen=True)
class OpSchema:
    """Everything the IR says about one op."""

    name: str
    family: str
    doc: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    attrs: dict[str, Attr] = field(default_factory=dict)
    infer: InferFn | None = None
    onnx: str | None = None

    def default(self, op: str, attr: str) -> Any:
        spec = self.attrs.get(attr)
        if spec is None:
            raise IRError(f"op {op} has no attribute {attr!r}")
        if spec.required:
            raise IRError(f"op {op}: attribute {attr!r} is required and was not set")
        return spec.default

    @property
    def min_inputs(self) -> int:
        return sum(1 for p in self.inputs if not p.optional and not p.variadic)

    @property
    def max_inputs(self) -> int | None:
        return None if any(p.variadic for p in self.inputs) else len(self.inputs)


_REGISTRY: dict[str, OpSchema] = {}
_LOADED = False


def _parse_ports(specs: Sequence[str | Port]) -> tuple[Port, ...]:
    """Ports may be written compactly: ``"B?"`` is optional, ``"X*"`` variadic."""
    ports = []
    for spec in specs:
        if isinstance(spec, Port):
            ports.append(spec)
        elif spec.endswith("?"):
            ports.append(Port(spec[:-1], optional=True))
        elif spec.endswith("*"):
            ports.append(Port(spec[:-1], variadic=True))
        else:
            ports.append(Port(spec))
    return tuple(ports)


def op(
    name: str,
    *,
    doc: str,
    inputs: Sequence[str | Port],
    outputs: Sequence[str | Port] = ("Y",),
    attrs: dict[str, Attr] | None = None,
    onnx: str | None = None,
) -> Callable[[InferFn], InferFn]:
    """Declare an IR op; decorates its shape-inference function.

    ``onnx`` names the ONNX operator whose semantics the op follows, if any
    (differences are spelled out in ``doc``).  The op's family (for docs) is
    the module that declares it, so shared inference functions can live anywhere.
    """
    family = sys._getframe(1).f_globals["__name__"].rsplit(".", 1)[-1]

    def register(infer: InferFn) -> InferFn:
        if name in _REGISTRY:
            raise ValueError(f"IR op {name} registered twice")
        _REGISTRY[name] = OpSchema(
            name=name,
            family=family,
            doc=" ".join(doc.split()),
            inputs=_parse_ports(inputs),
            outputs=_parse_ports(outputs),
            attrs=dict(attrs or {}),
            infer=infer,
            onnx=onnx,
        )
        return infer

    return register


def _load_all() -> None:
    """Import every op-family module so their declarations run (once)."""
    global _LOADED
    if _LOADED:
        return
    import mmconv.ir.ops as ops_pkg

    for info in pkgutil.iter_modules(ops_pkg.__path__):
        importlib.import_module(f"{ops_pkg.__name__}.{info.name}")
    _LOADED = True


def get_schema(name: str) -> OpSchema:
    """The schema of op ``name``; :class:`IRError` if the IR has no such op."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise IRError(f"unknown IR op {name!r}") from None


def all_schemas() -> list[OpSchema]:
    """Every registered op, sorted by family then name."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda s: (s.family, s.name))


def _check_attr_value(node: Node, attr: str, spec: Attr, value: AttrValue) -> None:
    kind = spec.type
    ok = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "ints": lambda v: isinstance(v, tuple)
        and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
        "floats": lambda v: isinstance(v, tuple)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v),
        "strs": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
        "graph": lambda v: isinstance(v, Graph),
    }[kind](value)
    if not ok:
        raise IRError(
            f"node {node.name!r} ({node.op}): attribute {attr!r} must be {kind}, got {value!r}"
        )
    if spec.choices is not None and value not in spec.choices:
        raise IRError(
            f"node {node.name!r} ({node.op}): attribute {attr!r}={value!r} "
            f"is not one of {list(spec.choices)}"
        )


def normalize_attrs(node: Node) -> None:
    """Coerce list attributes to tuples and floats given as ints to float, in place."""
    schema = get_schema(node.op)
    for key, value in list(node.attrs.items()):
        spec = schema.attrs.get(key)
        if spec is None:
            continue
        if spec.type in ("ints", "floats", "strs") and isinstance(value, list):
            value = tuple(value)
        if spec.type == "floats" and isinstance(value, tuple):
            value = tuple(float(x) for x in value)
        if spec.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        node.attrs[key] = value


def check_node(node: Node) -> None:
    """Reject unknown ops, unknown or mistyped attributes and wrong input counts."""
    schema = get_schema(node.op)
    normalize_attrs(node)
    for key, value in node.attrs.items():
        spec = schema.attrs.get(key)
        if spec is None:
            known = ", ".join(sorted(schema.attrs)) or "none"
            raise IRError(
                f"node {node.name!r} ({node.op}): unknown attribute {key!r} (known: {known})"
            )
        _check_attr_value(node, key, spec, value)
    for key, spec in schema.attrs.items():
        if spec.required and key not in node.attrs:
            raise IRError(f"node {node.name!r} ({node.op}): required attribute {key!r} missing")
    n = len(node.inputs)
    if n < schema.min_inputs or (schema.max_inputs is not None and n > schema.max_inputs):
        expected = ", ".join(p.name + ("?" if p.optional else "*" if p.variadic else "")
                             for p in schema.inputs)
        raise IRError(
            f"node {node.name!r} ({node.op}): {n} inputs given, expected ({expected})"
        )
    for i, port in enumerate(schema.inputs):
        if i < n and not node.inputs[i] and not port.optional:
            raise IRError(f"node {node.name!r} ({node.op}): input {port.name!r} is missing")
    if not node.outputs or any(not o for o in node.outputs):
        raise IRError(f"node {node.name!r} ({node.op}): outputs must be named")
    if not any(p.variadic for p in schema.outputs) and len(node.outputs) > len(schema.outputs):
        raise IRError(
            f"node {node.name!r} ({node.op}): {len(node.outputs)} outputs, "
            f"the op has {len(schema.outputs)}"
        )


def _attr_default(op_name: str, attr: str) -> Any:
    return get_schema(op_name).default(op_name, attr)


# core depends on nothing here; it is told how to check nodes and find defaults.
bind_op_rules(OpRules(check_node=check_node, attr_default=_attr_default))
