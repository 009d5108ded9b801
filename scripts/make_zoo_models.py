"""Build a zoo of realistic CNTK models with real CNTK 2.7, for the heavy zoo check.

Why: the checked-in fixtures (scripts/make_cntk_fixtures.py) are minis written
by one person.  Models in the wild are real topologies at real input sizes,
written the way CNTK's examples and tutorials write them (``cntk.layers`` with
``Sequential``/``For``/``default_options``, plain ``cntk.ops`` with explicit
parameters, Python-function LRN made of primitives, models saved with their
criteria...).  This script builds many of them at run time, with seeded random
weights and non-trivial BatchNormalization statistics, into a cache folder
(default ``~/.cache/mmconv/zoo``).  They are never checked in (ResNet-50 alone
is 100 MB a format).  ``scripts/zoo_check.py`` converts every one.

Run it in the CNTK env (Python 3.6; no mmconv imports)::

    $MMCONV_CNTK_PYTHON scripts/make_zoo_models.py [--out DIR] [--only NAME ...]

For every model ``NAME`` it writes ``NAME.v2.model`` (``Function.save``),
``NAME.v1.model`` (``save_as_legacy_model``, where CNTK can write it) and
``NAME.io.npz`` (``in_<i>`` in the order of ``model.arguments`` and ``out_<i>``
in the order of ``model.outputs``, computed by CNTK from the reloaded v2 file;
``input_names``/``output_names``), plus ``MANIFEST.json``.  Each model is built
in its own process (CNTK's uid counters are process-wide, and a crash in one
model must not take the others down).
"""

# ruff: noqa: B905  (zip(strict=) does not exist on Python 3.6, where this runs)

import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import cntk as C  # noqa: E402
import cntk_model_builder as cmb  # noqa: E402
import numpy as np  # noqa: E402
from cntk.layers import (  # noqa: E402
    Activation,
    AveragePooling,
    BatchNormalization,
    Convolution,
    Convolution2D,
    ConvolutionTranspose2D,
    Dense,
    Dropout,
    For,
    GlobalAveragePooling,
    MaxPooling,
    Sequential,
    default_options,
)

BATCH = cmb.BATCH
MODELS = []  # (name, builder)


def model(func):
    """Register a zoo builder; its name (minus ``zoo_``) names the files."""
    MODELS.append((func.__name__[4:], func))
    return func


class Spec:
    """A built model and how to feed it (``inputs``: name -> callable(rng) -> array)."""

    def __init__(self, function, about, inputs=None, v1=True, tolerance_note=""):
        self.function = function
        self.about = about
        self.inputs = inputs or {}
        self.v1 = v1
        self.tolerance_note = tolerance_note


# ------------------------------------------------------------------ inputs

def _rois(rng, n, width, height):
    """n boxes (x1, y1, x2, y2) in input pixels, inside the image, of plausible sizes."""
    boxes = []
    for _ in range(n):
        w = rng.uniform(0.1, 0.6) * width
        h = rng.uniform(0.1, 0.6) * height
        x1 = rng.uniform(0, width - w)
        y1 = rng.uniform(0, height - h)
        boxes.append([x1, y1, x1 + w, y1 + h])
    return np.asarray(boxes)


def _one_hot(rng, classes):
    return np.eye(classes)[rng.randint(0, classes)]


# ------------------------------------------------------------------ ResNets
# As in CNTK's Examples/Image/Classification/ResNet/Python/resnet_models.py.

def conv_bn(x, filter_size, num_filters, strides=(1, 1), bn_engine=False):
    c = Convolution(filter_size, num_filters, activation=None, pad=True, strides=strides,
                    bias=False)(x)
    return BatchNormalization(map_rank=1, normalization_time_constant=4096,
                              use_cntk_engine=bn_engine, disable_regularization=True)(c)


def conv_bn_relu(x, filter_size, num_filters, strides=(1, 1)):
    return C.relu(conv_bn(x, filter_size, num_filters, strides))


def resnet_basic(x, n):
    c1 = conv_bn_relu(x, (3, 3), n)
    c2 = conv_bn(c1, (3, 3), n)
    return C.relu(c2 + x)


def resnet_basic_inc(x, n, strides=(2, 2)):
    c1 = conv_bn_relu(x, (3, 3), n, strides)
    c2 = conv_bn(c1, (3, 3), n)
    s = conv_bn(x, (1, 1), n, strides)
    return C.relu(c2 + s)


def resnet_basic_stack(x, count, n):
    for _ in range(count):
        x = resnet_basic(x, n)
    return x


def resnet_bottleneck(x, out_n, inter_n):
    c1 = conv_bn_relu(x, (1, 1), inter_n)
    c2 = conv_bn_relu(c1, (3, 3), inter_n)
    c3 = conv_bn(c2, (1, 1), out_n)
    return C.relu(c3 + x)


def resnet_bottleneck_inc(x, out_n, inter_n, stride1x1, stride3x3):
    c1 = conv_bn_relu(x, (1, 1), inter_n, strides=stride1x1)
    c2 = conv_bn_relu(c1, (3, 3), inter_n, strides=stride3x3)
    c3 = conv_bn(c2, (1, 1), out_n)
    stride = tuple(np.multiply(stride1x1, stride3x3))
    s = conv_bn(x, (1, 1), out_n, strides=stride)
    return C.relu(c3 + s)


def resnet_bottleneck_stack(x, count, out_n, inter_n):
    for _ in range(count):
        x = resnet_bottleneck(x, out_n, inter_n)
    return x


@model
def zoo_resnet20_cifar():
    """CNTK's CIFAR-10 ResNet-20 (create_cifar10_model, 3 stacks), AveragePooling((8,8))."""
    x = C.input_variable((3, 32, 32), name="features")
    c_map = [16, 32, 64]
    h = conv_bn_relu(x, (3, 3), c_map[0])
    h = resnet_basic_stack(h, 3, c_map[0])
    h = resnet_basic_inc(h, c_map[1])
    h = resnet_basic_stack(h, 2, c_map[1])
    h = resnet_basic_inc(h, c_map[2])
    h = resnet_basic_stack(h, 2, c_map[2])
    pool = AveragePooling(filter_shape=(8, 8), name="final_avg_pooling")(h)
    z = Dense(10, init=C.normal(0.01))(pool)
    return Spec(z, "ResNet-20 CIFAR (CNTK examples), 32x32, AveragePooling((8,8)), Dense 10")


def _resnet_basic_imagenet(layers, name_prefix, softmax, gap):
    x = C.input_variable((3, 224, 224), name="data")
    h = conv_bn_relu(x, (7, 7), 64, strides=(2, 2))
    h = MaxPooling((3, 3), strides=(2, 2), pad=True)(h)
    h = resnet_basic_stack(h, layers[0], 64)
    for n, count in zip((128, 256, 512), layers[1:]):
        h = resnet_basic_inc(h, n)
        h = resnet_basic_stack(h, count - 1, n)
    if gap:
        h = GlobalAveragePooling(name="pool5")(h)
    else:
        h = AveragePooling(filter_shape=(7, 7), name="final_avg_pooling")(h)
    z = Dense(1000, name="fc1000")(h)
    if softmax:
        z = C.softmax(z, name="prob")
    return z


@model
def zoo_resnet18():
    """ResNet-18 (basic blocks), 224x224, GlobalAveragePooling, Dense 1000 + softmax."""
    return Spec(_resnet_basic_imagenet([2, 2, 2, 2], "r18", softmax=True, gap=True),
                "ResNet-18, basic blocks, 1x1 strided projections, GAP, softmax")


@model
def zoo_resnet34():
    """ResNet-34, AveragePooling((7,7)), Dense 1000, no softmax."""
    return Spec(_resnet_basic_imagenet([3, 4, 6, 3], "r34", softmax=False, gap=False),
                "ResNet-34, basic blocks, AveragePooling((7,7)), no softmax")


def _resnet_bottleneck_imagenet(layers, stride1x1, stride3x3, softmax, gap):
    x = C.input_variable((3, 224, 224), name="features")
    c_map = [64, 128, 256, 512, 1024, 2048]
    conv1 = conv_bn_relu(x, (7, 7), c_map[0], strides=(2, 2))
    pool1 = MaxPooling((3, 3), strides=(2, 2), pad=True)(conv1)
    h = resnet_bottleneck_inc(pool1, c_map[2], c_map[0], (1, 1), (1, 1))
    h = resnet_bottleneck_stack(h, layers[0], c_map[2], c_map[0])
    h = resnet_bottleneck_inc(h, c_map[3], c_map[1], stride1x1, stride3x3)
    h = resnet_bottleneck_stack(h, layers[1], c_map[3], c_map[1])
    h = resnet_bottleneck_inc(h, c_map[4], c_map[2], stride1x1, stride3x3)
    h = resnet_bottleneck_stack(h, layers[2], c_map[4], c_map[2])
    h = resnet_bottleneck_inc(h, c_map[5], c_map[3], stride1x1, stride3x3)
    h = resnet_bottleneck_stack(h, layers[3], c_map[5], c_map[3])
    if gap:
        h = GlobalAveragePooling()(h)
    else:
        h = AveragePooling(filter_shape=(7, 7), name="final_avg_pooling")(h)
    z = Dense(1000, init=C.normal(0.01))(h)
    return C.softmax(z) if softmax else z


@model
def zoo_resnet50():
    """ResNet-50 as in CNTK's examples: bottleneck, stride on the 1x1, AveragePooling((7,7))."""
    return Spec(_resnet_bottleneck_imagenet([2, 3, 5, 2], (2, 2), (1, 1), False, False),
                "ResNet-50 bottleneck (stride on 1x1), AveragePooling((7,7)), Dense 1000")


@model
def zoo_resnet50_s3x3_softmax():
    """ResNet-50 v1.5 flavour: stride on the 3x3, GlobalAveragePooling, softmax."""
    return Spec(_resnet_bottleneck_imagenet([2, 3, 5, 2], (1, 1), (2, 2), True, True),
                "ResNet-50 bottleneck (stride on 3x3), GAP, softmax")


# ------------------------------------------------------------------ AlexNet / VGG

def LocalResponseNormalization(k, n, alpha, beta, name=""):
    """The CNTK AlexNet example's LRN: a Python function of primitives over a placeholder."""
    x = C.placeholder(name="lrn_arg")
    x2 = C.square(x)
    x2s = C.reshape(x2, (1, C.InferredDimension), 0, 1)
    W = C.constant(alpha / (2 * n + 1), (1, 2 * n + 1, 1, 1), name="W")
    y = C.convolution(W, x2s)
    b = C.reshape(y, C.InferredDimension, 0, 2)
    den = C.exp(beta * C.log(k + b))
    return C.element_divide(x, den, name=name)


@model
def zoo_alexnet():
    """AlexNet as in CNTK's AlexNet_ImageNet example: 227x227, mean subtraction, primitive
    LRN, 11x11/4 valid conv, MaxPooling((3,3),(2,2)), Dropout, Dense 4096."""
    x = C.input_variable((3, 227, 227), name="features")
    mean_removed = C.minus(x, C.constant(114), name="mean_removed_input")
    with default_options(activation=None, pad=True, bias=True):
        z = Sequential([
            Convolution2D((11, 11), 96, init=C.normal(0.01), pad=False, strides=(4, 4),
                          name="conv1"),
            Activation(activation=C.relu, name="relu1"),
            LocalResponseNormalization(1.0, 2, 0.0001, 0.75, name="norm1"),
            MaxPooling((3, 3), (2, 2), name="pool1"),
            Convolution2D((5, 5), 192, init=C.normal(0.01), init_bias=0.1, name="conv2"),
            Activation(activation=C.relu, name="relu2"),
            LocalResponseNormalization(1.0, 2, 0.0001, 0.75, name="norm2"),
            MaxPooling((3, 3), (2, 2), name="pool2"),
            Convolution2D((3, 3), 384, init=C.normal(0.01), name="conv3"),
            Activation(activation=C.relu, name="relu3"),
            Convolution2D((3, 3), 384, init=C.normal(0.01), init_bias=0.1, name="conv4"),
            Activation(activation=C.relu, name="relu4"),
            Convolution2D((3, 3), 256, init=C.normal(0.01), init_bias=0.1, name="conv5"),
            Activation(activation=C.relu, name="relu5"),
            MaxPooling((3, 3), (2, 2), name="pool5"),
            Dense(4096, init=C.normal(0.005), init_bias=0.1, name="fc6"),
            Activation(activation=C.relu, name="relu6"),
            Dropout(0.5, name="drop6"),
            Dense(4096, init=C.normal(0.005), init_bias=0.1, name="fc7"),
            Activation(activation=C.relu, name="relu7"),
            Dropout(0.5, name="drop7"),
            Dense(1000, init=C.normal(0.01), name="fc8"),
        ])(mean_removed)
    return Spec(z, "AlexNet (CNTK example): primitive LRN, 11x11/4, Dropout, Dense 4096",
                inputs={"features": lambda rng: rng.uniform(0, 255, (BATCH, 3, 227, 227))})


@model
def zoo_alexnet_lrn_op():
    """AlexNet written with C.local_response_normalization, 224x224, padded 11x11/4, softmax."""
    x = C.input_variable((3, 224, 224), name="image")
    h = Convolution((11, 11), 64, strides=4, pad=True, activation=C.relu, name="conv1")(x)
    h = C.local_response_normalization(h, 2, 2.0, 1e-4, 0.75, name="lrn1")
    h = MaxPooling((3, 3), strides=2, name="pool1")(h)
    h = Convolution((5, 5), 192, pad=True, activation=C.relu, name="conv2")(h)
    h = C.local_response_normalization(h, 2, 2.0, 1e-4, 0.75, name="lrn2")
    h = MaxPooling((3, 3), strides=2, name="pool2")(h)
    h = Convolution((3, 3), 384, pad=True, activation=C.relu, name="conv3")(h)
    h = Convolution((3, 3), 256, pad=True, activation=C.relu, name="conv4")(h)
    h = Convolution((3, 3), 256, pad=True, activation=C.relu, name="conv5")(h)
    h = MaxPooling((3, 3), strides=2, name="pool5")(h)
    h = Dropout(0.5, name="drop6")(h)
    h = Dense(4096, activation=C.relu, name="fc6")(h)
    h = Dropout(0.5, name="drop7")(h)
    h = Dense(4096, activation=C.relu, name="fc7")(h)
    z = Dense(1000, activation=C.softmax, name="fc8")(h)
    return Spec(z, "AlexNet with C.local_response_normalization, Dense(activation=softmax)")


@model
def zoo_vgg16():
    """VGG-16 as in CNTK's VGG example: For() over conv/relu pairs, pad=True, 224x224."""
    x = C.input_variable((3, 224, 224), name="data")
    cfg = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]
    # For() calls its lambda at once: the layers must be made inside default_options
    with default_options(activation=None, pad=True, bias=True):
        blocks = []
        for b, (count, n) in enumerate(cfg):
            blocks.append(For(range(count), lambda i, b=b, n=n: [
                Convolution2D((3, 3), n, name=f"conv{b + 1}_{i + 1}"),
                Activation(activation=C.relu, name=f"relu{b + 1}_{i + 1}"),
            ]))
            blocks.append(MaxPooling((2, 2), (2, 2), name=f"pool{b + 1}"))
        z = Sequential([*blocks,
            Dense(4096, name="fc6"), Activation(activation=C.relu, name="relu6"),
            Dropout(0.5, name="drop6"),
            Dense(4096, name="fc7"), Activation(activation=C.relu, name="relu7"),
            Dropout(0.5, name="drop7"),
            Dense(1000, name="fc8"),
        ])(x)
    return Spec(z, "VGG-16 (CNTK example style), For/Sequential/default_options")


# ------------------------------------------------------------------ Inception-v3
# After CNTK's Examples/Image/Classification/GoogLeNet/InceptionV3/Python/inception_v3.py.

def conv_bn_relu_layer(x, num_filters, filter_size, strides=(1, 1), pad=True):
    h = Convolution(filter_size, num_filters, strides=strides, pad=pad, bias=False,
                    activation=None)(x)
    h = BatchNormalization(map_rank=1, normalization_time_constant=4096,
                           use_cntk_engine=False)(h)
    return C.relu(h)


def inception_block_1(x, n1, n5_1, n5, n3_1, n3, npool):
    b1 = conv_bn_relu_layer(x, n1, (1, 1))
    b5 = conv_bn_relu_layer(conv_bn_relu_layer(x, n5_1, (1, 1)), n5, (5, 5))
    b3 = conv_bn_relu_layer(x, n3_1, (1, 1))
    b3 = conv_bn_relu_layer(conv_bn_relu_layer(b3, n3, (3, 3)), n3, (3, 3))
    bp = AveragePooling((3, 3), strides=(1, 1), pad=True)(x)
    bp = conv_bn_relu_layer(bp, npool, (1, 1))
    return C.splice(b1, b5, b3, bp, axis=0)


def inception_block_2(x, n3, n3dbl_1, n3dbl):
    b3 = conv_bn_relu_layer(x, n3, (3, 3), (2, 2), pad=False)
    bd = conv_bn_relu_layer(x, n3dbl_1, (1, 1))
    bd = conv_bn_relu_layer(bd, n3dbl, (3, 3))
    bd = conv_bn_relu_layer(bd, n3dbl, (3, 3), (2, 2), pad=False)
    bp = MaxPooling((3, 3), strides=(2, 2), pad=False)(x)
    return C.splice(b3, bd, bp, axis=0)


def inception_block_3(x, n1, n7_1, n7, n7dbl_1, n7dbl, npool):
    b1 = conv_bn_relu_layer(x, n1, (1, 1))
    b7 = conv_bn_relu_layer(x, n7_1, (1, 1))
    b7 = conv_bn_relu_layer(b7, n7_1, (1, 7))
    b7 = conv_bn_relu_layer(b7, n7, (7, 1))
    bd = conv_bn_relu_layer(x, n7dbl_1, (1, 1))
    bd = conv_bn_relu_layer(bd, n7dbl_1, (7, 1))
    bd = conv_bn_relu_layer(bd, n7dbl_1, (1, 7))
    bd = conv_bn_relu_layer(bd, n7dbl_1, (7, 1))
    bd = conv_bn_relu_layer(bd, n7dbl, (1, 7))
    bp = AveragePooling((3, 3), strides=(1, 1), pad=True)(x)
    bp = conv_bn_relu_layer(bp, npool, (1, 1))
    return C.splice(b1, b7, bd, bp, axis=0)


def inception_block_4(x, n3_1, n3, n7_1, n7):
    b3 = conv_bn_relu_layer(x, n3_1, (1, 1))
    b3 = conv_bn_relu_layer(b3, n3, (3, 3), (2, 2), pad=False)
    b7 = conv_bn_relu_layer(x, n7_1, (1, 1))
    b7 = conv_bn_relu_layer(b7, n7_1, (1, 7))
    b7 = conv_bn_relu_layer(b7, n7_1, (7, 1))
    b7 = conv_bn_relu_layer(b7, n7, (3, 3), (2, 2), pad=False)
    bp = MaxPooling((3, 3), strides=(2, 2), pad=False)(x)
    return C.splice(b3, b7, bp, axis=0)


def inception_block_5(x, n1, n3_1, n3, n3dbl_1, n3dbl, npool):
    b1 = conv_bn_relu_layer(x, n1, (1, 1))
    b3 = conv_bn_relu_layer(x, n3_1, (1, 1))
    b3 = C.splice(conv_bn_relu_layer(b3, n3, (1, 3)), conv_bn_relu_layer(b3, n3, (3, 1)),
                  axis=0)
    bd = conv_bn_relu_layer(x, n3dbl_1, (1, 1))
    bd = conv_bn_relu_layer(bd, n3dbl, (3, 3))
    bd = C.splice(conv_bn_relu_layer(bd, n3dbl, (1, 3)), conv_bn_relu_layer(bd, n3dbl, (3, 1)),
                  axis=0)
    bp = AveragePooling((3, 3), strides=(1, 1), pad=True)(x)
    bp = conv_bn_relu_layer(bp, npool, (1, 1))
    return C.splice(b1, b3, bd, bp, axis=0)


@model
def zoo_inception_v3():
    """Inception-v3 (CNTK example structure) at 299x299 with the auxiliary head: splice of
    1x1/5x5/3x3/pool branches, factorized 1x7/7x1 and 1x3/3x1 kernels, two outputs."""
    x = C.input_variable((3, 299, 299), name="features")
    h = conv_bn_relu_layer(x, 32, (3, 3), (2, 2), pad=False)
    h = conv_bn_relu_layer(h, 32, (3, 3), pad=False)
    h = conv_bn_relu_layer(h, 64, (3, 3))
    h = MaxPooling((3, 3), strides=(2, 2), pad=False)(h)
    h = conv_bn_relu_layer(h, 80, (1, 1), pad=False)
    h = conv_bn_relu_layer(h, 192, (3, 3), pad=False)
    h = MaxPooling((3, 3), strides=(2, 2), pad=False)(h)
    h = inception_block_1(h, 64, 48, 64, 64, 96, 32)
    h = inception_block_1(h, 64, 48, 64, 64, 96, 64)
    h = inception_block_1(h, 64, 48, 64, 64, 96, 64)
    h = inception_block_2(h, 384, 64, 96)
    h = inception_block_3(h, 192, 128, 192, 128, 192, 192)
    h = inception_block_3(h, 192, 160, 192, 160, 192, 192)
    h = inception_block_3(h, 192, 192, 192, 192, 192, 192)
    # auxiliary head
    a = AveragePooling((5, 5), strides=(3, 3), pad=False)(h)
    a = conv_bn_relu_layer(a, 128, (1, 1))
    a = conv_bn_relu_layer(a, 768, (5, 5), pad=False)  # 5x5 -> 1x1
    aux = Dense(1000, name="aux_logits")(a)
    h = inception_block_4(h, 192, 320, 192, 192)
    h = inception_block_5(h, 320, 384, 384, 448, 384, 192)
    h = inception_block_5(h, 320, 384, 384, 448, 384, 192)
    h = AveragePooling((8, 8), name="pool_8x8")(h)
    h = Dropout(0.8)(h)
    z = Dense(1000, name="logits")(h)
    return Spec(C.combine([z, aux]), "Inception-v3, 299x299, splice, 1x7/7x1, aux head, "
                "combine of 2 outputs")


# ------------------------------------------------------------------ Fast R-CNN

def _fast_rcnn(num_rois, free_rois=False, with_loss=False):
    """Fast R-CNN (CNTK's FastRCNN example shape): VGG-like trunk at 1/16, ROI pooling 7x7,
    fc6/fc7, class scores (softmax over classes, axis=1) and box regression."""
    size, classes = 480, 21
    x = C.input_variable((3, size, size), name="features")
    rois_shape = (C.FreeDimension, 4) if free_rois else (num_rois, 4)
    rois = C.input_variable(rois_shape, name="roi_proposals")
    norm = x - C.Constant([[[114.0]]], name="norm_const")
    with default_options(activation=C.relu, pad=True):
        trunk = Sequential([
            For(range(2), lambda: Convolution((3, 3), 32)), MaxPooling((2, 2), (2, 2)),
            For(range(2), lambda: Convolution((3, 3), 64)), MaxPooling((2, 2), (2, 2)),
            For(range(3), lambda: Convolution((3, 3), 96)), MaxPooling((2, 2), (2, 2)),
            For(range(3), lambda: Convolution((3, 3), 128)), MaxPooling((2, 2), (2, 2)),
            For(range(3), lambda: Convolution((3, 3), 128)),
        ], name="trunk")
    conv = trunk(norm)
    roi_out = C.roipooling(conv, rois, C.MAX_POOLING, (7, 7), spatial_scale=1 / 16.0,
                           name="roi_pool")
    fc = Sequential([
        # input_rank=3: what the example's cloned pretrained fc6 does (W is (C, 7, 7, 1024))
        Dense(1024, activation=C.relu, input_rank=3, name="fc6"), Dropout(0.5),
        Dense(1024, activation=C.relu, map_rank=1, name="fc7"), Dropout(0.5),
    ])
    fc_out = fc(roi_out)
    W = C.parameter(shape=(1024, classes), init=C.normal(0.01), name="cls_W")
    b = C.parameter(shape=classes, init=0, name="cls_b")
    cls_score = C.plus(C.times(fc_out, W), b, name="cls_score")
    W2 = C.parameter(shape=(1024, classes * 4), init=C.normal(0.001), name="bbox_W")
    b2 = C.parameter(shape=classes * 4, init=0, name="bbox_b")
    bbox_pred = C.plus(C.times(fc_out, W2), b2, name="bbox_regr")
    cls_pred = C.softmax(cls_score, axis=1, name="cls_pred")
    n = 5 if free_rois else num_rois
    inputs = {
        "roi_proposals": lambda rng: np.stack([_rois(rng, n, size, size)
                                               for _ in range(BATCH)]),
    }
    if with_loss:
        labels = C.input_variable((num_rois, classes), name="roi_labels")
        ce = C.cross_entropy_with_softmax(cls_score, labels, axis=1, name="cls_loss")
        err = C.classification_error(cls_score, labels, axis=1, name="cls_error")
        inputs["roi_labels"] = lambda rng: np.stack(
            [np.stack([_one_hot(rng, classes) for _ in range(num_rois)])
             for _ in range(BATCH)])
        return C.combine([cls_pred, bbox_pred, ce, err]), inputs
    return C.combine([cls_pred, bbox_pred]), inputs


@model
def zoo_fast_rcnn():
    """Fast R-CNN, 480x480, 64 ROIs, ROI pooling 7x7 at 1/16, cls softmax + bbox heads."""
    f, inputs = _fast_rcnn(64)
    return Spec(f, "Fast R-CNN: VGG-like trunk, roipooling 7x7 @1/16, two heads",
                inputs=inputs)


@model
def zoo_fast_rcnn_free_rois():
    """Fast R-CNN whose ROI input has a free (dynamic) count: CNTK cannot save it as v1."""
    f, inputs = _fast_rcnn(0, free_rois=True)
    return Spec(f, "Fast R-CNN with (FreeDimension, 4) ROIs", inputs=inputs, v1=False)


@model
def zoo_fast_rcnn_with_loss():
    """Fast R-CNN saved with its per-ROI criterion (cross_entropy/classification_error axis=1)."""
    f, inputs = _fast_rcnn(32, with_loss=True)
    return Spec(f, "Fast R-CNN + cross_entropy_with_softmax(axis=1) + classification_error",
                inputs=inputs)


# ------------------------------------------------------------------ MLPs

@model
def zoo_mlp_sequential():
    """MNIST MLP as in CNTK tutorial 103C: default_options(activation=relu) + For + Sequential,
    input scaled by 1/255."""
    x = C.input_variable(784, name="features")
    with default_options(init=C.glorot_uniform(), activation=C.relu):
        z = Sequential([For(range(2), lambda i: Dense(400, name=f"hidden{i}")),
                        Dense(10, activation=None, name="out")])(x / 255.0)
    return Spec(z, "MLP: default_options + For + Sequential, x/255",
                inputs={"features": lambda rng: rng.uniform(0, 255, (BATCH, 784))})


@model
def zoo_mlp_functional():
    """MLP with Dense(activation=...) calls chained by hand, sigmoid/tanh, softmax output."""
    x = C.input_variable(64, name="x")
    h = Dense(128, activation=C.sigmoid)(x)
    h = Dense(128, activation=C.tanh)(h)
    h = Dropout(0.2)(h)
    h = Dense(32, activation=C.leaky_relu)(h)
    z = C.softmax(Dense(8)(h), name="prob")
    return Spec(z, "MLP: chained Dense(activation=sigmoid/tanh/leaky_relu), softmax")


@model
def zoo_mlp_ops():
    """MLP from C.times/C.plus with explicit parameters (CNTK tutorial 102 style)."""
    x = C.input_variable(30, name="input")
    h = x
    dims = [30, 50, 50, 3]
    for i in range(3):
        W = C.parameter((dims[i], dims[i + 1]), init=C.glorot_uniform(), name=f"W{i}")
        b = C.parameter(dims[i + 1], init=0, name=f"b{i}")
        h = C.times(h, W) + b
        if i < 2:
            h = C.relu(h)
    return Spec(C.softmax(h, name="prob"), "MLP from C.times/C.plus/C.parameter")


@model
def zoo_mlp_float64():
    """A float64 MLP (default_options(dtype=np.float64))."""
    x = C.input_variable(20, dtype=np.float64, name="x")
    with default_options(dtype=np.float64):
        z = Sequential([Dense(64, activation=C.relu), Dense(64, activation=C.tanh),
                        Dense(5)])(x)
    return Spec(z, "float64 MLP")


# ------------------------------------------------------------------ functional / ops

@model
def zoo_ops_functional():
    """A CNN written in plain cntk.ops: convolution with explicit W, C.plus with a (C,1,1)
    bias, element_times, reshape, splice, slice, transpose, softmax(axis=...)."""
    x = C.input_variable((3, 28, 28), name="img")
    W1 = C.parameter((16, 3, 5, 5), init=C.he_normal(), name="W1")
    b1 = C.parameter((16, 1, 1), init=0, name="b1")
    h = C.relu(C.plus(C.convolution(W1, x, strides=(1, 1), auto_padding=[False, True, True]),
                      b1))
    g = C.parameter((16, 1, 1), init=1, name="gate")
    h = C.element_times(h, C.sigmoid(g))
    h = C.pooling(h, C.MAX_POOLING, (2, 2), strides=(2, 2))               # 16x14x14
    W2 = C.parameter((8, 16, 3, 3), init=C.he_normal(), name="W2")
    h2 = C.convolution(W2, h, auto_padding=[False, False, False])           # 8x12x12
    top = C.slice(h2, 0, 0, 4)
    bottom = C.slice(h2, 0, 4, 8)
    h = C.splice(C.tanh(top), C.relu(bottom), top * bottom, axis=0)       # 12x12x12
    h = C.slice(h, [1, 2], [1, 2], [11, 10])                               # 12x10x8
    h = C.transpose(h, (0, 2, 1))                                          # 12x8x10
    h = C.reshape(h, (12, 80))
    W3 = C.parameter((80, 6), init=C.glorot_uniform(), name="W3")
    h = C.times(h, W3)                                                     # 12x6
    p = C.softmax(h, axis=1, name="row_softmax")
    q = C.reduce_mean(p, axis=0)
    z = C.reshape(q, 6, name="out")
    return Spec(z, "plain ops: convolution(W), plus, element_times, slice, splice, "
                "transpose, reshape, times, softmax(axis=1), reduce_mean")


@model
def zoo_softmax_axes():
    """softmax over axis 0 of a CHW map (per-pixel class distribution), and log_softmax."""
    x = C.input_variable((5, 7, 9), name="logits")
    a = C.softmax(x, axis=0, name="sm_c")
    b = C.log_softmax(x, axis=2, name="lsm_w")
    c = C.softmax(C.reshape(x, (5, 63)), axis=-1, name="sm_last")
    return Spec(C.combine([a, b, c]), "softmax(axis=0), log_softmax(axis=2), softmax(axis=-1)")


# ------------------------------------------------------------------ padding edge cases

@model
def zoo_pool_pad_edges():
    """MaxPooling(pad=True) on even and odd sizes, strided even kernels with auto padding."""
    x = C.input_variable((4, 31, 30), name="x")
    a = MaxPooling((3, 3), strides=(2, 2), pad=True, name="mp3s2")(x)        # odd/even
    b = MaxPooling((2, 2), strides=(2, 2), pad=True, name="mp2s2")(x)
    c = AveragePooling((3, 3), strides=(2, 2), pad=True, name="ap3s2")(x)
    d = AveragePooling((2, 2), strides=(1, 1), pad=True, name="ap2s1")(x)
    e = Convolution((4, 4), 6, strides=(2, 2), pad=True, name="conv4s2")(x)
    f = Convolution((2, 2), 6, strides=(2, 2), pad=True, name="conv2s2")(x)
    g = Convolution((6, 6), 6, strides=(3, 3), pad=True, name="conv6s3")(x)
    h = MaxPooling((4, 4), strides=(3, 3), pad=True, name="mp4s3")(x)
    outs = [a, b, c, d, e, f, g, h]
    return Spec(C.combine(outs), "pad=True pooling/conv on 31x30: odd/even sizes, "
                "even kernels, strides 2/3")


@model
def zoo_mnist_cnn():
    """CNTK tutorial 103D: Convolution2D((5,5), strides=(2,2), pad=True) on 28x28, x/255."""
    x = C.input_variable((1, 28, 28), name="features")
    with default_options(init=C.glorot_uniform(), activation=C.relu):
        h = C.element_times(1.0 / 255.0, x)
        h = Convolution2D((5, 5), 8, strides=(2, 2), pad=True, name="first_conv")(h)
        h = Convolution2D((5, 5), 16, strides=(2, 2), pad=True, name="second_conv")(h)
        z = Dense(10, activation=None, name="classify")(h)
    return Spec(z, "MNIST CNN (tutorial 103D), strided 5x5 pad",
                inputs={"features": lambda rng: rng.uniform(0, 255, (BATCH, 1, 28, 28))})


@model
def zoo_cifar_convnet():
    """CNTK tutorial 201 ConvNet: For over Convolution/MaxPooling((3,3),(2,2)), Dense 64."""
    x = C.input_variable((3, 32, 32), name="features")
    with default_options(activation=C.relu, pad=True):
        z = Sequential([
            For(range(3), lambda i: [
                Convolution((5, 5), [32, 32, 64][i], init=C.glorot_uniform(), pad=True),
                MaxPooling((3, 3), strides=(2, 2)),
            ]),
            Dense(64, init=C.glorot_uniform()),
            Dense(10, activation=None, init=C.glorot_uniform()),
        ])(x / 256.0)
    return Spec(z, "CIFAR ConvNet (tutorial 201): 5x5 convs, 3x3/2 valid max pools",
                inputs={"features": lambda rng: rng.uniform(0, 255, (BATCH, 3, 32, 32))})


@model
def zoo_cifar_vgg_bn():
    """CIFAR VGG-style with BatchNormalization() default (map_rank=0, per element) and
    map_rank=1, Dropout, pad=True max pooling, Dense with activation."""
    x = C.input_variable((3, 32, 32), name="features")
    with default_options(activation=None, pad=True, bias=False):
        h = x
        for i, n in enumerate((64, 128, 256)):
            h = Convolution((3, 3), n, name=f"conv{i}_a")(h)
            h = BatchNormalization(map_rank=1, name=f"bn{i}_a")(h)
            h = C.relu(h)
            h = Convolution((3, 3), n, name=f"conv{i}_b")(h)
            h = BatchNormalization(name=f"bn{i}_b")(h)  # per-element statistics
            h = C.relu(h)
            h = MaxPooling((3, 3), strides=(2, 2), pad=True)(h)
        h = Dense(512, activation=C.relu, bias=True, name="fc1")(h)
        h = BatchNormalization(name="bn_fc1")(h)
        h = Dropout(0.5)(h)
        z = Dense(10, bias=True, name="fc2")(h)
    return Spec(z, "CIFAR VGG-BN: BatchNormalization default and map_rank=1, pad=True pools")


@model
def zoo_dcgan_generator():
    """CNTK tutorial 206B DCGAN generator: Dense -> BN(map_rank=1) -> Dense([128,7,7]) ->
    ConvolutionTranspose2D((5,5), strides 2, pad, output_shape) x2 -> reshape."""
    z_in = C.input_variable(100, name="noise")
    with default_options(init=C.normal(scale=0.02)):
        h0 = Dense(1024, activation=None)(z_in)
        h0 = C.relu(BatchNormalization(map_rank=1, use_cntk_engine=False)(h0))
        h1 = Dense([128, 7, 7], activation=None)(h0)
        h1 = C.relu(BatchNormalization(map_rank=1, use_cntk_engine=False)(h1))
        h2 = ConvolutionTranspose2D((5, 5), num_filters=128, strides=(2, 2), pad=True,
                                    output_shape=(14, 14), activation=None)(h1)
        h2 = C.relu(BatchNormalization(map_rank=1, use_cntk_engine=False)(h2))
        h3 = ConvolutionTranspose2D((5, 5), num_filters=1, strides=(2, 2), pad=True,
                                    output_shape=(28, 28), activation=C.sigmoid)(h2)
    return Spec(C.reshape(h3, 28 * 28, name="image"),
                "DCGAN generator: Dense([C,H,W]), BN map_rank=1 on vectors, "
                "ConvolutionTranspose2D with output_shape")


@model
def zoo_dcgan_discriminator():
    """CNTK tutorial 206B discriminator: strided 5x5 convs with leaky_relu and BN."""
    x = C.input_variable(784, name="image")
    with default_options(init=C.normal(scale=0.02)):
        h = C.reshape(x, (1, 28, 28))
        h0 = Convolution2D((5, 5), 1, strides=(2, 2), pad=True, activation=C.leaky_relu)(h)
        h1 = Convolution2D((5, 5), 64, strides=(2, 2), pad=True, activation=None)(h0)
        h1 = C.leaky_relu(BatchNormalization(map_rank=1, use_cntk_engine=False)(h1))
        h2 = Dense(1024, activation=None)(h1)
        h2 = C.leaky_relu(BatchNormalization(map_rank=1, use_cntk_engine=False)(h2))
        h3 = Dense(1, activation=C.sigmoid)(h2)
    return Spec(h3, "DCGAN discriminator: reshape, strided convs, leaky_relu, BN")


@model
def zoo_autoencoder_deconv():
    """Conv autoencoder: Convolution stride 2 then ConvolutionTranspose without output_shape
    (auto padding), odd and even kernels."""
    x = C.input_variable((1, 28, 28), name="x")
    with default_options(activation=C.relu, pad=True):
        h = Convolution((3, 3), 16, strides=2)(x)       # 14
        h = Convolution((3, 3), 32, strides=2)(h)       # 7
        h = C.layers.ConvolutionTranspose((3, 3), 16, strides=2, pad=True,
                                          output_shape=(14, 14))(h)
        h = C.layers.ConvolutionTranspose((4, 4), 8, strides=2, pad=True)(h)
        z = C.layers.ConvolutionTranspose((3, 3), 1, pad=True, activation=C.sigmoid)(h)
    return Spec(z, "conv autoencoder: ConvolutionTranspose with/without output_shape")


# ------------------------------------------------------------------ criteria / combine

@model
def zoo_resnet20_with_criteria():
    """ResNet-20 saved as the trainer sees it: combine(z, ce, pe, top-5 pe); labels declared
    before features."""
    labels = C.input_variable(10, name="labels")
    x = C.input_variable((3, 32, 32), name="features")
    h = conv_bn_relu(x - C.constant(128.0), (3, 3), 16)
    h = resnet_basic_stack(h, 3, 16)
    h = resnet_basic_inc(h, 32)
    h = resnet_basic_stack(h, 2, 32)
    h = resnet_basic_inc(h, 64)
    h = resnet_basic_stack(h, 2, 64)
    h = AveragePooling(filter_shape=(8, 8))(h)
    z = Dense(10, name="z")(h)
    ce = C.cross_entropy_with_softmax(z, labels, name="ce")
    pe = C.classification_error(z, labels, name="pe")
    pe5 = C.classification_error(z, labels, topN=5, name="pe5")
    return Spec(C.combine([z, ce, pe, pe5]), "ResNet-20 + ce + pe + top-5 pe, labels first",
                inputs={"labels": lambda rng: np.stack([_one_hot(rng, 10)
                                                        for _ in range(BATCH)]),
                        "features": lambda rng: rng.uniform(0, 255, (BATCH, 3, 32, 32))})


@model
def zoo_convnet_criteria_only():
    """A CIFAR ConvNet saved as what the trainer was given: C.combine([loss, metric]) only."""
    x = C.input_variable((3, 32, 32), name="features")
    y = C.input_variable(10, name="labels")
    with default_options(activation=C.relu, pad=True):
        z = Sequential([Convolution((3, 3), 32), MaxPooling((2, 2), (2, 2)),
                        Convolution((3, 3), 64), MaxPooling((2, 2), (2, 2)),
                        Dense(128), Dense(10, activation=None)])(x)
    loss = C.cross_entropy_with_softmax(z, y)
    metric = C.classification_error(z, y)
    return Spec(C.combine([loss, metric]), "ConvNet saved as combine([loss, metric]) only",
                inputs={"labels": lambda rng: np.stack([_one_hot(rng, 10)
                                                        for _ in range(BATCH)])})


@model
def zoo_mlp_with_loss_squared():
    """An MLP saved with squared_error and a softmax output: C.combine of prediction + loss."""
    x = C.input_variable(16, name="x")
    t = C.input_variable(4, name="target")
    z = Sequential([Dense(32, activation=C.relu), Dense(4)])(x)
    loss = C.squared_error(z, t, name="mse")
    return Spec(C.combine([z, loss]), "MLP + squared_error in a combine")


@model
def zoo_multi_output():
    """C.combine of several outputs at different depths of a small CNN (features + logits)."""
    x = C.input_variable((3, 64, 64), name="image")
    with default_options(activation=C.relu, pad=True):
        c1 = Convolution((3, 3), 16, name="c1")(x)
        p1 = MaxPooling((2, 2), (2, 2), name="p1")(c1)
        c2 = Convolution((3, 3), 32, name="c2")(p1)
        p2 = MaxPooling((2, 2), (2, 2), name="p2")(c2)
        g = GlobalAveragePooling(name="gap")(p2)
        logits = Dense(7, activation=None, name="logits")(g)
        emb = Dense(16, activation=None, name="embedding")(g)
    prob = C.softmax(logits, name="prob")
    return Spec(C.combine([prob, logits, emb, p1]), "combine of 4 outputs, one intermediate")


@model
def zoo_resnet20_float64():
    """ResNet-20 CIFAR in float64."""
    x = C.input_variable((3, 32, 32), dtype=np.float64, name="features")
    with default_options(dtype=np.float64):
        h = conv_bn_relu(x, (3, 3), 16)
        h = resnet_basic_stack(h, 3, 16)
        h = resnet_basic_inc(h, 32)
        h = resnet_basic_stack(h, 2, 32)
        h = resnet_basic_inc(h, 64)
        h = resnet_basic_stack(h, 2, 64)
        h = AveragePooling(filter_shape=(8, 8))(h)
        z = Dense(10)(h)
    return Spec(z, "ResNet-20 in float64")


# ------------------------------------------------------------------ driver

def make_inputs(function, spec, rng):
    arrays = []
    for a in function.arguments:
        dt = np.dtype(a.dtype)
        if a.name in spec.inputs:
            arrays.append(np.asarray(spec.inputs[a.name](rng), dtype=dt))
            continue
        shape = (BATCH, *a.shape)
        arrays.append(np.asarray(rng.normal(0.0, 1.0, shape), dtype=dt))
    return arrays


def build(name, func, out_dir):
    rng = cmb.seeded_rng(name)
    t0 = time.time()
    spec = func()
    f = spec.function
    cmb.randomize(f, rng, 1.0)
    v2 = os.path.join(out_dir, name + ".v2.model")
    reloaded = cmb.save_v2(f, v2)
    inputs = make_inputs(reloaded, spec, rng)
    outputs = cmb.evaluate(reloaded, dict(zip(reloaded.arguments, inputs)))
    cmb.require_finite(name, outputs)

    def check(path):
        legacy = C.load_model(path)
        by_name = {a.name: x for a, x in zip(reloaded.arguments, inputs)}
        got = cmb.evaluate(legacy, {a: by_name[a.name] for a in legacy.arguments})
        if sorted(g.size for g in got) != sorted(o.size for o in outputs):
            raise RuntimeError("legacy outputs differ in size")

    if spec.v1:
        _, v1_error = cmb.save_legacy(f, os.path.join(out_dir, name + ".v1.model"), check)
    else:
        v1_error = "not saved (CNTK cannot write this model in the legacy format)"
    formats = ["v2"] if v1_error else ["v2", "v1"]
    cmb.write_io(os.path.join(out_dir, name + ".io.npz"), inputs, outputs, reloaded)
    entry = {
        "name": name,
        "about": spec.about,
        "formats": formats,
        "inputs": [{"name": a.name, "shape": list(a.shape), "dtype": np.dtype(a.dtype).name}
                   for a in reloaded.arguments],
        "outputs": [{"name": o.name or o.uid, "shape": list(o.shape)}
                    for o in reloaded.outputs],
        "bytes_v2": os.path.getsize(v2),
        "build_seconds": round(time.time() - t0, 1),
    }
    if v1_error:
        entry["v1_error"] = v1_error
    return entry


def _describe(entry):
    return "+".join(entry["formats"]) + "  ({}s)".format(entry["build_seconds"])


def main(argv=None):
    return cmb.main(argv, doc=__doc__, script=__file__, builders=MODELS, build=build,
                    default_out=os.path.expanduser("~/.cache/mmconv/zoo"), noun="model",
                    manifest_key="models", describe=_describe)


if __name__ == "__main__":
    sys.exit(main())
