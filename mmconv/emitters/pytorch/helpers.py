'''Module-level helper functions that generated code may need, as source text.

Most IR ops are one ``torch``/``F`` call or one ``nn`` layer.  A few have no
PyTorch counterpart with the IR's exact meaning (ONNX MaxRoiPool, pooling with
dilated average windows or asymmetric pads whose padding must stay out of the
divisor).  Their code lives here, written once and
TorchScript-compatible, and is copied into a generated file only when one of its
nodes needs it, so a plain conv net's code holds no helpers at all.  The texts
are fixed (no model data enters them), which keeps generated code deterministic
and safe.
'''

from __future__ import annotations

POOL = '''
def _pool(x: torch.Tensor, mode: str, kernel: list[int], strides: list[int],
          dilations: list[int], pads: list[int], ceil_mode: bool,
          count_include_pad: bool) -> torch.Tensor:
    """ONNX MaxPool/AveragePool with explicit begin/end pads, for the cases PyTorch's
    pooling layers cannot express (asymmetric pads kept out of an average's divisor,
    dilated averages, ceil mode on asymmetric pads of a dynamic size)."""
    n = len(kernel)
    torch_pads: list[int] = []
    mask_pads: list[int] = []
    for i in range(n - 1, -1, -1):
        size = x.shape[2 + i]
        span = (kernel[i] - 1) * dilations[i] + 1
        total = size + pads[i] + pads[n + i] - span
        out = total // strides[i] + 1
        if ceil_mode:
            out = (total + strides[i] - 1) // strides[i] + 1
            if (out - 1) * strides[i] >= size + pads[i]:
                out -= 1
        overhang = max(0, (out - 1) * strides[i] + span - size - pads[i] - pads[n + i])
        torch_pads += [pads[i], pads[n + i] + overhang]
        mask_pads += [pads[i], pads[n + i]]
    if mode == "max":
        padded = F.pad(x, torch_pads, value=-float("inf"))
        if n == 1:
            return F.max_pool1d(padded, kernel, strides, 0, dilations)
        if n == 2:
            return F.max_pool2d(padded, kernel, strides, 0, dilations)
        return F.max_pool3d(padded, kernel, strides, 0, dilations)
    # average: window sums and element counts as depthwise convolutions with ones
    channels = x.shape[1]
    ones = torch.ones([channels, 1] + kernel, dtype=x.dtype, device=x.device)
    mask = torch.ones([1, 1] + list(x.shape[2:]), dtype=x.dtype, device=x.device)
    if count_include_pad:
        mask = F.pad(mask, mask_pads, value=1.0)
        overhang_pads: list[int] = []
        for j in range(n):
            overhang_pads += [0, torch_pads[2 * j + 1] - mask_pads[2 * j + 1]]
        mask = F.pad(mask, overhang_pads, value=0.0)
    else:
        mask = F.pad(mask, torch_pads, value=0.0)
    padded = F.pad(x, torch_pads, value=0.0)
    if n == 1:
        sums = F.conv1d(padded, ones, None, strides, 0, dilations, channels)
        counts = F.conv1d(mask, ones[:1], None, strides, 0, dilations)
    elif n == 2:
        sums = F.conv2d(padded, ones, None, strides, 0, dilations, channels)
        counts = F.conv2d(mask, ones[:1], None, strides, 0, dilations)
    else:
        sums = F.conv3d(padded, ones, None, strides, 0, dilations, channels)
        counts = F.conv3d(mask, ones[:1], None, strides, 0, dilations)
    return sums / counts
'''

MAX_ROI_POOL = '''
def _max_roi_pool(x: torch.Tensor, rois: torch.Tensor, pooled_h: int, pooled_w: int,
                  spatial_scale: float) -> torch.Tensor:
    """ONNX MaxRoiPool (Fast R-CNN): each box, scaled and rounded half away from zero,
    is cut into pooled_h x pooled_w bins (floor/ceil bounds); empty bins are 0."""
    height, width = x.shape[2], x.shape[3]
    out = x.new_zeros([rois.shape[0], x.shape[1], pooled_h, pooled_w])
    scaled = rois[:, 1:5] * spatial_scale
    boxes = torch.sign(scaled) * torch.floor(torch.abs(scaled) + 0.5)
    for r in range(rois.shape[0]):
        batch = int(rois[r, 0].item())
        x1, y1 = int(boxes[r, 0].item()), int(boxes[r, 1].item())
        x2, y2 = int(boxes[r, 2].item()), int(boxes[r, 3].item())
        roi_h, roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(pooled_h):
            h0 = min(max(int(math.floor(i * roi_h / pooled_h)) + y1, 0), height)
            h1 = min(max(int(math.ceil((i + 1) * roi_h / pooled_h)) + y1, 0), height)
            for j in range(pooled_w):
                w0 = min(max(int(math.floor(j * roi_w / pooled_w)) + x1, 0), width)
                w1 = min(max(int(math.ceil((j + 1) * roi_w / pooled_w)) + x1, 0), width)
                if h1 > h0 and w1 > w0:
                    out[r, :, i, j] = torch.amax(x[batch, :, h0:h1, w0:w1], dim=[1, 2])
    return out
'''

#: helper name -> (source text, module-level imports it needs besides torch/nn/F)
RESIZE_AXIS = '''
def _resize_axis(x: torch.Tensor, axis: int, i0: list[int], i1: list[int],
                 w: list[float]) -> torch.Tensor:
    """ONNX Resize along one axis: x[i0] * (1 - w) + x[i1] * w, the indices and weights
    computed at emit time from ONNX's formulas (nearest has i1 == i0, w == 0)."""
    first = torch.index_select(x, axis, torch.tensor(i0, device=x.device))
    if i1 == i0:
        return first
    second = torch.index_select(x, axis, torch.tensor(i1, device=x.device))
    shape = [1] * x.dim()
    shape[axis] = len(w)
    weight = torch.tensor(w, dtype=x.dtype, device=x.device).reshape(shape)
    return first + (second - first) * weight
'''

RECURRENT = '''
def _rnn_act(x: torch.Tensor, name: str, alpha: float, beta: float) -> torch.Tensor:
    \"\"\"One ONNX recurrent activation by name (alpha/beta as ONNX defines them).\"\"\"
    if name == "Sigmoid":
        return torch.sigmoid(x)
    if name == "Tanh":
        return torch.tanh(x)
    if name == "Relu":
        return torch.relu(x)
    if name == "Affine":
        return alpha * x + beta
    if name == "LeakyRelu":
        return F.leaky_relu(x, alpha)
    if name == "ThresholdedRelu":
        return torch.where(x > alpha, x, torch.zeros_like(x))
    if name == "ScaledTanh":
        return alpha * torch.tanh(beta * x)
    if name == "HardSigmoid":
        return torch.clamp(alpha * x + beta, 0.0, 1.0)
    if name == "Elu":
        return F.elu(x, alpha)
    if name == "Softsign":
        return F.softsign(x)
    if name == "Softplus":
        return F.softplus(x)
    raise ValueError("unknown recurrent activation " + name)


def _recurrent(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
               lengths: typing.Optional[torch.Tensor], weights: list[torch.Tensor],
               kind: str, reverse: bool, activations: list[str], alphas: list[float],
               betas: list[float], clip: float, input_forget: bool,
               linear_before_reset: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    \"\"\"ONNX LSTM/GRU/RNN as a time loop over PyTorch-layout parameters: x [N, T, I]
    (batch first), h0/c0 [D, N, H]; ``weights`` holds per direction weight_ih [G*H, I],
    weight_hh [G*H, H], bias_ih [G*H], bias_hh [G*H] and the peepholes [3*H] in
    PyTorch's gate orders (LSTM i,f,g,o, peepholes i,f,o; GRU r,z,n). Computes any
    activation list (per direction, ONNX's names and alpha/beta), clip, input_forget,
    peepholes, both GRU resets (linear_before_reset False: the reset gate scales h
    before the recurrent product), a reverse-only run and ``lengths`` (zeros past a
    row's end, its last valid state). Returns output [N, T, D*H], h_n and c_n [D, N, H]
    (nn.LSTM's layouts).\"\"\"
    hs = h0.shape[2]
    directions = h0.shape[0]
    per = len(activations) // directions
    ys: list[torch.Tensor] = []
    hn: list[torch.Tensor] = []
    cn: list[torch.Tensor] = []
    for d in range(directions):
        acts = activations[d * per:(d + 1) * per]
        al = alphas[d * per:(d + 1) * per]
        be = betas[d * per:(d + 1) * per]
        w, r, wb, rb, p = weights[5 * d:5 * d + 5]
        h, c = h0[d], c0[d]
        xw = torch.matmul(x, w.t()) + wb
        steps = x.shape[1]
        backwards = reverse or d == 1
        out: list[torch.Tensor] = []
        for s in range(steps):
            t = steps - 1 - s if backwards else s
            g = xw[:, t]
            gh = torch.matmul(h, r.t()) + rb
            c_new = c
            if kind == "LSTM":
                a = g + gh
                pre = a[:, :hs] + p[:hs] * c
                i = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[0], al[0], be[0])
                if input_forget:
                    f = 1 - i
                else:
                    pre = a[:, hs:2 * hs] + p[hs:2 * hs] * c
                    f = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                                 acts[0], al[0], be[0])
                pre = a[:, 2 * hs:3 * hs]
                c_new = f * c + i * _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0
                                             else pre, acts[1], al[1], be[1])
                pre = a[:, 3 * hs:] + p[2 * hs:] * c_new
                o = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[0], al[0], be[0])
                h_new = o * _rnn_act(c_new, acts[2], al[2], be[2])
            elif kind == "GRU":
                pre = g[:, :hs] + gh[:, :hs]
                rr = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                              acts[0], al[0], be[0])
                pre = g[:, hs:2 * hs] + gh[:, hs:2 * hs]
                z = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[0], al[0], be[0])
                if linear_before_reset:
                    pre = g[:, 2 * hs:] + rr * gh[:, 2 * hs:]
                else:
                    pre = g[:, 2 * hs:] + torch.matmul(rr * h, r[2 * hs:].t()) + rb[2 * hs:]
                n = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[1], al[1], be[1])
                h_new = (1 - z) * n + z * h
            else:
                pre = g + gh
                h_new = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                                 acts[0], al[0], be[0])
            if lengths is not None:
                live = (lengths > t).unsqueeze(1)
                h = torch.where(live, h_new, h)
                c = torch.where(live, c_new, c)
                out.append(torch.where(live, h_new, torch.zeros_like(h_new)))
            else:
                h, c = h_new, c_new
                out.append(h)
        if backwards:
            out.reverse()
        ys.append(torch.stack(out, 1))
        hn.append(h)
        cn.append(c)
    return torch.cat(ys, 2), torch.stack(hn, 0), torch.stack(cn, 0)


class _OnnxLoop:
    \"\"\"What OnnxLSTM, OnnxGRU and OnnxRNN share: the ONNX attributes nn.LSTM/GRU/RNN
    have no argument for (the defaults are what the nn.* class computes) and the run of
    :func:`_recurrent` over the module's own parameters (``_flat_weights``: nn.*'s
    names, layout and gate order; one layer only).\"\"\"

    def _setup(self, kind: str, activations: typing.Optional[list[str]],
               alphas: typing.Optional[list[float]], betas: typing.Optional[list[float]],
               clip: float, reverse: bool, input_forget: bool,
               linear_before_reset: bool) -> None:
        if self.num_layers != 1 or self.proj_size != 0:
            raise ValueError(f"{type(self).__name__} runs one layer without projection")
        if reverse and self.bidirectional:
            raise ValueError(f"{type(self).__name__}: reverse is for one direction")
        directions = 2 if self.bidirectional else 1
        if activations is None:
            nonlinearity = "Relu" if self.mode == "RNN_RELU" else "Tanh"
            activations = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                           "RNN": [nonlinearity]}[kind] * directions
        self.kind = kind
        self.activations = list(activations)
        self.alphas = list(alphas) if alphas else [0.0] * len(activations)
        self.betas = list(betas) if betas else [0.0] * len(activations)
        self.clip = float(clip)
        self.reverse = reverse
        self.input_forget = input_forget
        self.linear_before_reset = linear_before_reset

    def _loop(self, input: torch.Tensor, h0: typing.Optional[torch.Tensor],
              c0: typing.Optional[torch.Tensor], lengths: typing.Optional[torch.Tensor],
              peepholes: list[torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = input if self.batch_first else input.transpose(0, 1)
        directions = 2 if self.bidirectional else 1
        hidden = self.hidden_size
        zeros = x.new_zeros([directions, x.shape[0], hidden])
        flat = self._flat_weights
        per = len(flat) // directions
        gates = flat[0].shape[0]
        weights: list[torch.Tensor] = []
        for d in range(directions):
            weights += flat[per * d:per * d + 2]
            if self.bias:
                weights += flat[per * d + 2:per * d + 4]
            else:
                weights += [x.new_zeros([gates]), x.new_zeros([gates])]
            weights.append(peepholes[d] if len(peepholes) > 0 else x.new_zeros([3 * hidden]))
        y, h, c = _recurrent(x, zeros if h0 is None else h0, zeros if c0 is None else c0,
                             lengths, weights, self.kind, self.reverse, self.activations,
                             self.alphas, self.betas, self.clip, self.input_forget,
                             self.linear_before_reset)
        return (y if self.batch_first else y.transpose(0, 1)), h, c


class OnnxLSTM(_OnnxLoop, nn.LSTM):
    \"\"\"An nn.LSTM (same constructor, parameters, names, layouts and gate order i,f,g,o;
    one layer) for the ONNX LSTMs nn.LSTM cannot compute; forward runs the time loop
    :func:`_recurrent` (TorchScript-compatible, trainable, slower than cuDNN). Extra
    keyword arguments, each defaulting to nn.LSTM's computation: ``peepholes`` (adds
    the parameters weight_peephole_l0[_reverse], [3*H], gates i,f,o: c enters the i
    and f gates, the new c the o gate), ``activations``/``alphas``/``betas`` (ONNX's
    f,g,h names per direction), ``clip`` (gate pre-activations clamped to +-clip),
    ``input_forget`` (f = 1 - i), ``reverse`` (one direction read back to front).
    forward(input, hx, lengths): nn.LSTM's input/hx/outputs; ``lengths`` [N] gives
    zeros past each row's end and its last valid state in (h_n, c_n).\"\"\"

    def __init__(self, *args: typing.Any, peepholes: bool = False,
                 activations: typing.Optional[list[str]] = None,
                 alphas: typing.Optional[list[float]] = None,
                 betas: typing.Optional[list[float]] = None, clip: float = 0.0,
                 reverse: bool = False, input_forget: bool = False,
                 **kwargs: typing.Any) -> None:
        nn.LSTM.__init__(self, *args, **kwargs)
        self._setup("LSTM", activations, alphas, betas, clip, reverse, input_forget, True)
        if peepholes:
            kw = {"dtype": self.weight_ih_l0.dtype, "device": self.weight_ih_l0.device}
            self.weight_peephole_l0 = nn.Parameter(torch.zeros(3 * self.hidden_size, **kw))
            if self.bidirectional:
                self.weight_peephole_l0_reverse = nn.Parameter(
                    torch.zeros(3 * self.hidden_size, **kw))

    def forward(self, input: torch.Tensor,
                hx: typing.Optional[tuple[torch.Tensor, torch.Tensor]] = None,
                lengths: typing.Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        peepholes: list[torch.Tensor] = []
        if hasattr(self, "weight_peephole_l0"):
            peepholes.append(self.weight_peephole_l0)
        if hasattr(self, "weight_peephole_l0_reverse"):
            peepholes.append(self.weight_peephole_l0_reverse)
        h0: typing.Optional[torch.Tensor] = None
        c0: typing.Optional[torch.Tensor] = None
        if hx is not None:
            h0, c0 = hx
        y, h, c = self._loop(input, h0, c0, lengths, peepholes)
        return y, (h, c)


class OnnxGRU(_OnnxLoop, nn.GRU):
    \"\"\"An nn.GRU (same constructor, parameters, names, layouts and gate order r,z,n;
    one layer) for the ONNX GRUs nn.GRU cannot compute; forward runs the time loop
    :func:`_recurrent` (TorchScript-compatible, trainable, slower than cuDNN). Extra
    keyword arguments, each defaulting to nn.GRU's computation:
    ``linear_before_reset=False`` applies the reset gate before the recurrent product,
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn) (CNTK's GRU, ONNX's default; nn.GRU
    computes r * (W_hn h + b_hn)), ``activations``/``alphas``/``betas`` (ONNX's f,g
    names per direction), ``clip``, ``reverse`` (one direction read back to front).
    forward(input, hx, lengths): nn.GRU's input/hx/outputs; ``lengths`` [N] gives zeros
    past each row's end and its last valid state in h_n.\"\"\"

    def __init__(self, *args: typing.Any, linear_before_reset: bool = True,
                 activations: typing.Optional[list[str]] = None,
                 alphas: typing.Optional[list[float]] = None,
                 betas: typing.Optional[list[float]] = None, clip: float = 0.0,
                 reverse: bool = False, **kwargs: typing.Any) -> None:
        nn.GRU.__init__(self, *args, **kwargs)
        self._setup("GRU", activations, alphas, betas, clip, reverse, False,
                    linear_before_reset)

    def forward(self, input: torch.Tensor, hx: typing.Optional[torch.Tensor] = None,
                lengths: typing.Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        y, h, _ = self._loop(input, hx, None, lengths, [])
        return y, h


class OnnxRNN(_OnnxLoop, nn.RNN):
    \"\"\"An nn.RNN (same constructor, parameters, names and layouts; one layer) for the
    ONNX RNNs nn.RNN cannot compute; forward runs the time loop :func:`_recurrent`
    (TorchScript-compatible, trainable, slower than cuDNN). Extra keyword arguments,
    each defaulting to nn.RNN's computation: ``activations`` (ONNX's names per
    direction, e.g. ["Sigmoid"] for CNTK's RNNStep; they replace ``nonlinearity``),
    ``alphas``/``betas``, ``clip``, ``reverse`` (one direction read back to front).
    forward(input, hx, lengths): nn.RNN's input/hx/outputs; ``lengths`` [N] gives zeros
    past each row's end and its last valid state in h_n.\"\"\"

    def __init__(self, *args: typing.Any, activations: typing.Optional[list[str]] = None,
                 alphas: typing.Optional[list[float]] = None,
                 betas: typing.Optional[list[float]] = None, clip: float = 0.0,
                 reverse: bool = False, **kwargs: typing.Any) -> None:
        nn.RNN.__init__(self, *args, **kwargs)
        self._setup("RNN", activations, alphas, betas, clip, reverse, False, True)

    def forward(self, input: torch.Tensor, hx: typing.Optional[torch.Tensor] = None,
                lengths: typing.Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        y, h, _ = self._loop(input, hx, None, lengths, [])
        return y, h
'''

HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_recurrent": (RECURRENT, ("typing",)),
    "_resize_axis": (RESIZE_AXIS, ()),
    "_pool": (POOL, ()),
    "_max_roi_pool": (MAX_ROI_POOL, ("math",)),
}
