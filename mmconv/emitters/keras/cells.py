"""The custom Keras recurrent cells generated code may need (imports keras only).

Stock ``layers.LSTM``/``GRU``/``SimpleRNN`` are the default.  What they cannot
compute exactly -- peepholes, ``input_forget``, ``clip``, activations Keras has no
name for (HardSigmoid with ONNX's alpha/beta, LeakyRelu, ScaledTanh...), an LSTM whose
cell-input and output activations differ -- runs through :class:`OnnxRecurrentCell`
under ``layers.RNN``: the ONNX arithmetic for one direction, on ONNX-layout trainable
variables, so the model stays retrainable.  An IR ``Scan`` (a general loop) runs its
body, a nested functional model, through :class:`ScanCell`.

Why a module of its own that imports nothing but keras: everything below the marker
line is pasted verbatim into a generated ``model.py`` that uses a cell (so the code
needs no mmconv), and each class registers itself as ``mmconv>ClassName``: a ``.keras``
file holding one loads once the class is registered -- by importing the generated
``model.py``, or this module (the Keras runner of ``mmconv.verify`` does).
"""

import keras
from keras import ops

# -- pasted into generated code from here on (keras and ops are imported there) --


def _onnx_activation(x, name, alpha, beta):
    """ONNX recurrent activation ``name`` with its alpha/beta (ONNX defaults filled in)."""
    if name == "Sigmoid":
        return ops.sigmoid(x)
    if name == "Tanh":
        return ops.tanh(x)
    if name == "Relu":
        return ops.relu(x)
    if name == "Affine":
        return alpha * x + beta
    if name == "LeakyRelu":
        return ops.where(x >= 0, x, alpha * x)
    if name == "ThresholdedRelu":
        return ops.where(x > alpha, x, ops.zeros_like(x))
    if name == "ScaledTanh":
        return alpha * ops.tanh(beta * x)
    if name == "HardSigmoid":
        return ops.clip(alpha * x + beta, 0.0, 1.0)
    if name == "Elu":
        return ops.where(x >= 0, x, alpha * (ops.exp(ops.minimum(x, 0.0)) - 1.0))
    if name == "Softsign":
        return x / (1.0 + ops.abs(x))
    if name == "Softplus":
        return ops.softplus(x)
    raise ValueError(f"unknown ONNX recurrent activation {name!r}")


@keras.saving.register_keras_serializable(package="mmconv")
class OnnxRecurrentCell(keras.layers.Layer):
    """One direction of an ONNX LSTM, GRU or RNN, as a cell for ``keras.layers.RNN``.

    For what stock Keras cells cannot compute: peepholes, input_forget, clip, any ONNX
    activation list (``[name, alpha, beta]`` per slot: LSTM f, g, h; GRU f, g; RNN f).
    Variables in ONNX layout, transposed for ``x @ kernel``: ``kernel`` [input, G*H] and
    ``recurrent_kernel`` [H, G*H] (gate order LSTM i, o, f, c; GRU z, r, h), ``bias``
    [2*G*H] (the input biases, then the recurrent ones), ``peephole`` [3*H] (i, o, f).
    States: [h, c] for an LSTM, [h] otherwise.
    """

    def __init__(self, kind, units, activations, clip=0.0, input_forget=False,
                 linear_before_reset=False, use_bias=True, peepholes=False, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.units = int(units)
        self.activations = [list(a) for a in activations]
        self.clip = float(clip)
        self.input_forget = bool(input_forget)
        self.linear_before_reset = bool(linear_before_reset)
        self.use_bias = bool(use_bias)
        self.peepholes = bool(peepholes)
        self.gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
        self.state_size = [self.units, self.units] if kind == "LSTM" else [self.units]
        self.output_size = self.units

    def build(self, input_shape):
        width = self.gates * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], width), name="kernel",
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(self.units, width),
                                                name="recurrent_kernel",
                                                initializer="orthogonal")
        if self.use_bias:
            self.bias = self.add_weight(shape=(2 * width,), name="bias", initializer="zeros")
        if self.peepholes:
            self.peephole = self.add_weight(shape=(3 * self.units,), name="peephole",
                                            initializer="zeros")

    def _act(self, slot, x):
        if self.clip > 0:  # ONNX clips what goes into a gate's activation
            x = ops.clip(x, -self.clip, self.clip)
        name, alpha, beta = self.activations[slot]
        return _onnx_activation(x, name, alpha, beta)

    def call(self, inputs, states, training=None):
        k, width = self.units, self.gates * self.units
        h = states[0]
        xw = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            xw = xw + self.bias[:width]
        if self.kind == "GRU":
            hr = ops.matmul(h, self.recurrent_kernel[:, :2 * k])
            hh = None
            if self.use_bias:
                hr = hr + self.bias[width:width + 2 * k]
            z = self._act(0, xw[:, :k] + hr[:, :k])
            r = self._act(0, xw[:, k:2 * k] + hr[:, k:])
            if self.linear_before_reset:
                hh = ops.matmul(h, self.recurrent_kernel[:, 2 * k:])
                if self.use_bias:
                    hh = hh + self.bias[width + 2 * k:]
                cand = self._act(1, xw[:, 2 * k:] + r * hh)
            else:
                hh = ops.matmul(r * h, self.recurrent_kernel[:, 2 * k:])
                if self.use_bias:
                    hh = hh + self.bias[width + 2 * k:]
                cand = self._act(1, xw[:, 2 * k:] + hh)
            h = (1.0 - z) * cand + z * h
            return h, [h]
        a = xw + ops.matmul(h, self.recurrent_kernel)
        if self.use_bias:
            a = a + self.bias[width:]
        if self.kind == "RNN":
            h = self._act(0, a)
            return h, [h]
        c = states[1]
        gi, go, gf, gc = a[:, :k], a[:, k:2 * k], a[:, 2 * k:3 * k], a[:, 3 * k:]
        if self.peepholes:
            gi = gi + self.peephole[:k] * c
            gf = gf + self.peephole[2 * k:] * c
        i = self._act(0, gi)
        f = 1.0 - i if self.input_forget else self._act(0, gf)
        c = f * c + i * self._act(1, gc)
        if self.peepholes:
            go = go + self.peephole[k:2 * k] * c
        o = self._act(0, go)
        name, alpha, beta = self.activations[2]  # ONNX does not clip the cell state
        h = o * _onnx_activation(c, name, alpha, beta)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, units=self.units, activations=self.activations,
                      clip=self.clip, input_forget=self.input_forget,
                      linear_before_reset=self.linear_before_reset, use_bias=self.use_bias,
                      peepholes=self.peepholes)
        return config


def _size(shape):
    """Elements of one sample of ``shape`` (1 for a scalar per sample)."""
    size = 1
    for dim in shape:
        size *= int(dim)
    return size


@keras.saving.register_keras_serializable(package="mmconv")
class ScanCell(keras.layers.Layer):
    """One step of an IR ``Scan`` as a cell for ``keras.layers.RNN``: the loop body is
    ``body``, a functional ``keras.Model`` taking the states then the step inputs and
    returning the new states then the step outputs (each ``[batch, ...]``).

    ``keras.layers.RNN`` carries one sequence and states of one axis, so the emitted
    code hands the cell the scan inputs flattened and concatenated (``[N, T, sum F]``)
    and flattened states; the cell splits and reshapes them to the body's shapes
    (``state_shapes``, ``input_shapes``, ``output_shapes``: per value, without the
    batch) and returns the step outputs flattened and concatenated the same way.  The
    body's layers are the cell's, so they train and save with it (its config nests the
    body's).
    """

    def __init__(self, body, state_shapes, input_shapes, output_shapes, **kwargs):
        super().__init__(**kwargs)
        if isinstance(body, dict):  # from a saved config
            body = keras.saving.deserialize_keras_object(body)
        self.body = body
        self.state_shapes = [[int(d) for d in s] for s in state_shapes]
        self.input_shapes = [[int(d) for d in s] for s in input_shapes]
        self.output_shapes = [[int(d) for d in s] for s in output_shapes]
        # RNN needs a state: a scan with none carries one column unchanged
        self.state_size = [_size(s) for s in self.state_shapes] or [1]
        # RNN needs a step output: a scan with none returns one zero column
        self.output_size = max(1, sum(_size(s) for s in self.output_shapes))

    def build(self, input_shape):
        pass  # the body is a built functional model

    def call(self, inputs, states, training=None):
        count = len(self.state_shapes)
        values = [ops.reshape(s, (-1, *shape))
                  for s, shape in zip(states[:count], self.state_shapes, strict=True)]
        start = 0
        for shape in self.input_shapes:
            size = _size(shape)
            values.append(ops.reshape(inputs[:, start:start + size], (-1, *shape)))
            start += size
        outs = self.body(values, training=training)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        new = [ops.reshape(o, (-1, _size(shape)))
               for o, shape in zip(outs[:count], self.state_shapes, strict=True)] or states
        ys = [ops.reshape(o, (-1, _size(shape)))
              for o, shape in zip(outs[count:], self.output_shapes, strict=True)]
        if not ys:
            return ops.zeros_like(inputs[:, :1]), new
        return (ops.concatenate(ys, axis=-1) if len(ys) > 1 else ys[0]), new

    def get_config(self):
        config = super().get_config()
        config.update(body=keras.saving.serialize_keras_object(self.body),
                      state_shapes=self.state_shapes, input_shapes=self.input_shapes,
                      output_shapes=self.output_shapes)
        return config
