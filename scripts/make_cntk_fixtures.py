"""Build the CNTK fixture models mmconv's tests convert, with real CNTK 2.7.

Why: the CNTK frontend reads model files without CNTK, so its tests need real
files written by real CNTK, in both formats, with reference outputs that CNTK
itself computed.  This script is the only place those come from.

Run it in the CNTK env (Python 3.6; no mmconv imports)::

    $(scripts/setup_cntk_env.sh) scripts/make_cntk_fixtures.py --out tests/fixtures/cntk

For every fixture ``NAME`` it writes

- ``NAME.v2.model``  ``Function.save`` (protobuf Dictionary format)
- ``NAME.v1.model``  ``cntk.cntk_py.save_as_legacy_model`` (legacy binary), when
  CNTK can write the model in that format (else recorded in the manifest)
- ``NAME.io.npz``    ``in_0, in_1 ...`` (order of ``model.arguments``, batch of 2),
  ``out_0 ...`` (order of ``model.outputs``) computed by CNTK from the v2 model,
  and ``input_names`` / ``output_names`` (unicode arrays, loadable without pickle)

and ``MANIFEST.json`` describing them all.  Everything is deterministic (fixed
seeds; every parameter and BatchNormalization statistic is overwritten with
seeded random values, so a converter that ignores one of them fails).
"""

# ruff: noqa: B905  (zip(strict=) does not exist on Python 3.6, where this runs)

import os
import sys
import warnings

warnings.filterwarnings("ignore", category=UserWarning)

import cntk as C  # noqa: E402
import cntk_model_builder as cmb  # noqa: E402
import numpy as np  # noqa: E402

BATCH = cmb.BATCH
MAX_BYTES = 2 * 1024 * 1024
FIXTURES = []  # (name, function) in priority order


def fixture(func):
    """Register a fixture builder; its name (minus ``fx_``) names the files."""
    FIXTURES.append((func.__name__[3:], func))
    return func


class Spec:
    """What a builder returns: the model plus what the manifest says about it."""

    def __init__(self, model, families, ops, inputs=None, notes="", reference=None):
        self.model = model
        # A model CNTK can evaluate on CPU that computes the same function, for
        # models CNTK's CPU build cannot evaluate (dilated convolution).
        self.reference = reference
        self.families = list(families)
        self.ops = list(ops)
        self.inputs = inputs  # optional list of arrays (order of model.arguments)
        self.notes = notes


# ---------------------------------------------------------------- inputs

def default_inputs(model, rng):
    arrays = []
    for a in model.arguments:
        shape = (BATCH, *a.shape)
        if len(a.dynamic_axes) == 0:
            shape = tuple(a.shape)
        elif len(a.dynamic_axes) > 1:
            shape = (BATCH, 1, *a.shape)
        arrays.append(np.asarray(rng.normal(0.0, 1.0, shape), dtype=np.dtype(a.dtype)))
    return arrays


# ---------------------------------------------------------------- families

L = C.layers


@fixture
def fx_convnet():
    """The foundation acceptance case: a small LeNet-like CNN with BN and dropout."""
    x = C.input_variable((3, 32, 32), name="features")
    h = L.Convolution((3, 3), 8, pad=True, bias=True, name="conv1")(x)
    h = L.BatchNormalization(map_rank=1, name="bn1")(h)
    h = C.relu(h, name="relu1")
    h = L.MaxPooling((2, 2), strides=(2, 2), name="pool1")(h)
    h = L.Convolution((3, 3), 16, pad=True, bias=False, name="conv2")(h)
    h = L.BatchNormalization(map_rank=1, name="bn2")(h)
    h = C.relu(h, name="relu2")
    h = L.AveragePooling((2, 2), strides=(2, 2), name="pool2")(h)
    h = L.Dropout(0.5, name="drop")(h)
    h = L.Dense(10, name="fc")(h)
    z = C.softmax(h, name="prob")
    return Spec(z, ["conv", "batchnorm", "pool", "dense", "activation", "dropout"],
                ["Convolution", "BatchNormalization(spatial)", "ReLU", "MaxPooling",
                 "AveragePooling", "Dropout", "Dense(Times+Plus)", "Softmax"])


@fixture
def fx_mlp():
    """Dense stack on a flat vector: sigmoid/tanh/relu activations and dropout."""
    x = C.input_variable(20, name="x")
    h = L.Dense(32, activation=C.sigmoid, name="fc1")(x)
    h = L.Dropout(0.3, name="drop1")(h)
    h = L.Dense(16, activation=C.tanh, name="fc2")(h)
    h = L.Dense(12, activation=C.relu, name="fc3")(h)
    z = L.Dense(4, name="fc4")(h)
    return Spec(z, ["dense", "activation", "dropout"],
                ["Dense", "Sigmoid", "Tanh", "ReLU", "Dropout"])


@fixture
def fx_dense_chw():
    """Dense straight on a C x H x W map: CNTK flattens it in its own (column-major) order."""
    x = C.input_variable((4, 5, 6), name="fmap")
    z = L.Dense(7, name="fc")(x)
    return Spec(z, ["dense"], ["Dense(input_rank=3, Times inferInputRankToMap)"])


def _conv_bn(h, k, n, name, strides=1, relu=True):
    h = L.Convolution((k, k), n, pad=True, strides=strides, bias=False, name=name)(h)
    h = L.BatchNormalization(map_rank=1, name=name + "_bn")(h)
    return C.relu(h, name=name + "_relu") if relu else h


@fixture
def fx_residual():
    """ResNet basic block with a 1x1 stride-2 projection, a bottleneck block, global pooling."""
    x = C.input_variable((8, 16, 16), name="features")
    a = _conv_bn(x, 3, 16, "res1_a", strides=2)
    a = _conv_bn(a, 3, 16, "res1_b", relu=False)
    s = _conv_bn(x, 1, 16, "res1_proj", strides=2, relu=False)
    h = C.relu(C.plus(a, s, name="res1_add"), name="res1_relu")
    b = _conv_bn(h, 1, 8, "res2_a")
    b = _conv_bn(b, 3, 8, "res2_b")
    b = _conv_bn(b, 1, 16, "res2_c", relu=False)
    h = C.relu(C.plus(b, h, name="res2_add"), name="res2_relu")
    h = L.GlobalAveragePooling(name="gap")(h)
    z = L.Dense(5, name="fc")(h)
    return Spec(z, ["conv", "batchnorm", "residual", "pool", "dense"],
                ["Convolution(stride 2, 1x1 projection)", "BatchNormalization(spatial)",
                 "Plus", "ReLU", "GlobalAveragePooling", "Dense"])


@fixture
def fx_bn_per_element():
    """BatchNormalization with the default map_rank=0: statistics per element, not per channel."""
    x = C.input_variable((3, 8, 8), name="features")
    h = L.BatchNormalization(name="bn")(x)
    h = C.relu(h, name="bn_relu")
    v = C.input_variable(10, name="vec")
    g = L.BatchNormalization(name="bn_vec")(v)
    return Spec(C.combine([h, g]), ["batchnorm"],
                ["BatchNormalization(spatial=False) on CHW", "BatchNormalization on a vector",
                 "Combine"])


# ---- op families: convolution

def _conv_fixture(name, in_shape, doc, ops, **kw):
    def build():
        x = C.input_variable(in_shape, name="x")
        z = L.Convolution(name="conv", **kw)(x)
        return Spec(z, ["conv"], ops, notes=doc)
    build.__name__ = "fx_" + name
    build.__doc__ = doc
    fixture(build)


_conv_fixture("conv_strides", (3, 15, 16), "strided (2,3) 3x3 convolution with pad=True on "
              "odd/even sizes: autoPadding puts the odd pixel", ["Convolution(strides=(2,3))"],
              filter_shape=(3, 3), num_filters=4, strides=(2, 3), pad=True)
_conv_fixture("conv_even_kernel", (3, 11, 12), "even 2x4 kernel with pad=True (autoPadding's "
              "odd-pixel placement)", ["Convolution(kernel 2x4, autoPadding)"],
              filter_shape=(2, 4), num_filters=5, pad=True)
_conv_fixture("conv_even_kernel_strided", (3, 12, 12), "4x4 kernel, stride 2, pad=True",
              ["Convolution(kernel 4x4, stride 2, autoPadding)"], filter_shape=(4, 4),
              num_filters=3, strides=2, pad=True)
_conv_fixture("conv_valid", (3, 12, 10), "5x3 kernel without padding (pad=False)",
              ["Convolution(no padding)"], filter_shape=(5, 3), num_filters=4, pad=False)


def _grouped(name, cin, cout, groups, doc):
    def build():
        x = C.input_variable((cin, 10, 10), name="x")
        w = C.parameter((cout, cin // groups, 3, 3), name="W")
        b = C.parameter((cout, 1, 1), name="b")
        z = C.plus(C.convolution(w, x, auto_padding=[False, True, True], groups=groups,
                                 name="conv"), b, name="conv_bias")
        return Spec(z, ["conv"], [f"Convolution(groups={groups})", "Plus(bias)"], notes=doc)
    build.__name__ = "fx_" + name
    build.__doc__ = doc
    fixture(build)


_grouped("conv_groups", 8, 6, 2, "grouped convolution (groups=2) via cntk.ops.convolution; "
         "the layers API refuses groups > 1")
_grouped("conv_depthwise", 4, 8, 4, "depthwise convolution (groups = input channels)")


@fixture
def fx_conv_dilation():
    """Dilated 3x3 convolution (dilation 2), padded.

    CNTK's CPU build cannot evaluate dilated convolution, so the reference
    outputs come from CNTK evaluating the same weights as a zero-dilated 5x5 kernel.
    """
    x = C.input_variable((3, 16, 16), name="x")
    w = C.parameter((4, 3, 3, 3), name="W")
    z = C.convolution(w, x, dilation=(1, 2, 2), auto_padding=[False, True, True], name="conv")

    def reference(model):
        (param,) = model.parameters
        k = np.zeros((4, 3, 5, 5), dtype=np.float32)
        k[:, :, ::2, ::2] = param.value
        xr = C.input_variable((3, 16, 16), name="x")
        return C.convolution(C.constant(k), xr, auto_padding=[False, True, True], name="conv")

    return Spec(z, ["conv"], ["Convolution(dilation=2)"], reference=reference,
                notes="reference outputs computed by CNTK from the equivalent zero-dilated "
                      "5x5 kernel (dilated convolution is GPU-only in CNTK 2.7)")


@fixture
def fx_conv_explicit_pads():
    """Asymmetric explicit padding: cntk.ops.pad then cntk.ops.convolution(auto_padding=False).

    CNTK 2.7's Python API has no lowerPad/upperPad arguments; models from other
    tools express explicit pads this way.
    """
    x = C.input_variable((3, 10, 9), name="x")
    w = C.parameter((4, 3, 3, 3), name="W")
    p = C.pad(x, pattern=[(0, 0), (1, 2), (0, 1)], mode=C.ops.CONSTANT_PAD, name="pad")
    z = C.convolution(w, p, strides=(1, 2, 2), auto_padding=[False], name="conv")
    return Spec(z, ["conv", "shape"], ["Pad(constant)", "Convolution(auto_padding=False)"])


@fixture
def fx_conv_ops_autopad_mixed():
    """cntk.ops.convolution with per-axis autoPadding (pad H, not W) and stride 2."""
    x = C.input_variable((3, 9, 10), name="x")
    w = C.parameter((4, 3, 3, 3), name="W")
    z = C.convolution(w, x, strides=(1, 2, 2), auto_padding=[False, True, False], name="conv")
    return Spec(z, ["conv"], ["Convolution(autoPadding per axis)"])


@fixture
def fx_conv_transpose():
    """ConvolutionTranspose (deconvolution) with stride 2, pad and an explicit output_shape."""
    x = C.input_variable((4, 8, 8), name="x")
    h = L.ConvolutionTranspose((3, 3), 3, strides=2, pad=True, output_shape=(16, 16),
                               name="deconv")(x)
    g = L.ConvolutionTranspose((4, 4), 2, strides=2, pad=False, name="deconv_valid")(x)
    return Spec(C.combine([h, g]), ["conv"],
                ["ConvolutionTranspose(output_shape)", "ConvolutionTranspose(no pad)",
                 "Combine"])


@fixture
def fx_conv1d():
    """1-D convolution over a (channels, length) input."""
    x = C.input_variable((3, 20), name="x")
    z = L.Convolution((5,), 4, pad=True, strides=2, name="conv1d")(x)
    return Spec(z, ["conv"], ["Convolution(1-D)"])


# ---- op families: pooling

@fixture
def fx_pool_variants():
    """Max/average pooling with autoPadding, ceil_out_dim, include_pad, and global pools."""
    x = C.input_variable((3, 11, 10), name="x")
    outs = [
        L.MaxPooling((3, 3), strides=2, pad=True, name="max_pad")(x),
        L.AveragePooling((3, 3), strides=2, pad=True, name="avg_pad")(x),
        C.pooling(x, C.AVG_POOLING, (3, 3), strides=(2, 2), auto_padding=[True],
                  include_pad=True, name="avg_pad_incl"),
        C.pooling(x, C.MAX_POOLING, (2, 2), strides=(2, 2), ceil_out_dim=True, name="max_ceil"),
        C.pooling(x, C.AVG_POOLING, (3, 2), strides=(2, 2), ceil_out_dim=True,
                  name="avg_ceil"),
        C.pooling(x, C.AVG_POOLING, (3, 3), strides=(2, 2), auto_padding=[True],
                  ceil_out_dim=True, include_pad=True, name="avg_ceil_pad_incl"),
        L.MaxPooling((2, 2), strides=1, name="max_s1")(x),
        L.GlobalMaxPooling(name="gmax")(x),
        L.GlobalAveragePooling(name="gavg")(x),
    ]
    return Spec(C.combine(outs), ["pool"],
                ["MaxPooling(autoPadding)", "AveragePooling(autoPadding)", "includePad",
                 "ceilOutDim", "GlobalMaxPooling", "GlobalAveragePooling", "Combine"])


def _native(func):
    """A Function made by a cntk_py (SWIG) call, as the Python API's Function class.

    The Python wrappers of pooling/convolution_transpose do not expose CNTK's
    explicit lowerPad/upperPad overloads; the SWIG layer does.
    """
    func.__class__ = C.Function
    return func


@fixture
def fx_pool_explicit_pads():
    """Pooling with explicit asymmetric lowerPad/upperPad (a C++ overload), ceil, includePad.

    The SWIG call takes window and strides in Python order but the pad vectors
    in CNTK's storage order (W, H, C).
    """
    x = C.input_variable((3, 11, 10), name="x")
    outs = [
        # without ceilOutDim CNTK wants the padded extent to be covered exactly
        _native(C.cntk_py.pooling(x, C.MAX_POOLING, (3, 3), (2, 2), [2, 1, 0], [1, 1, 0],
                                  False, False, "max_pads")),
        _native(C.cntk_py.pooling(x, C.AVG_POOLING, (3, 3), (2, 2), [1, 0, 0], [0, 2, 0],
                                  False, False, "avg_pads_excl")),
        _native(C.cntk_py.pooling(x, C.AVG_POOLING, (3, 3), (2, 2), [1, 0, 0], [0, 2, 0],
                                  False, True, "avg_pads_incl")),
        _native(C.cntk_py.pooling(x, C.MAX_POOLING, (2, 2), (2, 2), [1, 1, 0], [0, 0, 0],
                                  True, False, "max_pads_ceil")),
    ]
    return Spec(C.combine(outs), ["pool"],
                ["MaxPooling(lowerPad/upperPad)", "AveragePooling(lowerPad/upperPad)",
                 "includePad", "ceilOutDim", "Combine"])


@fixture
def fx_conv_transpose_explicit_pads():
    """ConvolutionTranspose with explicit asymmetric lowerPad/upperPad (CNTK's C++ overload)."""
    x = C.input_variable((2, 6, 7), name="x")
    w = C.parameter((2, 3, 3, 3), name="W")
    # overload: (W, x, strides, sharing, lowerPad, upperPad, outputShape, dilation,
    #            maxTempMemSizeInSamples, name); no autoPadding argument
    z = _native(C.cntk_py.convolution_transpose(w, x, (2, 2, 2), [True], [1, 0, 0],
                                                [0, 1, 0], (0,), (1,), 0, "deconv_pads"))
    return Spec(z, ["conv"], ["ConvolutionTranspose(lowerPad/upperPad)"])


# ---- op families: normalization

@fixture
def fx_lrn():
    """Local response normalization across channels (AlexNet style), visible alpha."""
    x = C.input_variable((8, 6, 6), name="x")
    z = C.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-1, beta=0.75,
                                       name="lrn")
    return Spec(z, ["normalization"], ["LocalResponseNormalization"])


@fixture
def fx_layer_norm():
    """LayerNormalization over a feature vector and over a C x H x W map."""
    v = C.input_variable(12, name="vec")
    a = L.LayerNormalization(name="ln_vec")(v)
    m = C.input_variable((3, 4, 5), name="fmap")
    b = L.LayerNormalization(name="ln_map")(m)
    return Spec(C.combine([a, b]), ["normalization"], ["LayerNormalization", "Combine"])


# ---- op families: elementwise and activations

def _positive(model, rng):
    return [np.asarray(np.abs(rng.normal(0, 1, (BATCH, *a.shape))) + 0.25, dtype=np.float32)
            for a in model.arguments]


def _unary_fixture(name, fn, ops, positive=False, shape=(3, 4, 5)):
    def build():
        x = C.input_variable(shape, name="x")
        z = fn(x)
        spec = Spec(z, ["elementwise"], ops)
        if positive:
            spec.inputs = _positive(z, np.random.RandomState(cmb.seed_for(name) + 1))
        return spec
    build.__name__ = "fx_" + name
    fixture(build)


_unary_fixture("act_elu", lambda x: C.elu(x, name="elu"), ["ELU"])
_unary_fixture("act_selu", lambda x: C.selu(x, name="selu"), ["SELU"])
_unary_fixture("act_leaky_relu", lambda x: C.leaky_relu(x, alpha=0.2, name="lrelu"),
               ["LeakyReLU(alpha=0.2)"])
_unary_fixture("act_softplus", lambda x: C.softplus(x, name="softplus"), ["Softplus"])
_unary_fixture("act_sigmoid_tanh",
               lambda x: C.combine([C.sigmoid(x, name="sigmoid"), C.tanh(x, name="tanh")]),
               ["Sigmoid", "Tanh", "Combine"])
_unary_fixture("act_softmax_axis",
               lambda x: C.combine([C.softmax(x, axis=0, name="softmax_c"),
                                    C.softmax(x, axis=2, name="softmax_w"),
                                    C.log_softmax(x, axis=1, name="logsoftmax_h"),
                                    C.softmax(x, name="softmax_all")]),
               ["Softmax(axis)", "LogSoftmax(axis)", "Softmax(all axes)", "Combine"])
_unary_fixture("act_hardmax", lambda x: C.hardmax(x, name="hardmax"), ["Hardmax"],
               shape=(7,))
_unary_fixture("math_unary",
               lambda x: C.combine([C.abs(x, name="abs"), C.negate(x, name="neg"),
                                    C.floor(x, name="floor"), C.ceil(x, name="ceil"),
                                    C.round(x, name="round"),
                                    C.clip(x, -0.5, 0.7, name="clip"),
                                    C.exp(x, name="exp"), C.square(x, name="square")]),
               ["Abs", "Negate", "Floor", "Ceil", "Round", "Clip", "Exp", "Square", "Combine"])
_unary_fixture("math_unary_positive",
               lambda x: C.combine([C.log(x, name="log"), C.sqrt(x, name="sqrt"),
                                    C.reciprocal(x, name="reciprocal"),
                                    C.pow(x, C.constant(2.5, name="p"), name="pow_const")]),
               ["Log", "Sqrt", "Reciprocal", "Pow(constant exponent)", "Combine"],
               positive=True)


@fixture
def fx_act_param_relu():
    """PReLU with a learned per-element alpha."""
    x = C.input_variable((3, 4, 5), name="x")
    alpha = C.parameter((3, 4, 5), name="alpha")
    return Spec(C.param_relu(alpha, x, name="prelu"), ["elementwise"], ["PReLU"])


@fixture
def fx_math_binary():
    """Binary elementwise ops on two inputs, with numpy-style broadcasting."""
    a = C.input_variable((3, 4, 5), name="a")
    b = C.input_variable((4, 1), name="b")
    c = C.constant(np.linspace(0.5, 1.5, 5, dtype=np.float32), name="c5")
    outs = [
        C.plus(a, b, name="add_bcast"),
        C.minus(a, c, name="sub_const"),
        C.element_times(a, b, name="mul_bcast"),
        C.element_divide(a, C.exp(b), name="div_bcast"),
        C.element_max(a, b, name="max"),
        C.element_min(a, c, name="min"),
        C.pow(C.abs(a) + 0.5, b, name="pow"),
    ]
    return Spec(C.combine(outs), ["elementwise"],
                ["Plus", "Minus", "ElementTimes", "ElementDivide", "ElementMax",
                 "ElementMin", "Pow", "broadcasting", "Combine"])


@fixture
def fx_compare_select():
    """Comparisons (exact 0/1 outputs) and element_select; inputs quantized so == happens."""
    a = C.input_variable((3, 4), name="a")
    b = C.input_variable((3, 4), name="b")
    outs = [C.greater(a, b, name="gt"), C.less(a, b, name="lt"), C.equal(a, b, name="eq"),
            C.greater_equal(a, b, name="ge"), C.not_equal(a, b, name="ne"),
            C.element_select(C.greater(a, b), a, C.negate(b), name="select")]
    model = C.combine(outs)
    rng = np.random.RandomState(cmb.seed_for("compare_select") + 1)
    inputs = [np.asarray(np.round(rng.normal(0, 1, (BATCH, 3, 4)) * 2) / 2, dtype=np.float32)
              for _ in model.arguments]
    return Spec(model, ["elementwise"],
                ["Greater", "Less", "Equal", "GreaterEqual", "NotEqual", "Select", "Combine"],
                inputs=inputs)


# ---- op families: shape ops and reductions

@fixture
def fx_shape_ops():
    """reshape, splice, strided slice, transpose, swapaxes, pad (3 modes) on a 3-D input."""
    x = C.input_variable((3, 4, 6), name="x")
    y = C.input_variable((2, 4, 6), name="y")
    outs = [
        C.reshape(x, (12, 6), name="reshape"),
        C.reshape(x, (2, 12), begin_axis=1, end_axis=3, name="reshape_range"),
        C.splice(x, y, axis=0, name="splice_c"),
        C.splice(x, x, axis=2, name="splice_w"),
        C.slice(x, 1, 1, 4, name="slice_h"),
        C.slice(x, 2, 0, 6, strides=2, name="slice_w_stride2"),
        C.slice(x, [0, 2], [1, 1], [3, 5], name="slice_multi"),
        C.transpose(x, (2, 0, 1), name="transpose"),
        C.swapaxes(x, 0, 2, name="swapaxes"),
        C.pad(x, [(0, 0), (1, 2), (2, 1)], mode=C.ops.CONSTANT_PAD, constant_value=0.5,
              name="pad_const"),
        C.pad(x, [(0, 0), (1, 1), (2, 2)], mode=C.ops.REFLECT_PAD, name="pad_reflect"),
        C.pad(x, [(0, 0), (2, 1), (1, 0)], mode=C.ops.SYMMETRIC_PAD, name="pad_symmetric"),
    ]
    return Spec(C.combine(outs), ["shape"],
                ["Reshape", "Reshape(begin/end axis)", "Splice", "Slice", "Slice(strides)",
                 "Slice(multi-axis)", "TransposeAxes", "Pad(constant/reflect/symmetric)",
                 "Combine"])


@fixture
def fx_shape_ops_legacy():
    """shape_ops without Pad, transpose(perm) and strided slices (the legacy format
    cannot hold them: CNTK 2.7 refuses the first two and drops slice strides), so
    reshape, splice, slice and swapaxes with CNTK's reversed axes are tested in
    v1 files too."""
    x = C.input_variable((3, 4, 6), name="x")
    y = C.input_variable((3, 2, 6), name="y")
    outs = [
        C.reshape(x, (4, 18), name="reshape"),
        C.reshape(x, (2, 3, 2), begin_axis=0, end_axis=2, name="reshape_range"),
        C.splice(x, y, axis=1, name="splice_h"),
        C.splice(x, x, axis=-1, name="splice_last"),
        C.slice(x, 0, 1, 3, name="slice_c"),
        C.slice(x, -1, -5, -1, name="slice_w_neg"),
        C.slice(x, [1, 2], [1, 0], [4, 5], name="slice_multi"),
        C.swapaxes(x, 1, 2, name="swapaxes"),
    ]
    return Spec(C.combine(outs), ["shape"],
                ["Reshape", "Reshape(begin/end axis)", "Splice", "Slice(negative indices)",
                 "Slice(multi-axis)", "TransposeAxes(swap)", "Combine"])


@fixture
def fx_conv_transpose_auto():
    """ConvolutionTranspose with auto padding and no output_shape (CNTK then makes
    (n-1)*stride+1 cells), odd and even kernels."""
    x = C.input_variable((3, 7, 6), name="x")
    a = L.ConvolutionTranspose((3, 3), 2, strides=2, pad=True, name="deconv_k3")(x)
    b = L.ConvolutionTranspose((4, 2), 2, strides=(2, 3), pad=True, name="deconv_k4")(x)
    return Spec(C.combine([a, b]), ["conv"],
                ["ConvolutionTranspose(auto padding, no output_shape)", "Combine"])


@fixture
def fx_reductions():
    """reduce_sum/mean/max/min/prod/log_sum_exp on one and all axes; argmax/argmin."""
    x = C.input_variable((3, 4, 5), name="x")
    outs = [
        C.reduce_sum(x, axis=0, name="sum_c"),
        C.reduce_mean(x, axis=(1, 2), name="mean_hw"),
        C.reduce_max(x, axis=2, name="max_w"),
        C.reduce_min(x, axis=1, name="min_h"),
        C.reduce_prod(x * 0.5 + 1.0, axis=2, name="prod_w"),
        C.reduce_log_sum_exp(x, axis=0, name="lse_c"),
        C.reduce_sum(x, axis=C.Axis.all_static_axes(), name="sum_all"),
        C.reduce_mean(x, axis=1, keepdims=False, name="mean_h_nokeep"),
        C.argmax(x, axis=0, name="argmax_c"),
        C.argmin(x, axis=2, name="argmin_w"),
    ]
    return Spec(C.combine(outs), ["reduction"],
                ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                 "ReduceLogSumExp", "keepdims=False", "Argmax", "Argmin", "Combine"])


# ---- op families: matrix products

@fixture
def fx_times():
    """Times with output_rank=2, a plain matrix product, and TransposeTimes."""
    x = C.input_variable((3, 4), name="x")
    w2 = C.parameter((4, 2, 5), name="W_out_rank2")
    w = C.parameter((4, 6), name="W")
    v = C.input_variable(4, name="v")
    wt = C.parameter((5, 4), name="W_t")
    outs = [
        C.times(x, w2, output_rank=2, name="times_out_rank2"),
        C.times(x, w, name="times"),
        C.times_transpose(v, wt, name="times_transpose"),
    ]
    return Spec(C.combine(outs), ["linalg"],
                ["Times(output_rank=2)", "Times", "TransposeTimes", "Combine"])


# ---- constant subgraphs: ops computed from parameters and constants only

@fixture
def fx_const_subgraph():
    """Ops whose inputs are all weights (constant subgraphs), mixed into the activations:
    ``sigmoid(parameter)`` gating, ``plus(parameter, constant)``, a convolution kernel
    and a Dense weight computed from parameters, a reshaped ``exp`` of a parameter."""
    x = C.input_variable((3, 6, 5), name="x")
    gate = C.parameter((3, 1, 1), name="gate")
    shift = C.parameter((3, 1, 1), name="shift")
    offset = C.constant(np.linspace(-0.5, 0.5, 3, dtype=np.float32).reshape(3, 1, 1),
                        name="offset")
    h = C.element_times(x, C.sigmoid(gate, name="gate_sigmoid"), name="gated")
    h = C.plus(h, C.plus(shift, offset, name="shift_plus_offset"), name="shifted")
    k = C.parameter((4, 3, 3, 3), name="kernel")
    kscale = C.constant(np.full((4, 1, 1, 1), 0.5, dtype=np.float32), name="kernel_scale")
    kernel = C.element_times(C.tanh(k), kscale, name="kernel_computed")
    h = C.convolution(kernel, h, auto_padding=[False, True, True], name="conv")
    bias = C.parameter(4, name="conv_bias")
    h = C.plus(h, C.reshape(C.exp(bias), (4, 1, 1)), name="conv_plus")
    h = C.relu(h, name="relu")
    w = C.parameter((4 * 6 * 5, 7), name="W")
    wneg = C.negate(w, name="W_neg")
    z = C.times(C.reshape(h, 4 * 6 * 5), C.element_max(w, wneg, name="W_abs"), name="fc")
    return Spec(z, ["elementwise", "conv", "linalg"],
                ["StableSigmoid(Parameter)", "Plus(Parameter, Constant)",
                 "ElementTimes(Tanh(Parameter), Constant) as a kernel",
                 "Exp(Parameter) reshaped as a bias", "ElementMax(Parameter, Negate)",
                 "Times with a computed weight"])


# ---- ROI pooling, combine, loss

def _rois(rng, n, width, height):
    boxes = []
    for _ in range(n):
        x1, y1 = rng.uniform(0, width * 0.5), rng.uniform(0, height * 0.5)
        x2, y2 = x1 + rng.uniform(width * 0.2, width * 0.5), y1 + rng.uniform(height * 0.2,
                                                                          height * 0.5)
        boxes.append([x1, y1, x2, y2])
    return boxes


@fixture
def fx_roipooling():
    """ROIPooling: a feature map and a set of boxes (x1, y1, x2, y2 in input pixels)."""
    x = C.input_variable((4, 16, 16), name="fmap")
    rois = C.input_variable((3, 4), name="rois")
    z = C.roipooling(x, rois, C.MAX_POOLING, (3, 3), spatial_scale=0.5, name="roipool")
    rng = np.random.RandomState(cmb.seed_for("roipooling") + 1)
    inputs = [np.asarray(rng.normal(0, 1, (BATCH, 4, 16, 16)), dtype=np.float32),
              np.asarray([_rois(rng, 3, 32, 32) for _ in range(BATCH)], dtype=np.float32)]
    return Spec(z, ["pool", "detection"], ["ROIPooling(max)"], inputs=inputs)


@fixture
def fx_combine_two():
    """A Combine of two outputs from a shared trunk."""
    x = C.input_variable(10, name="x")
    h = L.Dense(8, activation=C.relu, name="trunk")(x)
    a = L.Dense(3, name="head_a")(h)
    b = C.sigmoid(L.Dense(2, name="head_b")(h), name="head_b_sigmoid")
    return Spec(C.combine([a, b]), ["combine", "dense"], ["Combine", "Dense", "Sigmoid"])


@fixture
def fx_with_loss():
    """A model saved with its training criterion: cross_entropy_with_softmax + classification_error.

    It has a label input; converters keep or drop the criterion nodes.
    """
    x = C.input_variable(8, name="features")
    y = C.input_variable(5, name="labels")
    z = L.Dense(5, name="fc")(L.Dense(6, activation=C.relu, name="hidden")(x))
    ce = C.cross_entropy_with_softmax(z, y, name="loss")
    err = C.classification_error(z, y, name="error")
    model = C.combine([z, ce, err])
    rng = np.random.RandomState(cmb.seed_for("with_loss") + 1)
    inputs = []
    for a in model.arguments:
        if a.name == "labels":
            inputs.append(np.eye(5, dtype=np.float32)[rng.randint(0, 5, BATCH)])
        else:
            inputs.append(np.asarray(rng.normal(0, 1, (BATCH, 8)), dtype=np.float32))
    return Spec(model, ["loss", "dense"],
                ["CrossEntropyWithSoftmax", "ClassificationError", "Combine"], inputs=inputs)


def _label_rows(rng, rows, classes):
    return np.asarray([np.eye(classes)[rng.randint(0, classes, rows)] for _ in range(BATCH)],
                      dtype=np.float32)


@fixture
def fx_with_loss_axis():
    """Per-row criteria (Fast R-CNN style): cross_entropy_with_softmax/classification_error
    with axis=1 and a squared_error, saved with the prediction.

    A legacy file flattens these into primitives unlike the axis-less criteria
    (ReduceElements(Sum, ElementTimes(labels, z)), a Mean over NotEqual(labels, ...),
    ElementTimes(Minus(z, t), Minus(z, t))); they must still be recognised and dropped.
    """
    x = C.input_variable((3, 6), name="rows")
    y = C.input_variable((3, 4), name="row_labels")
    t = C.input_variable((3, 4), name="row_targets")
    z = L.Dense(4, map_rank=1, name="scores")(x)
    ce = C.cross_entropy_with_softmax(z, y, axis=1, name="row_loss")
    err = C.classification_error(z, y, axis=1, name="row_error")
    mse = C.squared_error(z, t, name="mse")
    model = C.combine([z, ce, err, mse])
    rng = np.random.RandomState(cmb.seed_for("with_loss_axis") + 1)
    inputs = []
    for a in model.arguments:
        if a.name == "row_labels":
            inputs.append(_label_rows(rng, 3, 4))
        else:
            inputs.append(np.asarray(rng.normal(0, 1, (BATCH, *a.shape)), dtype=np.float32))
    return Spec(model, ["loss", "dense"],
                ["CrossEntropyWithSoftmax(axis=1)", "ClassificationError(axis=1)",
                 "SquaredError", "Combine"], inputs=inputs)


@fixture
def fx_criteria_only():
    """A model saved as its criteria only, C.combine([loss, error]): the prediction they
    score is not itself an output."""
    x = C.input_variable(8, name="features")
    y = C.input_variable(5, name="labels")
    z = L.Dense(5, name="z")(L.Dense(6, activation=C.relu, name="hidden")(x))
    model = C.combine([C.cross_entropy_with_softmax(z, y, name="loss"),
                       C.classification_error(z, y, name="error")])
    rng = np.random.RandomState(cmb.seed_for("criteria_only") + 1)
    inputs = []
    for a in model.arguments:
        if a.name == "labels":
            inputs.append(np.eye(5, dtype=np.float32)[rng.randint(0, 5, BATCH)])
        else:
            inputs.append(np.asarray(rng.normal(0, 1, (BATCH, 8)), dtype=np.float32))
    return Spec(model, ["loss", "dense"], ["CrossEntropyWithSoftmax", "ClassificationError",
                                           "Combine (criteria only)"], inputs=inputs)


# ---- other dtypes

def _typed_net(dtype):
    x = C.input_variable((3, 8, 8), dtype=dtype, name="x")
    with C.layers.default_options(dtype=dtype):
        h = L.Convolution((3, 3), 4, pad=True, activation=C.relu, name="conv")(x)
        h = L.MaxPooling((2, 2), strides=2, name="pool")(h)
        z = L.Dense(3, name="fc")(h)
    return z


@fixture
def fx_float64():
    """A conv/pool/dense net whose input and parameters are float64."""
    return Spec(_typed_net(np.float64), ["dtype", "conv", "pool", "dense"],
                ["float64 Convolution", "MaxPooling", "Dense"])


@fixture
def fx_float16():
    """Dense layers in float16 (CNTK's CPU float16 support is partial)."""
    x = C.input_variable(6, dtype=np.float16, name="x")
    with C.layers.default_options(dtype=np.float16):
        z = L.Dense(4, activation=C.relu, name="fc1")(x)
        z = L.Dense(3, name="fc2")(z)
    return Spec(z, ["dtype", "dense"], ["float16 Dense"])


# ---- whole small networks

@fixture
def fx_inception_mini():
    """An Inception module: 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1 branches spliced on channels."""
    x = C.input_variable((3, 16, 16), name="features")
    h = _conv_bn(x, 3, 8, "stem")

    def conv(inp, k, n, name):
        return L.Convolution((k, k), n, pad=True, activation=C.relu, name=name)(inp)

    b1 = conv(h, 1, 4, "b1_1x1")
    b2 = conv(conv(h, 1, 4, "b2_reduce"), 3, 6, "b2_3x3")
    b3 = conv(conv(h, 1, 2, "b3_reduce"), 5, 3, "b3_5x5")
    b4 = conv(L.MaxPooling((3, 3), strides=1, pad=True, name="b4_pool")(h), 1, 3, "b4_proj")
    h = C.splice(b1, b2, b3, b4, axis=0, name="concat")
    h = L.GlobalAveragePooling(name="gap")(h)
    z = C.softmax(L.Dense(6, name="fc")(h), name="prob")
    return Spec(z, ["conv", "batchnorm", "pool", "shape", "dense", "network"],
                ["Convolution(1x1/3x3/5x5)", "Splice(channels)", "MaxPooling(pad)",
                 "GlobalAveragePooling", "Softmax"])


@fixture
def fx_alexnet_mini():
    """AlexNet in miniature: strided big-kernel conv, LRN, overlapping max pool, dropout, dense."""
    x = C.input_variable((3, 32, 32), name="features")
    h = L.Convolution((7, 7), 8, strides=2, pad=True, activation=C.relu, name="conv1")(x)
    h = C.local_response_normalization(h, 2, 1.0, 1e-2, 0.75, name="norm1")
    h = L.MaxPooling((3, 3), strides=2, name="pool1")(h)
    h = L.Convolution((5, 5), 12, pad=True, activation=C.relu, name="conv2")(h)
    h = C.local_response_normalization(h, 2, 1.0, 1e-2, 0.75, name="norm2")
    h = L.MaxPooling((3, 3), strides=2, name="pool2")(h)
    h = L.Convolution((3, 3), 12, pad=True, activation=C.relu, name="conv3")(h)
    h = L.Dense(16, activation=C.relu, name="fc6")(h)
    h = L.Dropout(0.5, name="drop6")(h)
    h = L.Dense(16, activation=C.relu, name="fc7")(h)
    h = L.Dropout(0.5, name="drop7")(h)
    z = L.Dense(10, name="fc8")(h)
    return Spec(z, ["conv", "normalization", "pool", "dense", "dropout", "network"],
                ["Convolution(7x7 stride 2)", "LocalResponseNormalization", "MaxPooling(3/2)",
                 "Dropout", "Dense"])


@fixture
def fx_fast_rcnn_mini():
    """Fast R-CNN in miniature: conv trunk, ROI pooling, class softmax and box regression."""
    x = C.input_variable((3, 32, 32), name="features")
    rois = C.input_variable((4, 4), name="rois")
    h = L.Convolution((3, 3), 8, pad=True, activation=C.relu, name="conv1")(x)
    h = L.MaxPooling((2, 2), strides=2, name="pool1")(h)
    h = L.Convolution((3, 3), 8, pad=True, activation=C.relu, name="conv2")(h)
    r = C.roipooling(h, rois, C.MAX_POOLING, (4, 4), spatial_scale=0.5, name="roi_pool")
    f = L.Dense(16, activation=C.relu, map_rank=1, name="fc6")(r)
    cls = C.softmax(L.Dense(5, map_rank=1, name="cls_score")(f), axis=1, name="cls_prob")
    bbox = L.Dense(20, map_rank=1, name="bbox_regr")(f)
    model = C.combine([cls, bbox])
    rng = np.random.RandomState(cmb.seed_for("fast_rcnn_mini") + 1)
    inputs = []
    for a in model.arguments:
        if a.name == "rois":
            inputs.append(np.asarray([_rois(rng, 4, 32, 32) for _ in range(BATCH)],
                                     dtype=np.float32))
        else:
            inputs.append(np.asarray(rng.normal(0, 1, (BATCH, 3, 32, 32)), dtype=np.float32))
    return Spec(model, ["conv", "pool", "detection", "dense", "network"],
                ["ROIPooling", "Dense(map_rank=1) per ROI", "Softmax(axis=1)",
                 "Combine"], inputs=inputs)


# ---------------------------------------------------------------- driver

def _evaluate(model, inputs):
    return cmb.evaluate(model, dict(zip(model.arguments, inputs)))


def _max_diff(a_list, b_list):
    return max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
               if a.size else 0.0 for a, b in zip(a_list, b_list))


def check_legacy(path, names, inputs, outputs):
    """Reload the legacy file, require CNTK to give the same outputs; return their order.

    save_as_legacy_model keeps argument names, but an output produced inside a
    layer (block) loses its name and a Combine's outputs may come back in
    another order.  So each legacy output is matched to the v2 output with the
    same shape and the smallest difference (a one-to-one match is required),
    and the returned list says, for each output in the legacy model's order,
    which ``out_<i>`` it is.
    """
    legacy = C.load_model(path)
    by_name = {a.name: a for a in legacy.arguments}
    if sorted(by_name) != sorted(names) or len(by_name) != len(names):
        raise RuntimeError(f"legacy model arguments {sorted(by_name)} differ from {names}")
    got = _evaluate(legacy, [inputs[names.index(a.name)] for a in legacy.arguments])
    if len(got) != len(outputs):
        raise RuntimeError(f"legacy model has {len(got)} outputs, v2 has {len(outputs)}")
    scale = max([1.0] + [float(np.max(np.abs(o))) for o in outputs if o.size])
    order = []
    for g in got:
        best, best_diff = None, None
        for i, o in enumerate(outputs):
            # sizes, not shapes: a legacy all-axes reduction keeps (1, 1, 1) where v2 has ()
            if i in order or o.size != g.size:
                continue
            d = _max_diff([o.ravel()], [g.ravel()])
            if best_diff is None or d < best_diff:
                best, best_diff = i, d
        if best is None or best_diff > 1e-5 * scale:
            closest = "" if best_diff is None else f" (closest differs by {best_diff:g})"
            raise RuntimeError(f"legacy model output of shape {g.shape} matches no v2 "
                               f"output{closest}")
        order.append(best)
    return order, [(o.name, [int(d) for d in o.shape]) for o in legacy.outputs]


def build(name, func, out_dir):
    rng = cmb.seeded_rng(name)
    spec = func()
    model = spec.model
    cmb.randomize(model, rng, 2.0)
    inputs = spec.inputs if spec.inputs is not None else default_inputs(model, rng)
    out_names = [o.name for o in model.outputs]
    if "" in out_names or len(set(out_names)) != len(out_names):
        raise RuntimeError(f"{name}: outputs need unique names, got {out_names}")

    v2 = os.path.join(out_dir, name + ".v2.model")
    reloaded = cmb.save_v2(model, v2)
    if spec.reference is not None:
        outputs = _evaluate(spec.reference(reloaded), inputs)
    else:
        outputs = _evaluate(reloaded, inputs)
        if _max_diff(_evaluate(model, inputs), outputs) > 0:
            raise RuntimeError(f"{name}: reloaded v2 model disagrees with the built one")
    cmb.require_finite(name, outputs)

    names = [a.name for a in reloaded.arguments]

    def check(path):
        if spec.reference is None:
            return check_legacy(path, names, inputs, outputs)
        C.load_model(path)  # CNTK cannot evaluate it here; at least it must load
        return None, None

    v1 = os.path.join(out_dir, name + ".v1.model")
    legacy, v1_error = cmb.save_legacy(model, v1, check)
    formats = ["v2"] if v1_error else ["v2", "v1"]
    v1_order, v1_names = legacy or (None, None)

    io_path = os.path.join(out_dir, name + ".io.npz")
    cmb.write_io(io_path, inputs, outputs, reloaded)

    files = [v2, io_path] + ([v1] if "v1" in formats else [])
    for f in files:
        size = os.path.getsize(f)
        if size > MAX_BYTES:
            raise RuntimeError(f"{f} is {size} bytes (limit {MAX_BYTES}): make the model smaller")

    entry = {
        "name": name,
        "families": spec.families,
        "ops": spec.ops,
        "formats": formats,
        "files": sorted(os.path.basename(f) for f in files),
        "inputs": [{"name": a.name, "shape": list(a.shape), "dtype": np.dtype(a.dtype).name,
                    "dynamic_axes": [ax.name for ax in a.dynamic_axes]}
                   for a in reloaded.arguments],
        "outputs": [{"name": o.name or o.uid, "shape": list(o.shape),
                     "dtype": np.dtype(o.dtype).name} for o in reloaded.outputs],
        "batch": BATCH,
        # False: CNTK's CPU build cannot evaluate this model (outputs come from an
        # equivalent model; see notes), so tests must not run it through CNTK here
        "cntk_cpu_eval": spec.reference is None,
    }
    if v1_error:
        entry["v1_error"] = v1_error
    if v1_order is not None:
        # legacy model's outputs, in its order: which out_<i> each one is, and its name
        # and shape as CNTK reports them after loading the v1 file ("" where a
        # layer's name was lost)
        entry["v1_outputs"] = [{"index": i, "name": n, "shape": shp}
                               for i, (n, shp) in zip(v1_order, v1_names)]
    if spec.notes:
        entry["notes"] = spec.notes
    return entry


def _describe(entry):
    note = "  (v1: {})".format(entry["v1_error"]) if "v1_error" in entry else ""
    return "+".join(entry["formats"]) + note


def main(argv=None):
    return cmb.main(argv, doc=__doc__, script=__file__, builders=FIXTURES, build=build,
                    default_out="tests/fixtures/cntk", noun="fixture",
                    manifest_key="fixtures", describe=_describe)


if __name__ == "__main__":
    sys.exit(main())
