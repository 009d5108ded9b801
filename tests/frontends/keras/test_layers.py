"""Every layer family of the Keras frontend against Keras' own output, through each target."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.frontends.keras._common import check, keras, randomize

L = keras.layers
ALL_TARGETS = ("onnx", "pytorch", "keras")


def conv_model(dilated: bool = True) -> keras.Model:
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
    x = L.Conv2D(4, 2, dilation_rate=2 if dilated else 1, use_bias=False, name="dilated")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(7, activation="softmax", name="scores")(x)
    return randomize(keras.Model(inp, x, name="convs"))


def test_conv_families(tmp_path: Path) -> None:
    check(conv_model(), tmp_path, ALL_TARGETS, ("keras", "h5"))


def test_keras_to_keras_has_zero_transposes(tmp_path: Path) -> None:
    """The IR keeps one Transpose after the NHWC input; the Keras emitter cancels it
    against its own channels-last layout: the generated model permutes nothing."""
    from mmconv.emitters.keras.builder import generate
    from mmconv.frontends.keras import convert

    path = tmp_path / "convs.keras"
    conv_model().save(str(path))
    graph = convert(None, str(path))
    assert [n.op for n in graph.nodes].count("Transpose") == 1
    generated = generate(graph)
    assert generated.transposes == []
    assert "Permute" not in generated.code and "ops.transpose" not in generated.code


def test_squeeze_excite_to_keras_has_zero_transposes(tmp_path: Path) -> None:
    """EfficientNet/MobileNetV3's squeeze-and-excite (pool, Reshape to 1x1, 1x1 convs,
    Multiply) and a 1x1-conv classifier flattened: no transpose in the Keras target."""
    from mmconv.emitters.keras.builder import generate
    from mmconv.frontends.keras import convert

    inp = keras.Input((8, 8, 6), name="image")
    x = L.Conv2D(6, 3, padding="same", activation="swish", name="c")(inp)
    se = L.GlobalAveragePooling2D(name="squeeze")(x)
    se = L.Reshape((1, 1, 6), name="se_reshape")(se)
    se = L.Conv2D(2, 1, activation="relu", name="se_reduce")(se)
    se = L.Conv2D(6, 1, activation="hard_sigmoid", name="se_expand")(se)
    x = L.Multiply(name="excite")([x, se])
    x = L.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = L.Flatten(name="flat")(L.Conv2D(4, 1, name="logits")(x))
    model = randomize(keras.Model(inp, x, name="se"))
    check(model, tmp_path, ("keras",))
    generated = generate(convert(None, str(tmp_path / "se.keras")))
    assert generated.transposes == []


def padding_model() -> keras.Model:
    """TF "same" puts the odd pixel at the end: even and odd sizes, strides 1-3, kernels
    2-4, for Conv2D, MaxPooling2D and AveragePooling2D (whose count skips the padding)."""
    outs = []
    inputs = []
    for size in (7, 8):
        inp = keras.Input((size, size + 1, 2), name=f"x{size}")
        inputs.append(inp)
        for stride in (1, 2, 3):
            for k in (2, 3, 4):
                tag = f"s{size}_st{stride}_k{k}"
                outs.append(L.Conv2D(2, k, strides=stride, padding="same",
                                     name=f"conv_{tag}")(inp))
                outs.append(L.MaxPooling2D(k, strides=stride, padding="same",
                                           name=f"max_{tag}")(inp))
                outs.append(L.AveragePooling2D(k, strides=stride, padding="same",
                                               name=f"avg_{tag}")(inp))
    return randomize(keras.Model(inputs, outs, name="same_padding"))


def test_same_padding_is_exact(tmp_path: Path) -> None:
    check(padding_model(), tmp_path, ("onnx", "pytorch"))


def activation_model() -> keras.Model:
    """Every built-in activation (as ``activation=`` and as layers), the ReLU layer's
    options, LeakyReLU/ELU/PReLU, Softmax on a middle axis, Dense on a rank-3 input."""
    inp = keras.Input((5, 6), name="seq")
    outs = []
    for act in ("relu", "relu6", "leaky_relu", "elu", "selu", "sigmoid", "hard_sigmoid",
                "hard_swish", "hard_silu", "swish", "silu", "gelu", "softmax", "log_softmax",
                "softplus", "softsign", "tanh", "exponential", "linear", "mish"):
        outs.append(L.Activation(act, name=f"act_{act}")(inp))
    outs.append(L.Dense(4, activation="gelu", name="dense_rank3")(inp))
    outs.append(L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, name="relu_full")(inp))
    outs.append(L.ReLU(negative_slope=0.3, name="relu_leaky")(inp))
    outs.append(L.LeakyReLU(negative_slope=0.15, name="leaky")(inp))
    outs.append(L.ELU(alpha=0.7, name="elu_layer")(inp))
    outs.append(L.PReLU(name="prelu")(inp))
    outs.append(L.Softmax(axis=1, name="softmax_axis1")(inp))
    flat = L.Flatten(name="flat")(inp)
    outs.append(L.Dense(3, activation="tanh", name="dense2")(flat))
    model = keras.Model(inp, outs, name="activations")
    return randomize(model)


def test_activations(tmp_path: Path) -> None:
    check(activation_model(), tmp_path, ALL_TARGETS)


def misc_model() -> keras.Model:
    """Conv1D (causal, same), Conv3D, UpSampling2D (nearest, bilinear), Permute, Reshape,
    LayerNormalization, Rescaling, Normalization, Global pooling with keepdims, every
    merge layer, Dropout, GlobalMaxPooling, keras.ops arithmetic on symbolic tensors."""
    img = keras.Input((6, 5, 4), name="img")
    seq = keras.Input((9, 3), name="seq")
    vol = keras.Input((4, 5, 6, 2), name="vol")
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(img)
    x = L.Normalization(mean=[0.1, 0.2, 0.3, 0.4], variance=[1.0, 2.0, 0.5, 4.0],
                        name="normalize")(x)
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="a")(x)
    b = L.Conv2D(4, 1, name="b")(x)
    merged = [L.Add(name="add_layer")([a, b]), L.Subtract(name="sub")([a, b]),
              L.Multiply(name="mul")([a, b]), L.Average(name="avg")([a, b, x]),
              L.Maximum(name="max")([a, b]), L.Minimum(name="min")([a, b])]
    cat = L.Concatenate(name="concat")(merged)
    up = L.UpSampling2D(2, name="up_nearest")(cat)
    up2 = L.UpSampling2D((2, 3), interpolation="bilinear", name="up_bilinear")(cat)
    ln = L.LayerNormalization(name="ln")(up)
    drop = L.Dropout(0.5, name="drop")(ln)
    gap = L.GlobalAveragePooling2D(keepdims=True, name="gap_keep")(drop)
    gmp = L.GlobalMaxPooling2D(name="gmp")(up2)
    perm = L.Permute((3, 1, 2), name="permute")(cat)
    perm = L.Conv2D(3, 2, name="after_permute")(perm)
    reshaped = L.Reshape((-1, 4), name="reshape")(cat)
    shifted = (reshaped + 3.0) * 0.5
    s = L.Conv1D(5, 3, padding="causal", dilation_rate=2, name="causal")(seq)
    s = L.Conv1D(4, 4, strides=2, padding="same", name="c1d_same")(s)
    s = L.GlobalAveragePooling1D(name="gap1d")(s)
    v = L.Conv3D(3, 3, padding="same", strides=(1, 2, 2), name="c3d")(vol)
    v = L.MaxPooling3D(2, name="mp3d")(v)
    outs = [gap, gmp, perm, shifted, s, v, L.BatchNormalization(axis=1, name="bn_axis1")(seq)]
    return randomize(keras.Model([img, seq, vol], outs, name="misc"))


def test_misc_layers(tmp_path: Path) -> None:
    check(misc_model(), tmp_path, ALL_TARGETS, ("keras", "h5"))


def nested_model() -> keras.Model:
    """A Sequential and a Functional model used as layers, one of them twice (shared)."""
    block = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(3, 3, padding="same",
                                                                 name="inner_conv"),
                              L.BatchNormalization(name="inner_bn"), L.Activation("relu")],
                             name="block")
    i2 = keras.Input((8, 8, 3))
    head_out = L.Dense(4, name="head_dense")(L.GlobalAveragePooling2D()(i2))
    head = keras.Model(i2, head_out, name="head")
    inp = keras.Input((8, 8, 3), name="image")
    x = block(inp)
    x = block(x)  # the same weights again
    y = head(x)
    return randomize(keras.Model(inp, [y, x], name="nested"))


def test_nested_models(tmp_path: Path) -> None:
    check(nested_model(), tmp_path, ALL_TARGETS, ("keras", "h5"))


def test_sequential_flatten_dense(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((6, 5, 3)), L.Conv2D(4, 3, name="c"),
                              L.MaxPooling2D(name="p"), L.Flatten(name="f"),
                              L.Dense(5, name="d"), L.Softmax(name="sm")], name="seq_model")
    check(randomize(model), tmp_path, ALL_TARGETS, ("keras", "h5"))


def test_channels_first_io(tmp_path: Path) -> None:
    """--channelsFirstIO: NCHW inputs and feature-map outputs, no boundary transpose."""
    from mmconv.frontends.keras import convert

    inp = keras.Input((7, 6, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="c")(inp)
    model = randomize(keras.Model(inp, L.BatchNormalization(name="bn")(x), name="cfio"))
    check(model, tmp_path, ("onnx", "pytorch"), extra=["--channelsFirstIO"])
    graph = convert(None, str(tmp_path / "cfio.keras"), channels_first_io=True)
    assert [n.op for n in graph.nodes].count("Transpose") == 0
    assert graph.inputs[0].shape == (None, 3, 7, 6)
    default = convert(None, str(tmp_path / "cfio.keras"))
    assert [n.op for n in default.nodes].count("Transpose") == 2


@pytest.mark.cntk
def test_cntk_target(tmp_path: Path, cntk_python: str) -> None:
    """Keras -> CNTK 2.7 through mmconv's IR (the seed's path without any ONNX importer)."""
    check(conv_model(dilated=False), tmp_path, ("cntk",))  # CNTK: no dilation on CPU
    check(nested_model(), tmp_path, ("cntk",))


def test_mmconvert_verify_runs_the_keras_source(tmp_path: Path) -> None:
    """mmconvert -sf keras --verify: Keras runs the source file (several outputs, .h5)."""
    from mmconv.cli import mmconvert

    path = tmp_path / "nested.h5"
    nested_model().save(str(path))
    out = tmp_path / "nested.onnx"
    assert mmconvert.main(["-sf", "keras", "-iw", str(path), "-df", "onnx", "-om", str(out),
                           "--verify"]) == 0


def test_adapted_normalization(tmp_path: Path) -> None:
    """Normalization whose mean/variance come from adapt() (stored as variables)."""
    import numpy as np

    norm = L.Normalization(name="norm")
    norm.adapt(np.random.default_rng(0).normal(2, 3, (50, 5, 4)).astype("float32"))
    inp = keras.Input((5, 4), name="x")
    model = keras.Model(inp, L.Dense(3, name="d")(norm(inp)), name="adapted")
    check(model, tmp_path, ("onnx",), ("keras", "h5"))
