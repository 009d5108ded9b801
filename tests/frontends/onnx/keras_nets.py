"""Small Keras models converted to ONNX by the real tf2onnx at test time (channels-last
graphs full of NHWC<->NCHW Transposes, "same" padding, fused BatchNorm)."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _calibrate_bn(model, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    """Give every BatchNormalization layer statistics of real activations: moving mean/var
    set from the layer's input on random data (so folding is tested with real numbers)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            probe = keras.Model(model.inputs, layer.input)
            acts = np.asarray(probe(rng.standard_normal((8, *shape)).astype("float32")))
            axes = tuple(range(acts.ndim - 1))
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, acts.mean(axes), acts.var(axes) + 0.1])


def small_cnn(seed: int = 0, upsample: bool = True):
    """Conv2D same/valid with strides, BN, ReLU/ReLU6, depthwise conv, max/avg pooling with
    same padding, zero padding, upsampling (tf2onnx writes Keras 3's UpSampling2D as
    channels-last Unsqueeze/Tile/Reshape, which keeps a Transpose pair around it),
    concatenate, global pooling, Dense softmax."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    x = inp = keras.Input((15, 15, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="conv1")(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(max_value=6.0, name="relu6")(x)
    y = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = layers.Activation("swish", name="swish")(y)
    x = layers.Concatenate(name="cat")([x, y])
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    x = layers.ZeroPadding2D(((1, 0), (0, 1)), name="zpad")(x)
    x = layers.Conv2D(8, 2, padding="valid", activation="relu", name="conv2")(x)
    if upsample:
        x = layers.UpSampling2D(2, name="up")(x)
    x = layers.AveragePooling2D(2, name="avg")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(5, activation="softmax", name="fc")(x)
    model = keras.Model(inp, out, name="small_cnn")
    _calibrate_bn(model, (15, 15, 3), np.random.default_rng(seed))
    return model


def to_onnx(model, path: Path, opset: int = 13) -> Path:
    """tf2onnx.convert.from_keras with a dynamic batch axis."""
    import tensorflow as tf
    import tf2onnx

    spec = tuple(tf.TensorSpec((None, *m.shape[1:]), tf.float32, name=m.name)
                 for m in model.inputs)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset,
                                   output_path=str(path))
    return path
