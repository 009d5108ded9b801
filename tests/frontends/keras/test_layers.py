"""Every layer family of the Keras frontend against Keras' own output, through each target."""

from __future__ import annotations

from pathlib import Path

from tests.frontends.keras._common import check, keras, randomize

L = keras.layers
ALL_TARGETS = ("onnx", "pytorch", "keras")


def conv_model() -> keras.Model:
    """Convolutions, BN, "same"/"valid", depthwise/separable/transposed, padding,
    cropping, pooling, Flatten -> Dense (the row permutation)."""
    inp = keras.Input((11, 10, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", name="conv_s2")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(max_value=6.0, name="relu6")(x)
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    x = L.SeparableConv2D(6, 3, padding="valid", activation="relu", name="sep")(x)
    x = L.Conv2DTranspose(5, 3, strides=2, padding="same", name="deconv")(x)
    x = L.ZeroPadding2D(((1, 2), (0, 1)), name="zpad")(x)
    x = L.Cropping2D(((0, 1), (2, 0)), name="crop")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same", name="maxpool")(x)
    x = L.AveragePooling2D(3, strides=1, padding="same", name="avgpool")(x)
    x = L.Conv2D(4, 2, dilation_rate=2, use_bias=False, name="dilated")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(7, activation="softmax", name="scores")(x)
    return randomize(keras.Model(inp, x, name="convs"))


def test_conv_families(tmp_path: Path) -> None:
    check(conv_model(), tmp_path, ALL_TARGETS, ("keras", "h5"))
