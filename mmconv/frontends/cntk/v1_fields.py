"""Per-node-type fields of the CNTK v1 format: what each node type's ``Save`` writes.

``_FIELD_READERS`` maps a node type to the decoder of the fields it writes after its
type and name, by model version (the node headers in microsoft/CNTK
``Source/ComputationNetworkLib``; checked against files written by CNTK 2.7,
version 31).  Types that save nothing map to ``_no_fields``.  Translation of the
decoded nodes to the v2 vocabulary is :mod:`.v1_translate`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from mmconv.errors import UnsupportedError
from mmconv.frontends.cntk.v1_binary import ByteReader, V1Node

FieldReader = Callable[["ByteReader", "V1Node", int], dict[str, Any]]


# ---------------------------------------------------------------------------
# field readers
# ---------------------------------------------------------------------------


def _no_fields(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    return {}


def _learnable_parameter(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    if version >= 3:
        lr = r.f32("learning-rate multiplier")
        shape = r.tensor_shape("parameter shape")
    else:
        lr = 1.0 if r.boolean("needs-update flag") else 0.0
        rows = r.u64("parameter rows")
        cols = r.u64("parameter cols")
        if rows != 0:
            shape = (rows, cols)
        else:
            shape = r.tensor_shape("parameter shape", legacy=True)
            if cols > 1:
                shape = (*shape, cols)
    value = r.matrix(f"value of {node.name[:80]!r}")
    return {"learningRateMultiplier": lr, "sampleLayout": shape, "value": value}


def _input_value(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    rows = r.u64("input rows")
    r.u64("input cols")
    shape = r.tensor_shape("input shape", legacy=True)
    if rows != 0 and rows != math.prod(shape):
        shape = (rows,)  # CNTK: "inconsistent serialized sample layout ... resetting to vector"
    axis = ""
    if version >= 8:
        n = r.u32("dynamic axis count")
        if n == 1:
            axis = r.string("dynamic axis name")
        elif n != 0:
            raise r.error(f"input {node.name[:80]!r} has {n} dynamic axis names (0 or 1 expected)")
    lr = r.f32("learning-rate multiplier") if version >= 10 else 0.0
    return {"sampleLayout": shape, "dynamicAxis": axis, "learningRateMultiplier": lr}


def _times(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    out_rank = r.u64("outputRank") if version >= 3 else 1
    infer = r.i32("inferInputRankToMap") if version >= 12 else -1
    return {"outputRank": out_rank, "inferInputRankToMap": infer}


def _convolution_base(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    f: dict[str, Any] = {
        "transpose": False,
        "outputShape": (0,),
        "ceilOutDim": False,
        "includePad": False,
    }
    if version >= 5:
        f["kernelShape"] = r.tensor_shape("kernel shape")
        f["mapCount"] = r.tensor_shape("map count")
        f["strides"] = r.tensor_shape("strides")
        f["sharing"] = r.bools("sharing count")
        f["autoPadding"] = r.bools("auto-padding count")
        f["lowerPad"] = r.tensor_shape("lower pad")
        f["upperPad"] = r.tensor_shape("upper pad")
        f["poolKind"] = r.i32("pool kind")
        f["imageLayout"] = r.i32("image layout")
        f["maxTempMemSizeInSamples"] = r.u64("max temp memory")
    if version >= 9:
        f["transpose"] = r.boolean("transpose flag")
    if version >= 20:
        f["outputShape"] = r.tensor_shape("output shape")
    if version >= 21:
        f["ceilOutDim"] = r.boolean("ceilOutDim")
    if version >= 23:
        f["includePad"] = r.boolean("includePad")
    return f


def _convolution(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    f = _convolution_base(r, node, version)
    if version < 5:
        kw, kh, sw, sh = (r.u64("kernel/stride size") for _ in range(4))
        map_count = r.u32("map count")
        f["imageLayout"] = r.u32("image layout")
        pad = r.boolean("zero padding")
        f["maxTempMemSizeInSamples"] = r.u64("max temp memory")
        f.update(
            poolKind=0,
            convolution2D=True,
            kernelShape=(kw, kh, 1),
            mapCount=(map_count,),
            strides=(sw, sh, 1),
            sharing=[True],
            autoPadding=[pad],
            lowerPad=(0,),
            upperPad=(0,),
            dilation=(1,),
            groups=1,
        )
        return f
    f["convolution2D"] = r.boolean("convolution2D flag")
    f["dilation"] = r.tensor_shape("dilation") if version >= 18 else (1,)
    # No "groups" field exists even in version 31: CNTK 2.7 saves a grouped convolution
    # as an ungrouped one (its own load_model then computes a different output shape).
    f["groups"] = 1
    return f


def _legacy_pooling(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    # PoolingNodeBase: u32 windowWidth, u32 imageLayoutKind (the two halves of an old
    # size_t windowWidth), then size_t windowHeight, horizontal and vertical subsample.
    width = r.u32("window width")
    layout = r.u32("image layout")
    height = r.u64("window height")
    hsub = r.u64("horizontal subsample")
    vsub = r.u64("vertical subsample")
    return {
        "windowWidth": width,
        "imageLayout": layout,
        "windowHeight": height,
        "horizontalSubsample": hsub,
        "verticalSubsample": vsub,
    }


def _roi_pooling(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    shape = r.tensor_shape("ROI output shape")
    if version >= 26:
        kind = r.i32("pool kind")
        scale = r.f64("spatial scale")
    else:
        kind, scale = 1, 1.0 / 16.0  # CNTK's own back-compat defaults (Fast R-CNN)
    return {"roiOutputShape": shape, "poolKind": kind, "spatialScale": scale}


def _reshape(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    begin = r.i32("begin axis")
    end = r.i32("end axis")
    shape = r.tensor_shape("replacement shape")
    return {"beginDim": begin, "endDim": end, "replacementSampleLayout": shape}


def _legacy_reshape(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    rows = r.u64("target rows")
    shape = r.tensor_shape("target image layout", legacy=True)
    return {"numTargetRows": rows, "targetImageLayout": shape}


def _reduce_elements(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    n = r.count("reduction axis count", 4, wide=False) if version >= 27 else 1
    axes = [r.i32("reduction axis") for _ in range(n)]
    op = r.string("reduction op")
    keep = r.boolean("keepDimensions") if version >= 24 else True
    return {"axes": axes, "operation": op, "keepDimensions": keep}


def _batch_normalization(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    f: dict[str, Any] = {"runCountUntied": None, "epsilon": 1e-5, "useCntkEngine": True}
    mb_count = 0
    if version >= 6:
        f["spatial"] = r.boolean("spatial flag")
        f["normalizationTimeConstant"] = r.f64("normalization time constant")
        f["blendTimeConstant"] = r.f64("blend time constant")
        f["imageLayout"] = r.i32("image layout")
        if version >= 13:
            if version != 19:
                f["runCountUntied"] = r.u64("run count")
            else:
                f["runCountUntied"] = 0 if r.boolean("run count is zero") else None
        else:
            mb_count = r.u64("minibatch count")
        f["epsilon"] = r.f64("epsilon")
        f["useCntkEngine"] = r.boolean("CNTK engine flag")
    else:
        start = r.pos
        written = r.i32("BN version written")
        readable = r.i32("BN version readable")
        if readable > written or written < 0x00010001 or readable > 0x00010004:
            raise r.error("unsupported BatchNormalization node version", start)
        r.boolean("eval mode")
        f["spatial"] = r.boolean("spatial flag")
        exp_avg = r.f64("normalization time constant")
        f["normalizationTimeConstant"] = exp_avg if written >= 0x00010004 else 0.0
        f["blendTimeConstant"] = 0.0
        if written >= 0x00010002:
            f["imageLayout"] = r.i32("image layout")
            mb_count = r.u64("minibatch count")
        if written >= 0x00010003:
            f["epsilon"] = r.f64("epsilon")
            f["useCntkEngine"] = r.boolean("CNTK engine flag")
    if version < 13:
        # Before version 13 the running "variance" input held 1/sqrt(var + eps).
        f["runCountUntied"] = 16 * mb_count
        f["runningInvStdDev"] = True
    return f


def _row_stack(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    return {"spliceDim": r.i32("splice axis") if version >= 3 else 1}


def _slice(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    n = r.count("slice axis count", 8, wide=False) if version >= 22 else 1
    begins, ends, axes, strides = [], [], [], []
    for _ in range(n):
        # The legacy node keeps RowSlice's (start, count): the end is start + count
        # (checked against cntk.load_model, which reports endIndex = begin + count).
        begins.append(_signed64(r.u64("slice begin")))
        ends.append(begins[-1] + _signed64(r.u64("slice count")))
        axes.append(r.i32("slice axis") if version >= 3 else 1)
        strides.append(r.i32("slice stride") if version >= 27 else 1)
    return {"beginIndex": begins, "endIndex": ends, "axis": axes, "strides": strides}


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _transpose_dimensions(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    if version < 3:
        return {"axis1": 1, "axis2": 2, "perm": None}
    a1 = r.i32("axis 1")
    a2 = r.i32("axis 2")
    perm = None
    if version >= 25 and a1 == 0 and a2 == 0:
        n = r.count("permutation size", 8)
        perm = [r.u64("permutation entry") for _ in range(n)]
    return {"axis1": a1, "axis2": a2, "perm": perm}


def _dropout(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    f: dict[str, Any] = {"rngSeed": 0, "rngOffset": 0}
    if version >= 16:
        f["rngSeed"] = r.u32("rng seed") if version == 16 else r.u64("rng seed")
        f["rngOffset"] = r.u64("rng offset")
    return f


def _delay(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    step = r.i32("time step")
    if version > 3:
        shape = r.tensor_shape("sample layout")
    else:
        shape = (r.u64("rows"),)
        r.u64("cols")
    init = 0.0
    if version >= 2:
        init = r.f64("initial value") if node.precision == "double" else r.f32("initial value")
    return {"timeStep": step, "sampleLayout": shape, "initialStateValue": init}


def _precompute(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    computed = r.boolean("has-computed flag")
    value = r.matrix(f"value of {node.name[:80]!r}")
    return {"hasComputed": computed, "value": value}


def _where(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    return {"dynamicAxis": r.string("dynamic axis name") if version >= 11 else ""}


#: Node types whose ``Save`` writes nothing beyond type and name.
_NO_FIELD_TYPES = (
    "Plus", "Minus", "ElementTimes", "ElementDivide", "RectifiedLinear", "Sigmoid",
    "StableSigmoid", "Tanh", "Softmax", "LogSoftmax", "Hardmax", "Exp", "Log", "Sqrt", "Abs",
    "Floor", "Reciprocal", "Negate", "Cosine", "Sin", "Acos", "Asin", "Cosh", "Sinh", "Atanh",
    "Asinh", "Tan", "Atan", "Pow", "ExponentialLinearUnit", "Softplus", "Pass",
    "StopGradient", "SumElements", "SumColumnElements", "Equal", "NotEqual", "Less",
    "LessEqual", "Greater", "GreaterEqual", "LogPlus", "CosDistance", "Logistic",
    "SquareError", "CrossEntropyWithSoftmax", "CrossEntropy", "ClassificationError",
    "ErrorPrediction", "PerDimMeanVarNormalization", "PerDimMeanVarDeNormalization",
    "DynamicAxis", "Clip", "If", "ReconcileDynamicAxis", "PackedIndex", "GatherPacked",
    "ScatterPacked", "DiagTimes", "Scale", "Diag", "MatrixL1Reg", "MatrixL2Reg",
    "KhatriRaoProduct", "Transpose", "CosDistanceWithNegativeSamples",
)

_FIELD_READERS: dict[str, FieldReader] = dict.fromkeys(_NO_FIELD_TYPES, _no_fields)
_FIELD_READERS.update(
    {
        "LearnableParameter": _learnable_parameter,
        "InputValue": _input_value,
        "SparseInputValue": _input_value,
        "Times": _times,
        "TransposeTimes": _times,
        "Convolution": _convolution,
        "Pooling": _convolution_base,
        "MaxUnpooling": _convolution_base,
        "MaxPooling": _legacy_pooling,
        "AveragePooling": _legacy_pooling,
        "ROIPooling": _roi_pooling,
        "Reshape": _reshape,
        "LegacyReshape": _legacy_reshape,
        "ReduceElements": _reduce_elements,
        "BatchNormalization": _batch_normalization,
        "RowStack": _row_stack,
        "Slice": _slice,
        "TransposeDimensions": _transpose_dimensions,
        "Dropout": _dropout,
        "PastValue": _delay,
        "FutureValue": _delay,
        "Mean": _precompute,
        "InvStdDev": _precompute,
        "Where": _where,
    }
)



def read_node_fields(r: ByteReader, node: V1Node, version: int) -> dict[str, Any]:
    """Read the type-specific fields of ``node`` (positioned right after its name)."""
    reader = _FIELD_READERS.get(node.op)
    if reader is None:
        raise UnsupportedError(
            f"{r.path}: node {node.name[:80]!r} at offset {node.offset} has v1 node type "
            f"{node.op[:60]!r}, which this reader cannot parse (its fields are not known)"
        )
    return reader(r, node, version)
