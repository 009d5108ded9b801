"""Recognise CNTK's recurrences in a read :class:`Model`, whichever file format it came from.

CNTK has no recurrent-layer op: ``cntk.layers.Recurrence(LSTM(n))`` saves a loop of
primitives closed by a ``PastValue`` (``FutureValue`` with ``go_backwards``) whose
body is the cell's arithmetic (``Times``, ``Plus``, ``Slice``, ``StableSigmoid``,
``Tanh``, ``ElementTimes``).  A v2 file keeps the cell as a block named ``LSTM``,
``GRU`` or ``RNNStep``; a legacy v1 file flattens everything.  So recognition here is
by **structure** only (the same code serves both formats): find each loop (the
functions on a cycle through a delay), match its body against the arithmetic of
cntk.layers' LSTM, GRU and RNNStep (``bindings/python/cntk/layers/blocks.py``), and
replace the loop by one synthetic function (op :data:`CELL_OP`) that the converter
in :mod:`.converters.recurrent` turns into an IR ``LSTM``/``GRU``/``RNN`` node, with
the weights already re-ordered into ONNX's gate order.

``sequence.last``/``first`` (a delay of a constant, ``Where``, ``PackedIndex``,
``GatherPacked``) become one synthetic function (op :data:`STEP_OP`) as well.

Every other ``PastValue``/``FutureValue`` (a hand-written loop that is no such cell,
a cell with self-stabilisation or a projection, a cell with a non-zero constant
initial state, a one-step shift used as a feature) becomes one synthetic function
(op :data:`~.loops.LOOP_OP`, see :mod:`.loops`) that the converters turn into an IR
``Scan``.  Refused, all in one error naming each function: delays of several steps,
a loop mixing PastValue and FutureValue, and ``OptimizedRNNStack`` (cuDNN-only).

CNTK's gate orders (Python-order weights: ``W`` is ``[input, G*H]``, ``x @ W``):
LSTM ``i, c~, f, o``; GRU ``z, r, h~`` (``H`` holds the z and r columns of the
recurrent weights, ``H1`` the candidate's); ONNX's are ``i, o, f, c`` and ``z, r, h``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from mmconv.frontends.base import UnsupportedOps
from mmconv.frontends.cntk.loops import LoopError, describe, loop_function
from mmconv.frontends.cntk.model import DELAY_OPS, Axis, Function, Model

#: The synthetic op a recognised cell loop becomes (attributes: see :class:`Cell`).
CELL_OP = "mmconv.RecurrentCell"
#: The synthetic op ``sequence.first``/``last`` becomes (attribute ``index``: 0 or -1).
STEP_OP = "mmconv.SequenceStep"
SIGMOIDS = frozenset({"StableSigmoid", "Sigmoid"})
#: CNTK activation ops -> ONNX recurrent activation names.
ACTIVATIONS = {"StableSigmoid": "Sigmoid", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "ReLU": "Relu"}
_ACT_OPS = frozenset(ACTIVATIONS)
#: ONNX LSTM gate order (i, o, f, c) as indices into CNTK's (i, c, f, o).
LSTM_ORDER = (0, 3, 2, 1)


class _NoMatch(Exception):
    """The loop is not the cell being tried (the message says what differed)."""


#: What matching code raises on a structurally odd (hostile) graph: reported as no match.
_MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, StopIteration,
              OverflowError)


@dataclass
class Cell:
    """A recognised recurrence: ONNX-ordered weights (one direction, batch-major)."""

    kind: str  # "LSTM", "GRU" or "RNN"
    direction: str  # "forward" or "reverse"
    hidden: int
    W: np.ndarray  # [1, G*H, input]
    R: np.ndarray  # [1, G*H, H]
    B: np.ndarray  # [1, 2*G*H]
    P: np.ndarray | None = None  # [1, 3*H] (LSTM peepholes i, o, f)
    #: uids of computed initial states (RecurrenceFrom), "" for zeros: h, and c (LSTM).
    initial: tuple[str, ...] = ()
    #: The cell's activation as ONNX names it (LSTM: g = h, the candidate's and the
    #: output's; GRU: the candidate's; RNN: its only one); the gates are sigmoid.
    activation: str = "Tanh"


class _Graph:
    """Lookups over the model's functions."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.producer = model.producers()
        self.consumers: dict[str, list[Function]] = defaultdict(list)
        for f in model.functions:
            for i in f.inputs:
                self.consumers[i].append(f)

    def uses(self, uid: str) -> list[Function]:
        """The functions reading ``uid``, but for Combines (a cell block's root, left over
        after inlining, groups outputs and computes nothing)."""
        return [f for f in self.consumers.get(uid, []) if f.op != "Combine"]

    def src(self, uid: str) -> Function | None:
        return self.producer.get(uid)

    def weight(self, uid: str) -> np.ndarray | None:
        var = self.model.variables.get(uid)
        if var is not None and var.kind in ("parameter", "constant") and var.value is not None:
            return np.asarray(var.value)
        return None

    def only(self, uid: str, op: str | frozenset[str], why: str) -> Function:
        f = self.src(uid)
        ops = {op} if isinstance(op, str) else op
        if f is None or f.op not in ops:
            raise _NoMatch(why)
        return f

    def through(self, uid: str) -> str:
        """``uid`` past any ``ReconcileDynamicAxis`` (an identity when, as in a loop
        body, both operands have the same dynamic axes)."""
        for _ in range(64):
            f = self.src(uid)
            if f is None or f.op != "ReconcileDynamicAxis" or not f.inputs:
                return uid
            uid = f.inputs[0]
        return uid

    def terms(self, uid: str, stop: set[str]) -> list[str]:
        """The addends of a tree of ``Plus`` ending at ``uid`` (not entering ``stop``).

        Iterative and bounded: a cell has a handful of addends, and a hostile graph may
        hold a cycle of Plus."""
        out: list[str] = []
        work, seen = [uid], set()
        while work:
            u = self.through(work.pop())
            f = self.src(u)
            if f is None or f.op != "Plus" or u in stop or len(f.inputs) != 2:
                out.append(u)
            elif u in seen or len(seen) > 64:
                raise _NoMatch("a cycle or an unbounded sum of Plus")
            else:
                seen.add(u)
                work.extend(reversed(f.inputs))
        return out

    def product(self, uid: str) -> tuple[np.ndarray, str] | None:
        """``times(x, W)`` (saved as ``Times(W, x)``) ending at ``uid``: (W, x uid)."""
        f = self.src(self.through(uid))
        if f is None or f.op != "Times" or len(f.inputs) != 2:
            return None
        w = self.weight(f.inputs[0])
        if w is None or w.ndim != 2 or int(f.attrs.get("outputRank", 1)) != 1:
            return None
        return w, f.inputs[1]


def _loops(g: _Graph) -> list[set[str]]:
    """Function uid sets, one per recurrence: functions on a cycle through a delay."""
    fns = {f.uid: f for f in g.model.functions}
    comps: list[set[str]] = []
    for d in g.model.functions:
        if d.op not in DELAY_OPS or not d.inputs:
            continue
        back: set[str] = set()
        stack = [d.inputs[0]]
        while stack:
            f = g.src(stack.pop())
            if f is None or f.uid in back:
                continue
            back.add(f.uid)
            stack.extend(f.inputs)
        if d.uid not in back:
            continue  # a delay outside any loop
        fwd: set[str] = set()
        stack = list(d.outputs)
        while stack:
            for c in g.consumers.get(stack.pop(), ()):
                if c.uid not in fwd:
                    fwd.add(c.uid)
                    stack.extend(c.outputs)
        comp = (back & fwd) | {d.uid}
        merged = [c for c in comps if c & comp]
        for c in merged:
            comps.remove(c)
            comp |= c
        comps.append(comp)
    return [{u for u in c if u in fns} for c in comps]


def _delay(g: _Graph, d: Function) -> str:
    """The direction of a delay of offset 1 whose initial state is zero or a value
    computed outside the loop (``RecurrenceFrom``; see :func:`_initial`)."""
    if int(d.attrs.get("offset", 1)) != 1:
        raise _NoMatch(f"a delay of {d.attrs.get('offset')} steps")
    _initial(g, d)
    return "forward" if d.op == "PastValue" else "reverse"


def _initial(g: _Graph, d: Function) -> str:
    """The uid of a delay's initial state, "" for zeros; a non-zero constant (one state
    for every sequence of the batch) is refused."""
    if len(d.inputs) < 2:
        return ""
    init = g.weight(d.inputs[1])
    if init is None:
        var = g.model.variables.get(d.inputs[1])
        if var is None or var.kind in ("parameter", "constant"):
            raise _NoMatch("an initial state without a value")
        return d.inputs[1]
    if np.any(init != 0):
        raise _NoMatch("a non-zero constant initial state (initial_state=...)")
    return ""


def _gate_slices(g: _Graph, uid: str, width: int, gates: int) -> dict[int, str]:
    """Gate index -> output uid of each ``Slice`` cutting the stacked projection ``uid``."""
    out: dict[int, str] = {}
    for f in g.consumers.get(uid, ()):
        if f.op != "Slice":
            raise _NoMatch(f"the stacked projection feeds {f.op}, not only Slices")
        b, e = int(f.attrs.get("beginIndex", 0)), int(f.attrs.get("endIndex", 0))
        if int(f.attrs.get("sliceStrides", 1)) != 1 or e - b != width or b % width:
            raise _NoMatch("gate slices that do not cut equal blocks")
        out[b // width] = f.outputs[0]
    if sorted(out) != list(range(gates)):
        raise _NoMatch(f"{len(out)} gate slices where the cell has {gates}")
    return out


def _affine(g: _Graph, uid: str, stop: set[str]) -> tuple[list[tuple[np.ndarray, str]],
                                                         np.ndarray | None]:
    """``uid`` as a sum of ``times(v, W)`` terms and at most one bias weight."""
    prods, bias = [], None
    for t in g.terms(uid, stop):
        b = g.weight(t)
        p = g.product(t)
        if b is not None and bias is None and b.ndim == 1:
            bias = b
        elif p is not None:
            prods.append(p)
        else:
            raise _NoMatch("a pre-activation that is not x @ W + h @ H + b")
    return prods, bias


def _split_xh(prods: list[tuple[np.ndarray, str]], h_out: str) -> tuple[np.ndarray, str,
                                                                        np.ndarray]:
    """(W, x uid, H) from the two products of an affine pre-activation."""
    rec = [p for p in prods if p[1] == h_out]
    inp = [p for p in prods if p[1] != h_out]
    if len(rec) != 1 or len(inp) != 1:
        raise _NoMatch("the recurrent state is not multiplied by one matrix H "
                       "(self-stabilisation or several inputs)")
    return inp[0][0], inp[0][1], rec[0][0]


def _act(g: _Graph, uid: str, ops: frozenset[str], why: str) -> Function:
    """The single consumer of ``uid``, required to be one of ``ops``."""
    cons = g.consumers.get(uid, [])
    if len(cons) != 1 or cons[0].op not in ops:
        raise _NoMatch(why)
    return cons[0]


def _peep(g: _Graph, slice_uid: str, hidden: int) -> tuple[str, np.ndarray | None, str]:
    """The gate's sigmoid input: the slice itself, or slice + C * state (a peephole)."""
    cons = g.consumers.get(slice_uid, [])
    if len(cons) != 1:
        raise _NoMatch("a gate slice with several consumers")
    f = cons[0]
    if f.op in SIGMOIDS:
        return f.outputs[0], None, ""
    if f.op != "Plus":
        raise _NoMatch(f"a gate pre-activation through {f.op}")
    other = next(i for i in f.inputs if i != slice_uid)
    m = g.only(other, "ElementTimes", "a gate pre-activation that is not a peephole")
    w = [i for i in m.inputs if g.weight(i) is not None]
    state = [i for i in m.inputs if g.weight(i) is None]
    if len(w) != 1 or len(state) != 1 or g.weight(w[0]).shape != (hidden,):  # type: ignore[union-attr]
        raise _NoMatch("a peephole that is not a per-unit weight")
    sig = _act(g, f.outputs[0], SIGMOIDS, "a gate without a sigmoid")
    return sig.outputs[0], g.weight(w[0]), state[0]


def _lstm(g: _Graph, delays: list[Function]) -> tuple[Cell, str, str]:
    """An LSTM loop: (cell, x uid, h uid); the state delays are h (to Times) and c."""
    by_role = {}
    for d in delays:
        cons = {c.op for c in g.consumers.get(d.outputs[0], [])}
        by_role["h" if "Times" in cons else "c"] = d
    if set(by_role) != {"h", "c"}:
        raise _NoMatch("two delays that are not an LSTM's plain h and c (a Stabilizer on "
                       "them, enable_self_stabilization=True, is not supported)")
    dh, dc = by_role["h"], by_role["c"]
    direction = _delay(g, dh)
    if _delay(g, dc) != direction:
        raise _NoMatch("h and c delayed in different directions")
    h_uid, c_uid = dh.inputs[0], dc.inputs[0]
    hf = g.src(h_uid)
    if hf is not None and hf.op == "Times":
        raise _NoMatch("an LSTM with a cell_shape projection (ONNX LSTM has no projection)")
    times_h = [c for c in g.consumers[dh.outputs[0]] if c.op == "Times"]
    if len(times_h) != 1:
        raise _NoMatch("h used by several products")
    proj4 = _act(g, times_h[0].outputs[0], frozenset({"Plus"}), "h @ H not added").outputs[0]
    prods, b = _affine(g, proj4, set())
    W, x_uid, H = _split_xh(prods, dh.outputs[0])
    hidden = H.shape[0]
    if H.shape != (hidden, 4 * hidden) or W.shape[1] != 4 * hidden:
        raise _NoMatch(f"LSTM weights of shapes {W.shape} and {H.shape}")
    gates = _gate_slices(g, proj4, hidden, 4)
    cand = _act(g, gates[1], _ACT_OPS, "an LSTM candidate without an activation")
    sig = {}
    peeps: dict[int, np.ndarray | None] = {}
    for k in (0, 2, 3):
        sig[k], peeps[k], state = _peep(g, gates[k], hidden)
        want = c_uid if k == 3 else dc.outputs[0]
        if peeps[k] is not None and state != want:
            raise _NoMatch("a peephole on the wrong state")
    # c = f * c(t-1) + i * tanh(c~);  h = o * tanh(c)
    cf = g.only(c_uid, "Plus", "c is not f * c_prev + i * c~")
    prods = {frozenset(g.only(t, "ElementTimes", "c terms are not products").inputs)
             for t in cf.inputs}
    if prods != {frozenset({sig[2], dc.outputs[0]}), frozenset({sig[0], cand.outputs[0]})}:
        raise _NoMatch("c is not f * c_prev + i * tanh(c~)")
    ho = g.only(h_uid, "ElementTimes", "h is not o * tanh(c)")
    tc = [g.src(i) for i in ho.inputs if i != sig[3]]
    if sig[3] not in ho.inputs or len(tc) != 1 or tc[0] is None or tc[0].op != cand.op \
            or tc[0].inputs != [c_uid]:
        raise _NoMatch("h is not o * act(c) with the candidate's activation")
    rows = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in LSTM_ORDER])
    bias = np.zeros(4 * hidden, W.dtype) if b is None else b
    zero = np.zeros(hidden, W.dtype)
    p = None
    if any(v is not None for v in peeps.values()):
        p = np.concatenate([peeps[k] if peeps[k] is not None else zero for k in (0, 3, 2)])
        p = p[None].astype(W.dtype)
    cell = Cell("LSTM", direction, hidden, W.T[rows][None], H.T[rows][None],
                np.concatenate([bias[rows], np.zeros(4 * hidden, W.dtype)])[None], p,
                activation=ACTIVATIONS[cand.op], initial=(_initial(g, dh), _initial(g, dc)))
    return cell, x_uid, h_uid


def _gru(g: _Graph, d: Function) -> tuple[Cell, str, str]:
    """A GRU loop: r and z from x @ W + h @ H (sliced), h~ = tanh(x @ W_h + (r*h) @ H1)."""
    direction = _delay(g, d)
    h_uid, dh = d.inputs[0], d.outputs[0]
    times = [c for c in g.consumers[dh] if c.op == "Times"]
    if len(times) != 1:
        raise _NoMatch("h used by several products")
    rec = g.product(times[0].outputs[0])
    if rec is None:
        raise _NoMatch("h @ H without a weight")
    H = rec[0]
    hidden = H.shape[0]
    if H.shape != (hidden, 2 * hidden):
        raise _NoMatch(f"GRU H of shape {H.shape}")
    hz = _gate_slices(g, times[0].outputs[0], hidden, 2)
    # The input projection x @ W + b (3 gates) is what the z slice of h @ H is added to.
    zplus = _act(g, hz[0], frozenset({"Plus"}), "z is not x-part + h-part")
    xz = next(i for i in zplus.inputs if i != hz[0])
    xs = g.only(xz, "Slice", "z's input part is not a slice").inputs[0]
    (prods, b) = _affine(g, xs, set())
    if len(prods) != 1:
        raise _NoMatch("the GRU input projection is not x @ W + b")
    W, x_uid = prods[0]
    if W.shape[1] != 3 * hidden:
        raise _NoMatch(f"GRU W of shape {W.shape}")
    xg = _gate_slices(g, xs, hidden, 3)
    z = _act(g, zplus.outputs[0], SIGMOIDS, "z without a sigmoid").outputs[0]
    rplus = _act(g, hz[1], frozenset({"Plus"}), "r is not x-part + h-part")
    if set(rplus.inputs) != {xg[1], hz[1]}:
        raise _NoMatch("r is not x @ W_r + h @ H_r")
    r = _act(g, rplus.outputs[0], SIGMOIDS, "r without a sigmoid").outputs[0]
    rs = [c for c in g.consumers[r] if c.op == "ElementTimes" and set(c.inputs) == {r, dh}]
    if len(rs) != 1:
        raise _NoMatch("no r * h")
    rec1 = [c for c in g.consumers[rs[0].outputs[0]] if c.op == "Times"]
    p1 = g.product(rec1[0].outputs[0]) if len(rec1) == 1 else None
    if p1 is None or p1[0].shape != (hidden, hidden):
        raise _NoMatch("no (r * h) @ H1")
    cplus = _act(g, rec1[0].outputs[0], frozenset({"Plus"}), "h~ is not x-part + (r*h) @ H1")
    if set(cplus.inputs) != {xg[2], rec1[0].outputs[0]}:
        raise _NoMatch("h~ is not x @ W_h + (r*h) @ H1")
    cand_fn = _act(g, cplus.outputs[0], _ACT_OPS, "h~ without an activation")
    cand = cand_fn.outputs[0]
    # h = (1 - z) * h~ + z * h(t-1)
    hp = g.only(h_uid, "Plus", "h is not (1 - z) * h~ + z * h_prev")
    terms = [frozenset(g.only(t, "ElementTimes", "h terms are not products").inputs)
             for t in hp.inputs]
    if frozenset({z, dh}) not in terms:
        raise _NoMatch("h lacks z * h_prev")
    other = next(t for t in terms if t != frozenset({z, dh}))
    one_minus = [u for u in other if u != cand]
    m = g.src(one_minus[0]) if len(one_minus) == 1 and cand in other else None
    if m is None or m.op != "Minus" or m.inputs[1] != z or g.weight(m.inputs[0]) is None \
            or np.any(g.weight(m.inputs[0]) != 1):
        raise _NoMatch("h lacks (1 - z) * h~")
    bias = np.zeros(3 * hidden, W.dtype) if b is None else b
    R = np.concatenate([H.T, p1[0].T])
    cell = Cell("GRU", direction, hidden, W.T[None], R[None],
                np.concatenate([bias, np.zeros(3 * hidden, W.dtype)])[None],
                activation=ACTIVATIONS[cand_fn.op], initial=(_initial(g, d),))
    return cell, x_uid, h_uid


def _rnn(g: _Graph, d: Function) -> tuple[Cell, str, str]:
    """An RNNStep (or hand-written Elman) loop: h = act(x @ W + h @ H + b)."""
    direction = _delay(g, d)
    h_uid = d.inputs[0]
    act = g.src(h_uid)
    if act is None or act.op not in ACTIVATIONS or len(act.inputs) != 1:
        raise _NoMatch("h is not an activation of an affine map")
    prods, b = _affine(g, act.inputs[0], set())
    W, x_uid, H = _split_xh(prods, d.outputs[0])
    hidden = H.shape[0]
    if H.shape != (hidden, hidden) or W.shape[1] != hidden:
        raise _NoMatch(f"RNN weights of shapes {W.shape} and {H.shape}")
    bias = np.zeros(hidden, W.dtype) if b is None else b
    cell = Cell("RNN", direction, hidden, W.T[None], H.T[None],
                np.concatenate([bias, np.zeros(hidden, W.dtype)])[None],
                activation=ACTIVATIONS[act.op], initial=(_initial(g, d),))
    return cell, x_uid, h_uid


def _match(g: _Graph, loop: set[str]) -> tuple[Cell, str, str]:
    fns = [f for f in g.model.functions if f.uid in loop]
    delays = [f for f in fns if f.op in DELAY_OPS]
    if len(delays) == 2:
        return _lstm(g, delays)
    if len(delays) == 1:
        ops = {f.op for f in fns}
        return (_gru if "Minus" in ops else _rnn)(g, delays[0])
    raise _NoMatch(f"{len(delays)} delays in one loop")


def _sequence_step(g: _Graph, gp: Function) -> tuple[int, str] | None:
    """``GatherPacked(x, PackedIndex(x, Where(delay(ReconcileDynamicAxis(0, x), 1))))``:
    CNTK's ``sequence.last`` (FutureValue) or ``first`` (PastValue): (index, x uid)."""
    if len(gp.inputs) != 2:
        return None
    x = gp.inputs[0]
    pi = g.src(gp.inputs[1])
    if pi is None or pi.op != "PackedIndex" or pi.inputs[0] != x:
        return None
    wh = g.src(pi.inputs[1])
    d = g.src(wh.inputs[0]) if wh is not None and wh.op == "Where" else None
    if d is None or d.op not in DELAY_OPS or int(d.attrs.get("offset", 1)) != 1 \
            or len(d.inputs) != 2:
        return None
    rc = g.src(d.inputs[0])
    if rc is None or rc.op != "ReconcileDynamicAxis" or rc.inputs[1] != x:
        return None
    inner, init = g.weight(rc.inputs[0]), g.weight(d.inputs[1])
    if inner is None or init is None or np.any(inner != 0) or np.any(init != 1):
        return None
    return (-1 if d.op == "FutureValue" else 0), x


def _replace(model: Model, remove: set[str], new: Function) -> None:
    """Put ``new`` where the last removed function was (its inputs precede it)."""
    last = max(i for i, f in enumerate(model.functions) if f.uid in remove)
    out: list[Function] = []
    for i, f in enumerate(model.functions):
        if f.uid not in remove:
            out.append(f)
        if i == last:
            out.append(new)
    model.functions = out


def recognise(model: Model) -> Model:
    """Rewrite ``model`` in place: cell recurrences to :data:`CELL_OP`, sequence ends to
    :data:`STEP_OP`, every other loop or lone delay to :data:`~.loops.LOOP_OP` (an IR
    Scan); raise one error listing every loop a Scan cannot express."""
    refused = UnsupportedOps()
    for f in model.functions:
        if f.op == "OptimizedRNNStack":
            refused.record("OptimizedRNNStack (cuDNN-only; rebuild the model with "
                           "cntk.layers.Recurrence(LSTM(...)))", f.display_name)
    if not any(f.op in DELAY_OPS for f in model.functions):
        refused.raise_if_any(model.path, "unsupported recurrent functions")
        return model
    g = _Graph(model)
    for gp in [f for f in model.functions if f.op == "GatherPacked"]:
        try:
            hit = _sequence_step(g, gp)
        except _MALFORMED:
            hit = None  # its delay is then reported below
        if hit is None:
            continue
        index, x = hit
        pi = g.src(gp.inputs[1])
        wh = g.src(pi.inputs[1])  # type: ignore[union-attr]
        d = g.src(wh.inputs[0])  # type: ignore[union-attr]
        rc = g.src(d.inputs[0])  # type: ignore[union-attr]
        parts = {gp.uid, pi.uid, wh.uid, d.uid, rc.uid}  # type: ignore[union-attr]
        _replace(model, parts, Function(uid=gp.uid, name=gp.name, op=STEP_OP, inputs=[x],
                                        outputs=list(gp.outputs), attrs={"index": index},
                                        blocks=gp.blocks))
    g = _Graph(model)
    scans: list[set[str]] = []
    for loop in _loops(g):
        fns = [f for f in model.functions if f.uid in loop]
        try:
            cell, x_uid, h_uid = _match(g, loop)
        except (_NoMatch, *_MALFORMED):  # no cell (or an odd one): the general Scan
            scans.append(loop)
            continue
        produced = {o for f in fns for o in f.outputs}
        # A Combine outside the loop only groups outputs (the cell block's root, whose
        # h and c outputs are aliased through): not a use.
        used = {o for f in model.functions if f.uid not in loop and f.op != "Combine"
                for o in f.inputs} | set(model.outputs)
        if x_uid in produced or any(o in produced and o != h_uid for o in used):
            scans.append(loop)  # the input depends on the state, or c is read: a Scan
            continue
        # Named after the Recurrence the user named (its output alias), else the loop.
        alias = [f.name for f in g.consumers.get(h_uid, []) if f.op == "NoOp" and f.name]
        label = alias[0] if len(alias) == 1 else _loop_name(fns).split(" ")[0]
        _replace(model, loop, Function(
            uid=f"{fns[-1].uid}_{cell.kind}", name="", op=CELL_OP,
            inputs=[x_uid, *(i for i in cell.initial if i)],
            outputs=[h_uid], attrs={"cell": cell, "label": label},
            blocks=_common_blocks(fns)))
    _merge_bidirectional(model)
    looped = set().union(*scans) if scans else set()
    scans += [{f.uid} for f in model.functions if f.op in DELAY_OPS and f.uid not in looped]
    reasons = _scans(model, scans, refused)
    if not any(f.op in DELAY_OPS for f in model.functions):
        model.functions = _toposort(model.functions)
    hint = ("recognised are cntk.layers.Recurrence/Fold over LSTM (peepholes allowed), GRU "
            "and RNNStep, sequence.first/last, and any other loop of offset-1 delays "
            "running one way (an IR Scan)")
    if reasons:
        hint = "; ".join(reasons) + "; " + hint
    refused.raise_if_any(model.path, "unsupported recurrent functions", hint)
    return model


def _scans(model: Model, scans: list[set[str]], refused: UnsupportedOps) -> list[str]:
    """Replace each loop (function uid set) by a :data:`~.loops.LOOP_OP` function; record
    those a Scan cannot express in ``refused`` and return why, one reason each."""
    reasons = []
    for uids in scans:
        fns = [f for f in model.functions if f.uid in uids]
        where = _loop_name(fns)
        used = {o for f in model.functions if f.uid not in uids and f.op != "Combine"
                for o in f.inputs} | set(model.outputs)
        produced = {o for f in fns for o in f.outputs}
        alias = [f.name for f in model.functions if f.op == "NoOp" and f.name
                 and f.inputs and f.inputs[0] in produced]
        named = [f.name for f in fns if f.name and f.op not in DELAY_OPS]
        label = (alias[0] if len(alias) == 1 else named[-1] if named
                 else where.split(" ")[0])
        try:
            loop = describe(model, uids, used, label)
        except (LoopError, *_MALFORMED) as exc:
            refused.record("PastValue/FutureValue loop", where)
            reasons.append(f"{where}: {exc}")
            continue
        _replace(model, uids, loop_function(loop, f"{fns[-1].uid}_Loop", _common_blocks(fns)))
    return reasons


def _toposort(functions: list[Function]) -> list[Function]:
    """``functions`` (a DAG once every loop is one function) ordered so each comes after
    the producers of its inputs, otherwise keeping their order: a loop function stands
    where its last member stood, which may be after a reader of one of its outputs."""
    producer = {o: f for f in functions for o in f.outputs}
    done: set[str] = set()
    open_: set[str] = set()  # on the current path: a (hostile) cycle is not followed
    order: list[Function] = []
    for root in functions:
        stack = [(root, False)]
        while stack:
            f, expanded = stack.pop()
            if f.uid in done or (not expanded and f.uid in open_):
                continue
            if expanded:
                done.add(f.uid)
                open_.discard(f.uid)
                order.append(f)
                continue
            open_.add(f.uid)
            stack.append((f, True))
            for i in reversed(f.inputs):
                p = producer.get(i)
                if p is not None and p.uid not in done and p is not f:
                    stack.append((p, False))
    return order


def _merge_bidirectional(model: Model) -> None:
    """``splice(Recurrence(cell)(x), Recurrence(cell, go_backwards=True)(x))`` -> one
    bidirectional cell (one ONNX node, one ``nn.LSTM(bidirectional=True)``).

    Only when the two cells are alike (kind, size, activation, peepholes), read the same
    ``x`` from zero states, their outputs feed the Splice alone (through NoOp aliases at
    most) and the forward one comes first: ONNX's bidirectional Y holds forward then
    backward, which reshaped is that splice."""
    g = _Graph(model)
    outputs = set(model.outputs)
    for sp in [f for f in model.functions if f.op == "Splice" and len(f.inputs) == 2]:
        axis = sp.attrs.get("axis")
        if not isinstance(axis, Axis) or not axis.is_static or axis.static_index not in (0, -1):
            continue
        cells, aliases = [], []
        for uid in sp.inputs:
            f = g.src(uid)
            while (f is not None and f.op == "NoOp" and len(f.inputs) == 1
                   and len(g.uses(f.outputs[0])) == 1 and f.outputs[0] not in outputs):
                aliases.append(f)
                f = g.src(f.inputs[0])
            if f is None or f.op != CELL_OP or f.outputs[0] in outputs or \
                    len(g.uses(f.outputs[0])) != 1:
                break
            cells.append(f)
        if len(cells) != 2:
            continue
        fw, bw = (c.attrs["cell"] for c in cells)
        if not (fw.kind == bw.kind and fw.hidden == bw.hidden and fw.activation == bw.activation
                and (fw.direction, bw.direction) == ("forward", "reverse")
                and (fw.P is None) == (bw.P is None) and not any(fw.initial + bw.initial)
                and cells[0].inputs == cells[1].inputs and fw.W.shape == bw.W.shape):
            continue
        both = Cell(fw.kind, "bidirectional", fw.hidden, np.concatenate([fw.W, bw.W]),
                    np.concatenate([fw.R, bw.R]), np.concatenate([fw.B, bw.B]),
                    None if fw.P is None else np.concatenate([fw.P, bw.P]),  # type: ignore[list-item]
                    activation=fw.activation)
        labels = [c.attrs.get("label", "") for c in cells]
        _replace(model, {sp.uid, *(c.uid for c in cells), *(a.uid for a in aliases)},
                 Function(uid=sp.uid, name=sp.name, op=CELL_OP, inputs=list(cells[0].inputs),
                          outputs=list(sp.outputs), blocks=sp.blocks,
                          attrs={"cell": both, "label": sp.name or "+".join(labels),
                                 "merged": labels}))
        g = _Graph(model)


def _loop_name(fns: list[Function]) -> str:
    """A name the user knows for a loop: its cell block's name or op name, else a uid."""
    for f in fns:
        for b in reversed(f.blocks):
            if b.op_name in ("LSTM", "GRU", "RNNStep", "Recurrence", "Fold") or b.name:
                return b.name or f"{b.op_name} {b.uid}"
    return next((f.name for f in fns if f.name), fns[0].uid)


def _common_blocks(fns: list[Function]) -> tuple:
    """The blocks every function of the loop is inside (the cell block itself excluded)."""
    stacks = [f.blocks for f in fns]
    common = []
    for level in zip(*stacks, strict=False):
        if all(b.uid == level[0].uid for b in level) and level[0].op_name not in (
                "LSTM", "GRU", "RNNStep"):
            common.append(level[0])
        else:
            break
    return tuple(common)

