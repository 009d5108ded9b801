"""Shared helpers: build ONNX models with onnx.helper, convert them, check every target
against onnxruntime on the source file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mmconv.emitters import get_emitter
from mmconv.frontends.onnx import convert
from mmconv.ir import Graph
from mmconv.verify.conversion import verify_conversion

FLOAT = TensorProto.FLOAT


def model(nodes: Sequence[onnx.NodeProto], inputs: Sequence[tuple[str, Sequence]],
          outputs: Sequence[str | tuple[str, Sequence]],
          initializers: dict[str, np.ndarray] | None = None, opset: int = 13,
          dtype: int = FLOAT) -> onnx.ModelProto:
    """A model of ``nodes``; inputs as (name, shape) with None/str for dynamic dims,
    outputs as names (shape inferred) or (name, shape)."""
    graph = helper.make_graph(
        list(nodes), "test",
        [helper.make_tensor_value_info(n, dtype, list(s)) for n, s in inputs],
        [helper.make_tensor_value_info(n, dtype, None) if isinstance(n, str)
         else helper.make_tensor_value_info(n[0], dtype, list(n[1])) for n in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = min(proto.ir_version, 8 if opset <= 18 else proto.ir_version)
    # outputs get the shapes onnx infers (the checker wants a shape on every output)
    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    for out in proto.graph.output:
        if out.name in known and known[out.name].type.tensor_type.HasField("shape"):
            out.type.CopyFrom(known[out.name].type)
    return proto


def save(proto: onnx.ModelProto, path: Path) -> Path:
    onnx.save(proto, str(path))
    return path


def convert_and_check(path: Path, targets: Sequence[str], tmp: Path,
                      **kwargs: object) -> Graph:
    """Convert ``path`` and check each target against onnxruntime on the source file
    (tolerance 1e-4 * max(1, max|ref|), batch 2)."""
    graph = convert(str(path), None, **kwargs)  # type: ignore[arg-type]
    for target in targets:
        out = tmp / f"{path.stem}.{target}"
        get_emitter(target).emit_model(graph, out)
        for result in verify_conversion(graph, ("onnx", path), (target, out)).outputs:
            assert result.passed, f"{path.name} -> {target}: {result}"
    return graph


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
