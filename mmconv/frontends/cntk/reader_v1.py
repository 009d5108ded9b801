"""Reader for CNTK's legacy v1 model format (BrainScript, ``save_as_legacy_model``).

The file is what ``ComputationNetwork::Save`` writes (microsoft/CNTK,
``Source/ComputationNetworkLib/ComputationNetwork.cpp``), little-endian:

``BCN`` ``BVersion`` u64 version ``EVersion`` u64 numNodes ``BNodeList``
then per node: [precision string (version >= 7)] type name, node name, the
node type's own fields (:mod:`mmconv.frontends.cntk.v1_fields`), ``ENodeList``;
``BRelation`` per node: name, u64 count, input names; ``ERelation``;
``BRootNodes`` with the optional feature/label/criterion/eval/output groups,
``ERootNodes`` ``ECN``.  Strings and markers are UTF-16 code units, zero
terminated.

We produce the same :class:`~mmconv.frontends.cntk.model.Model` the v2 reader
produces, translating node types and attributes the way CNTK's own loader
does (``Source/CNTKv2LibraryDll/BackCompat.cpp``): the v1 -> v2 op table and
the per-op attribute mapping live in :mod:`mmconv.frontends.cntk.v1_translate`;
the byte-level reader in :mod:`mmconv.frontends.cntk.v1_binary`.

Everything read from the file is treated as hostile: every length, count and
dimension is checked against the bytes that are left before anything is
allocated, and every problem surfaces as :class:`ModelFormatError` naming the
file and byte offset.
"""

from __future__ import annotations

import mmap
import os

from mmconv.errors import ModelFormatError
from mmconv.frontends.cntk.model import Function, Model, Variable
from mmconv.frontends.cntk.v1_binary import (
    MAX_VERSION,
    MIN_VERSION,
    V1_MAGIC,
    ByteReader,
    V1Network,
    V1Node,
)
from mmconv.frontends.cntk.v1_fields import read_node_fields
from mmconv.frontends.cntk.v1_translate import translate
from mmconv.fsutil import map_file


def parse_v1(data: bytes | bytearray | mmap.mmap, path: str = "<memory>") -> V1Network:
    """Parse the bytes of a v1 file into a :class:`V1Network` (no translation)."""
    r = ByteReader(data, path)
    if data[: len(V1_MAGIC)] != V1_MAGIC:
        raise r.error("missing the 'BCN' header", 0)
    r.marker("BCN")
    version = 1
    if r.try_marker("BVersion"):
        at = r.pos
        version = r.u64("model version")
        r.marker("EVersion")
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise ModelFormatError(
                f"{path}: model version {version} at offset {at} is not supported "
                f"(this reader knows versions {MIN_VERSION}..{MAX_VERSION})"
            )
    at = r.pos
    num_nodes = r.u64("node count")
    # every node takes at least a type and a name string (>= 4 bytes) plus a relation entry
    if num_nodes * 8 > r.remaining:
        raise r.error(f"node count {num_nodes} is larger than the file could hold", at)
    r.marker("BNodeList")
    nodes: dict[str, V1Node] = {}
    for _ in range(num_nodes):
        start = r.pos
        precision = r.string("node precision") if version >= 7 else ""
        if precision not in ("float", "double", "half", ""):
            raise r.error(f"unknown node precision {precision[:20]!r}", start)
        op = r.string("node type")
        name = r.string("node name")
        if name in nodes:
            raise r.error(f"duplicate node name {name[:80]!r}", start)
        node = V1Node(op=op, name=name, precision=precision, offset=start)
        node.fields = read_node_fields(r, node, version)
        nodes[name] = node
    r.marker("ENodeList")

    r.marker("BRelation")
    seen: set[str] = set()
    for _ in range(num_nodes):
        start = r.pos
        name = r.string("relation node name")
        node = nodes.get(name)
        if node is None:
            raise r.error(f"relation names unknown node {name[:80]!r}", start)
        if name in seen:
            raise r.error(f"relation lists node {name[:80]!r} twice", start)
        seen.add(name)
        n = r.count(f"input count of {name[:80]!r}", 2)
        inputs = [r.string("input name") for _ in range(n)]
        for inp in inputs:
            if inp not in nodes:
                raise r.error(f"node {name[:80]!r} has unknown input {inp[:80]!r}", start)
        node.inputs = inputs
    r.marker("ERelation")

    groups = _read_root_groups(r)
    r.marker("ECN")
    for group, names in groups.items():
        for n in names:
            if n not in nodes:
                raise r.error(f"{group} node group names unknown node {n[:80]!r}")
    return V1Network(path=path, version=version, nodes=nodes, groups=groups)


def _read_root_groups(r: ByteReader) -> dict[str, list[str]]:
    """The ``BRootNodes`` section, accepting the legacy spellings CNTK's ``Read`` accepts."""
    groups: dict[str, list[str]] = {}
    r.marker("BRootNodes")
    if r.try_marker("BFeatureNodes"):
        groups["feature"] = r.strings("feature node count")
        r.marker("EFeatureNodes")
    if r.try_marker("BLabelNodes"):
        groups["label"] = r.strings("label node count")
    # CNTK reads ELabelNodes unconditionally (its own "BUGBUG" comment).
    r.marker("ELabelNodes")
    if r.try_marker("BCriterionNodes") or r.try_marker("BCriteriaNodes"):
        groups["criterion"] = r.strings("criterion node count")
        if not r.try_marker("ECriteriaNodes"):
            r.marker("ECriterionNodes")
    if r.try_marker("BNodesReqMultiSeqHandling"):
        r.strings("multi-seq node count")
        r.marker("ENodesReqMultiSeqHandling")
    if r.try_marker("BEvalNodes"):
        groups["evaluation"] = r.strings("evaluation node count")
        r.marker("EEvalNodes")
    if r.try_marker("BOutputNodes"):
        groups["output"] = r.strings("output node count")
        r.marker("EOutputNodes")
    if r.try_marker("BPairNodes"):
        pairs = r.strings("pair node count")
        if pairs:
            raise r.error("PairNodes are not supported (CNTK dropped them too)")
        r.marker("EPairNodes")
    r.marker("ERootNodes")
    return groups


def read_v1(path: str | os.PathLike[str]) -> Model:
    """Read a legacy v1 CNTK model file into the frontend's :class:`Model`.

    The result uses the v2 vocabulary (PrimitiveOpType names, v2 attribute
    names, NDShape attributes in storage order, Python-order variable shapes)
    so the same converters serve both formats.
    """
    spath = os.fspath(path)
    try:
        # Mapped copy-on-write: nothing is copied up front, and parameter arrays
        # (views into the mapping) are writable without touching the file.
        data = map_file(spath)
    except OSError as e:
        raise ModelFormatError(f"{spath}: cannot read the model file ({e.strerror})") from None
    net = parse_v1(data, spath)
    return translate(net)


__all__ = [
    "MAX_VERSION",
    "MIN_VERSION",
    "ByteReader",
    "Function",
    "Model",
    "V1Network",
    "V1Node",
    "Variable",
    "parse_v1",
    "read_v1",
]
