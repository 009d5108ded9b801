"""What every emitter shares: the emit-context base, the family loader, the ``Emitter``
description the CLI reads, and all-at-once error reporting.

Shared infrastructure of the emitters (like :mod:`mmconv.emitters.codegen`), not
an emitter.  A new emitter is its op-family modules (each registering handlers
in the package's ``HANDLERS`` registry), a context deriving from
:class:`EmitContextBase`, and an :data:`Emitter` description named ``EMITTER``
in its package (listed in :data:`mmconv.emitters.PACKAGES`).  The CLI,
``--verify`` and the docs generator read only that description; they never
probe an emitter module with ``getattr``/``inspect``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from mmconv.dispatch import Registry
from mmconv.errors import UnsupportedError, UsageError
from mmconv.ir import usedef
from mmconv.ir.core import Graph, Node, Shape
from mmconv.ir.passes import folded_for_emit


class IRQueries:
    """The IR facts handlers ask for, answered from ``self.graph`` (shapes inferred)."""

    graph: Graph

    def shape(self, name: str) -> Shape:
        """Static IR shape of a value (``None`` for a dynamic dim)."""
        return self.graph.value(name).shape

    def dtype(self, name: str) -> str:
        """IR dtype name (a numpy dtype name) of a value."""
        return self.graph.value(name).dtype

    def rank(self, name: str) -> int:
        return self.graph.value(name).rank

    def weight(self, name: str) -> np.ndarray | None:
        """The array of a weight, or None when ``name`` is computed at run time (or "")."""
        return self.graph.weights.get(name) if name else None


def norm_axis(axis: int, rank: int) -> int:
    """``axis`` made non-negative for a value of ``rank``.

    Emitted code and files always spell axes positively: one code path for
    every target version (negative axes are legal only in some of them), and
    no reader has to know the rank to understand an axis.  Out-of-range axes
    are a ValueError (the IR's shape inference should have refused them).
    """
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


class EmitContextBase(IRQueries):
    """The part of every emitter's context that does not depend on the target.

    Subclasses set :attr:`handlers` (the package's ``HANDLERS`` registry) and
    :attr:`target` (how errors name the target: ``"PyTorch"``, ``"CNTK 2.7
    target"``...; :meth:`target_note` may add e.g. the ONNX opset) and set
    ``self.graph`` before emitting.  They get handler dispatch with the current
    node (:attr:`node`), the one error form (:meth:`unsupported`), fresh names
    that collide with no IR name (:meth:`fresh`), use counts (:meth:`uses`) and
    axis normalisation (:meth:`axis_attr`).
    """

    #: IR op -> handler(ctx, node).  Set by each emitter's context class.
    handlers: ClassVar[Registry[Any]]
    #: The target as errors name it, e.g. "PyTorch".
    target: ClassVar[str]

    graph: Graph
    _node: Node | None = None
    _taken_names: set[str] | None = None
    _use_counts: dict[str, int] | None = None

    # -- the node being emitted ------------------------------------------------
    @property
    def node(self) -> Node | None:
        """The IR node whose handler is running (None between nodes)."""
        return self._node

    def target_note(self) -> str:
        """What errors append in parentheses; override to add version facts (opset)."""
        return self.target

    def unsupported(self, node: Node | None, why: str) -> UnsupportedError:
        """The one error form: the node (default: the current one), its op and why.

        Returned, not raised, so handlers write ``raise ctx.unsupported(node, ...)``
        and the reader sees the control flow.
        """
        node = node if node is not None else self._node
        where = f"node {node.name!r} ({node.op})" if node is not None else "graph"
        return UnsupportedError(f"{where}: {why} ({self.target_note()})")

    def handler(self, node: Node) -> Callable[..., None]:
        """The registered handler of ``node``'s op, or the unsupported error."""
        handler = self.handlers.get(node.op)
        if handler is None:
            raise self.unsupported(node, f"IR op {node.op} has no {self.handlers.kind}")
        return handler

    def emit(self, node: Node) -> None:
        """Run the handler of ``node`` with :attr:`node` set to it."""
        handler = self.handler(node)
        self._node = node
        try:
            handler(self, node)
        finally:
            self._node = None

    # -- names ---------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A name no IR value, IR node or earlier fresh name uses: ``base``, ``base_1``..."""
        if self._taken_names is None:
            self._taken_names = set(self.graph.values) | {n.name for n in self.graph.nodes}
        name, i = base, 0
        while name in self._taken_names:
            i += 1
            name = f"{base}_{i}"
        self._taken_names.add(name)
        return name

    # -- uses ----------------------------------------------------------------------
    def uses(self, name: str) -> int:
        """How many node inputs (plus graph outputs) read value ``name``.

        A weight read once may be stored in the layout its one reader wants;
        a value read more than once must keep its IR form.
        """
        if self._use_counts is None:
            counts: dict[str, int] = {}
            for n in self.graph.nodes:
                for inp in usedef.reads(n):  # a loop body's reads of weights count
                    counts[inp] = counts.get(inp, 0) + 1
            for out in self.graph.outputs:
                counts[out] = counts.get(out, 0) + 1
            self._use_counts = counts
        return self._use_counts.get(name, 0)

    # -- axes ----------------------------------------------------------------------
    def axis_attr(self, node: Node, rank: int | None = None, attr: str = "axis") -> int:
        """Attribute ``attr`` of ``node`` as a non-negative axis of its first input
        (or of a value of ``rank``); out of range is the node's unsupported error."""
        rank = self.rank(node.inputs[0]) if rank is None else rank
        try:
            return norm_axis(int(node.attr(attr)), rank)
        except ValueError as exc:
            raise self.unsupported(node, str(exc)) from None


def body_view(outer: Graph, body: Graph) -> Graph:
    """A loop body (IR ``Scan``) as its handlers need to see it: the body's nodes with the
    outermost graph's weights it reads by name (a body holds none), weights-only body
    nodes folded as the top graph's are; a body value named like an outer weight
    shadows it.  Emitters that write the body with the same handlers as the top graph
    emit this graph."""
    view = Graph(body.name)
    view.inputs, view.outputs, view.nodes = list(body.inputs), list(body.outputs), \
        list(body.nodes)
    own = {v.name for v in body.inputs} | {o for n in body.nodes for o in n.outputs}
    view.weights = {k: v for k, v in outer.weights.items() if k not in own}
    view.values = {k: v for k, v in outer.values.items() if k in view.weights}
    view.values.update(body.values)
    view.rebuild_names()
    return folded_for_emit(view)


# -- op families -------------------------------------------------------------------------
def load_families(package: str, families: Iterable[str]) -> None:
    """Import ``package.<family>`` for each family so its handlers register.

    Idempotent (Python caches modules).  An emitter package lists its families
    explicitly (mirroring ``mmconv/ir/ops/``), so a helper module is never
    mistaken for a family and the set is visible in one place.
    """
    for family in families:
        importlib.import_module(f"{package}.{family}")


def missing_handlers(handlers: Registry[Any], graph: Graph | None = None) -> list[str]:
    """IR ops without a handler in ``handlers``, sorted: of the whole IR op registry
    (docs, coverage tests), or only those ``graph`` uses."""
    if graph is not None:
        return sorted({n.op for n in graph.nodes if n.op not in handlers})
    from mmconv.ir.registry import all_schemas

    return sorted(s.name for s in all_schemas() if s.name not in handlers)


def check_handlers(graph: Graph, handlers: Registry[Any], target: str,
                   reasons: Mapping[str, str] | None = None) -> None:
    """Refuse ``graph`` up front, naming every node whose op has no handler at all.

    For targets that must know before emitting that every node can be tried
    (their contexts cannot stand in for a node without a handler).  ``reasons``
    (IR op -> why the target has no form for it) is added after the op where a
    missing layer is not self-evident (a recurrent layer the target seems to have).
    """
    reasons = reasons or {}
    problems = [f"{n.name!r} ({n.op}: {reasons[n.op]})" if n.op in reasons
                else f"{n.name!r} ({n.op})" for n in graph.nodes if n.op not in handlers]
    if problems:
        raise UnsupportedError(
            f"graph {graph.name!r}: no {target} emitter for {len(problems)} node(s): "
            f"{', '.join(problems)}")


class _Emits(Protocol):
    def emit(self, node: Node) -> None: ...


def emit_all(ctx: _Emits, nodes: Iterable[Node], target: str,
             problems: list[str] | None = None,
             on_error: Callable[[Node], None] | None = None) -> None:
    """Run ``ctx.emit`` on every node; raise one UnsupportedError naming every failure.

    ``problems`` may carry failures found before the nodes (e.g. inputs);
    ``on_error(node)`` lets a target stand in for a failed node's outputs so the
    nodes after it are still checked.
    """
    problems = [] if problems is None else problems
    for node in nodes:
        try:
            ctx.emit(node)
        except UnsupportedError as exc:
            problems.append(str(exc))
            if on_error is not None:
                on_error(node)
    if len(problems) == 1:
        raise UnsupportedError(problems[0])
    if problems:
        raise UnsupportedError(
            f"{len(problems)} nodes cannot be emitted as {target}: " + "; ".join(problems))


# -- the description the CLI reads -----------------------------------------------------------
#: ``emit_code(graph, code_path, weights_path, **options)``: mmtocode.
EmitCode = Callable[..., None]
#: ``code_to_model(code_path, weights_path, output_path)``: mmtomodel.
CodeToModel = Callable[[Path, Path, Path], None]
#: ``emit_model(graph, output_path, **options)``: mmconvert.
EmitModel = Callable[..., None]
Probe = Callable[..., dict[str, np.ndarray]]


@dataclass(frozen=True)
class Option:
    """One typed option of an emitter (a keyword of ``emit_model``/``emit_code``).

    ``flag`` is the command-line flag that sets it, so the CLI can say
    "--opset applies to the onnx target only" instead of failing in a call.
    """

    name: str
    type: type
    help: str
    flag: str | None = None
    choices: tuple[Any, ...] = ()
    #: also accepted by ``emit_code`` (mmtocode), not only by ``emit_model``
    code: bool = False

    def check(self, value: Any, target: str) -> Any:
        """``value`` validated against the type and choices; a UsageError otherwise."""
        ok = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if not ok:
            raise UsageError(f"{target} option {self.name} must be {self.type.__name__}, "
                             f"got {value!r}")
        if self.choices and value not in self.choices:
            raise UsageError(f"{target} option {self.name}={value!r} is not one of "
                             f"{', '.join(map(str, self.choices))}")
        return value


@dataclass(frozen=True)
class Emitter:
    """What the CLI, ``--verify`` and the docs know about one target.

    Each emitter package defines ``EMITTER = Emitter(...)``; nothing else of the
    package is read from outside it.
    """

    #: the ``-df``/``-f`` name, lower case
    name: str
    #: one line for ``--help`` and docs
    summary: str
    handlers: Registry[Any]
    emit_code: EmitCode
    code_to_model: CodeToModel
    emit_model: EmitModel
    #: other names users type (``torch``, ``tf``)
    aliases: tuple[str, ...] = ()
    #: suffixes of the model file(s) ``-om`` names (first is the default); more than one
    #: when a model is several files (Caffe's ``.prototxt`` + ``.caffemodel``)
    model_suffixes: tuple[str, ...] = ()
    #: suffix mmtocode gives the weights file when the user names none
    weights_suffix: str = ".npy"
    #: suffix of the code file mmtocode writes
    code_suffix: str = ".py"
    options: tuple[Option, ...] = ()
    #: the files ``-om PATH`` produces, when not just PATH (for messages)
    model_files: Callable[[Path], list[Path]] | None = field(default=None, compare=False)
    #: ``-om NAME`` is a prefix the target's files are named from (MMdnn's convention
    #: for Caffe's NAME.prototxt + NAME.caffemodel and MXNet's NAME-symbol.json + ...)
    prefix_name: bool = False
    #: top-level modules the generated code imports that identify it as this target's
    #: (mmtomodel refuses PyTorch code given to ``-f keras`` with them)
    code_imports: tuple[str, ...] = ()
    #: reads intermediate values of a model file this emitter wrote, by IR name, for
    #: ``mmverify --layers`` when the runtime cannot address them by name itself:
    #: ``probe(path, graph, inputs, names) -> {name: array in IR layout}``
    probe: Probe | None = field(default=None, compare=False)
    #: for a target whose models cannot run here (Core ML off macOS): ``check(graph,
    #: path, **options) -> summary``, what ``--verify`` checks of the file itself
    structural_check: Callable[..., str] | None = field(default=None, compare=False)
    #: for such a target: ``offline_runner(path) -> (runner, notice) | None``, a runner
    #: (``verify.runners.Runner``) computing the written model's outputs without its
    #: runtime, and the line saying how; None when the file cannot be computed that way
    offline_runner: Callable[[Path], tuple[Callable[..., list[np.ndarray]], str] | None] | None \
        = field(default=None, compare=False)
    #: makes this process able to load the target's model files when they need more than
    #: the runtime (Keras: registers mmconv's custom recurrent cells, as importing the
    #: generated code would); the verify runners call it before loading a file
    runtime_setup: Callable[[], None] | None = field(default=None, compare=False)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def check_options(self, options: Mapping[str, Any], *, code: bool = False
                      ) -> dict[str, Any]:
        """``options`` validated for ``emit_model`` (or ``emit_code`` with ``code=True``).

        An unknown option is one UsageError naming what this target takes.
        """
        allowed = [o for o in self.options if o.code or not code]
        known = {o.name: o for o in allowed}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise UsageError(f"the {self.name} emitter{' code' if code else ''} has no "
                             f"option(s) {', '.join(unknown)} "
                             f"(it takes: {', '.join(known) or 'none'})")
        return {k: known[k].check(v, self.name) for k, v in options.items()}

    def outputs(self, path: Path) -> list[Path]:
        """The files (or folder) ``-om path`` produces."""
        return self.model_files(Path(path)) if self.model_files else [Path(path)]
